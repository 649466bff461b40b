"""The "nothing lost" checks, from the database, the offices' records and the load's answers.

1. Every submission answered 2xx is delivered to each responsible office exactly once after
   dropping duplicates by delivery id, or is `failed` with a reason, and that reason is the
   one permanent answer the offices give (the injected redirect; the run replays those with
   `python -m bridge replay` before checking, so they must have arrived by then); repeats got
   the same reference; it was routed to exactly the offices the plan says.
2. No 5xx on valid input except 503 while the store was down; no other refusal of valid input.
3. Nothing delivered that was not accepted, and nothing stored that was refused.
4. Every submission's status agrees with its deliveries.
5. No process left dead, none that died on its own, every host ready at the end.
6. Every fault kind was injected at least once, and each injection worked.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from bench.chaos.bodies import Planned
from bench.chaos.faults import Fault
from bench.chaos.load import Try
from domain.delivery.deliveries import derive_status
from harness.processes import Exit

#: a request that overlaps a store outage, or ends this long after it, may be answered 503
OUTAGE_GRACE_S = 2.0


@dataclass
class DbDelivery:
    """A delivery as the database has it at the end."""

    id: str
    office: str
    status: str
    attempts: int
    last_error: str | None


@dataclass
class DbSubmission:
    """A submission as the database has it at the end."""

    reference: str
    key: str | None
    service: str
    status: str
    deliveries: list[DbDelivery]


@dataclass
class Evidence:
    """Everything the checks read."""

    plan: list[Planned]
    answers: dict[int, list[Try]]
    tries: list[Try]
    faults: list[Fault]
    records: list[tuple[str, str, str, str, float]]  # delivery id, reference, office, mode, time
    submissions: list[DbSubmission]
    exits: list[Exit]
    dead: list[str]
    not_ready: list[str]
    settled: bool
    kinds: tuple[str, ...] = ()  # the fault kinds the run had to inject at least once
    harness_problems: list[str] = field(default_factory=list)  # e.g. a replay that failed


@dataclass
class Verdict:
    """What the checks found: violations (each one fails the run) and the figures."""

    violations: list[str] = field(default_factory=list)
    figures: dict[str, int] = field(default_factory=dict)
    failed_reasons: Counter[str] = field(default_factory=Counter)

    def fail(self, message: str) -> None:
        """Record a violation (the first 50 of each kind are kept in full)."""
        self.violations.append(message)


def outage_windows(faults: list[Fault]) -> list[tuple[float, float]]:
    """When the store was down."""
    return [(f.start, f.end + OUTAGE_GRACE_S) for f in faults if f.kind == "store_down"]


def check(ev: Evidence) -> Verdict:
    """Run every check."""
    v = Verdict()
    by_ref = {s.reference: s for s in ev.submissions}
    delivery_of = {d.id: (s, d) for s in ev.submissions for d in s.deliveries}
    ok_records, last_answer = _index_records(ev.records)
    _check_answers(ev, v)
    accepted_refs = _check_accepted(ev, v, by_ref, ok_records, last_answer)
    _check_stored(ev, v, accepted_refs)
    _check_office_records(v, delivery_of, ok_records)
    _check_statuses(ev, v)
    _check_processes(ev, v)
    _check_faults(ev, v)
    for problem in ev.harness_problems:
        v.fail(problem)
    if not ev.settled:
        v.fail("deliveries still pending when the drain time ran out")
    return v


def _index_records(
    records: list[tuple[str, str, str, str, float]],
) -> tuple[dict[str, list[tuple[str, str, str, str, float]]], dict[str, str]]:
    """The offices' `ok` records by delivery id, and each delivery's last answer in time."""
    ok_records: dict[str, list[tuple[str, str, str, str, float]]] = defaultdict(list)
    last_answer: dict[str, str] = {}
    for rec in sorted(records, key=lambda r: r[4]):
        last_answer[rec[0]] = rec[3]
        if rec[3] == "ok":
            ok_records[rec[0]].append(rec)
    return ok_records, last_answer


def _check_statuses(ev: Evidence, v: Verdict) -> None:
    """Every submission's status agrees with its deliveries."""
    for s in ev.submissions:
        expected = derive_status([d.status for d in s.deliveries])
        if s.status != expected:
            v.fail(f"{s.reference}: status {s.status}, its deliveries say {expected}")


def _check_processes(ev: Evidence, v: Verdict) -> None:
    """No process died on its own, none is dead at the end, every host is ready."""
    for e in [e for e in ev.exits if not e.expected]:
        v.fail(f"{e.name} exited on its own (code {e.code}): {e.log_tail[-400:]}")
    for name in ev.dead:
        v.fail(f"{name} is not running at the end")
    for name in ev.not_ready:
        v.fail(f"not ready at the end (/readyz): {name}")


def _check_faults(ev: Evidence, v: Verdict) -> None:
    """Each injection worked, and every fault kind asked for was injected at least once."""
    for f in ev.faults:
        if f.error:
            v.fail(f"fault {f.kind} on {f.target or '?'} could not be injected: {f.error}")
    missing = sorted(set(ev.kinds) - {f.kind for f in ev.faults if not f.error})
    if missing:
        v.fail(f"fault kinds never injected: {', '.join(missing)}")


def _check_answers(ev: Evidence, v: Verdict) -> None:
    windows = outage_windows(ev.faults)
    counts: Counter[str] = Counter()
    for t in ev.tries:
        if t.status is None:
            counts["no_answer"] += 1
        elif t.status == 503:
            counts["answered_503"] += 1
            if not any(t.start <= end and t.end >= start for start, end in windows):
                v.fail(
                    f"503 outside a store outage: #{t.index} {t.host} at {t.start:.3f}: {t.detail}"
                )
        elif t.status >= 500:
            v.fail(f"{t.status} on valid input: #{t.index} {t.host} at {t.start:.3f}: {t.detail}")
        elif t.status != 202:
            v.fail(f"{t.status} on valid input: #{t.index} {t.host}: {t.detail}")
        elif t.replayed:
            counts["replayed"] += 1
    v.figures.update(requests=len(ev.tries), **counts)


def _check_accepted(
    ev: Evidence,
    v: Verdict,
    by_ref: dict[str, DbSubmission],
    ok_records: dict[str, list[tuple[str, str, str, str, float]]],
    last_answer: dict[str, str],
) -> set[str]:
    """Every planned submission answered 202 kept one reference, is stored, routed and delivered."""
    accepted_refs: set[str] = set()
    # One Counter through all helpers: its keys' first-seen order is the order of the figures.
    counts: Counter[str] = Counter()
    for p in ev.plan:
        answered = [t for t in ev.answers.get(p.index, []) if t.status == 202]
        refs = {t.reference for t in answered}
        counts["sends"] += len(ev.answers.get(p.index, []))
        if not answered:
            counts["not_accepted"] += 1
            continue
        counts["accepted"] += 1
        if len(refs) > 1:
            v.fail(
                f"#{p.index} sent {len(ev.answers[p.index])} times got references {sorted(refs)}"
            )
        for ref in refs:
            accepted_refs.add(ref)
            _check_reference(v, counts, p, ref, by_ref.get(ref), ok_records, last_answer)
    v.figures.update(planned=len(ev.plan), repeated=sum(bool(p.repeat) for p in ev.plan), **counts)
    return accepted_refs


def _check_reference(
    v: Verdict,
    counts: Counter[str],
    p: Planned,
    ref: str,
    sub: DbSubmission | None,
    ok_records: dict[str, list[tuple[str, str, str, str, float]]],
    last_answer: dict[str, str],
) -> None:
    """One accepted reference: stored, routed to the plan's offices, each delivery settled."""
    if sub is None:
        v.fail(f"#{p.index} answered 202 {ref}, not in the database (lost)")
        return
    offices = sorted(d.office for d in sub.deliveries)
    if offices != sorted(p.offices):
        v.fail(f"{ref}: routed to {offices}, responsible are {sorted(p.offices)}")
    for d in sub.deliveries:
        _check_delivery(v, counts, ref, d, len(ok_records.get(d.id, [])), last_answer)


def _check_delivery(
    v: Verdict,
    counts: Counter[str],
    ref: str,
    d: DbDelivery,
    received: int,
    last_answer: dict[str, str],
) -> None:
    """One delivery of an accepted submission: delivered with a record, or failed for the redirect."""
    counts["deliveries"] += 1
    counts["duplicates_received"] += max(0, received - 1)
    if d.status == "delivered":
        counts["delivered"] += 1
        if not received:
            v.fail(f"{ref}: delivery {d.id} to {d.office} is delivered, office has no record")
    elif d.status == "failed":
        counts["failed"] += 1
        v.failed_reasons[(d.last_error or "")[:80]] += 1
        if received:
            counts["failed_but_received"] += 1
        if not d.last_error:
            v.fail(f"{ref}: delivery {d.id} failed without a reason")
        # The only permanent answer the offices give is the injected redirect.
        if last_answer.get(d.id) != "302":
            v.fail(
                f"{ref}: delivery {d.id} to {d.office} failed ({d.last_error}); "
                f"the office's last answer was {last_answer.get(d.id, 'none')}"
            )
    else:
        v.fail(f"{ref}: delivery {d.id} to {d.office} is {d.status} at the end")


def _check_stored(ev: Evidence, v: Verdict, accepted_refs: set[str]) -> None:
    unanswered = {t.index for t in ev.tries if t.status is None}
    index_of = {p.key: p.index for p in ev.plan}
    lost_answers = 0
    for s in ev.submissions:
        if s.reference in accepted_refs:
            continue
        index = index_of.get(s.key or "")
        if index is not None and index in unanswered:
            lost_answers += 1  # stored, and the answer was lost with a killed web process
        else:
            v.fail(f"{s.reference} stored but never answered 2xx (key {s.key})")
    v.figures["stored_answer_lost"] = lost_answers


def _check_office_records(
    v: Verdict,
    delivery_of: dict[str, tuple[DbSubmission, DbDelivery]],
    ok_records: dict[str, list[tuple[str, str, str, str, float]]],
) -> None:
    for delivery_id, recs in ok_records.items():
        found = delivery_of.get(delivery_id)
        if found is None:
            v.fail(f"office received delivery {delivery_id} that no submission has")
            continue
        sub, d = found
        for _, reference, office, _, _ in recs:
            if reference != sub.reference or office != d.office:
                v.fail(
                    f"delivery {delivery_id} arrived as {reference} at {office}, is {sub.reference} for {d.office}"
                )
    v.figures["office_receipts"] = sum(len(r) for r in ok_records.values())
