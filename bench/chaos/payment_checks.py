"""The payment chaos run's invariants and its summary table (bench/chaos/payments.py).

1. Every transaction the provider has as paid is paid in our store (PAYED, that transaction).
2. Every paid payment gives exactly one payment notice, delivered, and the cash office
   received exactly one notice delivery (by delivery id) for it.
3. Every case with a paid payment is delivered: the public-order office received exactly one
   case delivery (by delivery id) for its reference; an unpaid case's delivery is still held.
4. A double click sent every click to the same pay page and made one transaction per
   attempt, with one attempt in use (a second one only after a lost create answer).
5. No citizen waited longer for the pay page than the provider was down meanwhile plus the
   reconciliation's longest step (plus 2 s), and no payment was confirmed later after it was
   made than that (plus a sweep): nobody waits for the expiry, only for the provider.
6. No answer a citizen or the provider got was a 5xx other than 503 (an outage, said so).
7. No process died; the run settled (nothing left pending); no citizen's visit broke.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

CASH_OFFICE = "usingen-stadtkasse"
ORDER_OFFICE = "neu-anspach-ordnungsamt"
SLACK_S = 3.0  # the sweeper's round and the provider's answer
SWEEP_S = 1.0  # the sweeper's interval in the run (BRIDGE_SWEEP_INTERVAL_S)


@dataclass
class Citizen:
    """One citizen of the run and what it saw."""

    index: int
    scenario: str
    reference: str = ""
    pay_link: str = ""
    started: float = 0.0
    first_click: float = 0.0
    pay_page_at: float = 0.0
    paid_at: float = 0.0
    transaction: str = ""
    distinct_pages: int = 0
    codes: list[int] = field(default_factory=list)
    callback_codes: list[int] = field(default_factory=list)
    error: str = ""

    @property
    def wait_s(self) -> float | None:
        """Seconds from the first click to the pay page (None: never got there)."""
        return self.pay_page_at - self.first_click if self.pay_page_at else None


def _epoch(value: Any) -> float:
    """A timestamp from the store (aware or naive UTC, or ISO text) as epoch seconds."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return float(value.timestamp())


Windows = Sequence[tuple[str, float, float]]


def down_during(start: float, end: float, windows: Windows) -> float:
    """Seconds the provider was down between `start` and `end` (overlapping outages once)."""
    spans = sorted((max(a, start), min(b, end)) for _, a, b in windows if b > start and a < end)
    total, reach = 0.0, start
    for a, b in spans:
        a = max(a, reach)
        if b > a:
            total += b - a
            reach = b
    return total


def confirm_lag(citizen: Citizen, rows: dict[str, list[dict[str, Any]]]) -> float | None:
    """Seconds from the citizen's payment until our store had it as paid."""
    for p in rows["payments"]:
        if p["transaction_id"] == citizen.transaction and p["status"] == "PAYED":
            return max(0.0, _epoch(p["updated_at"]) - citizen.paid_at)
    return None


def received(records: Sequence[Sequence[Any]]) -> dict[tuple[str, str], set[str]]:
    """Distinct delivery ids each (office, reference) received with an ok answer."""
    out: dict[tuple[str, str], set[str]] = defaultdict(set)
    for delivery_id, reference, office, mode, _ in records:
        if mode == "ok":
            out[(office, reference)].add(delivery_id)
    return out


def check(
    citizens: list[Citizen],
    ledger: dict[str, Any],
    rows: dict[str, list[dict[str, Any]]],
    records: Sequence[Sequence[Any]],
    settled: bool,
    dead: list[str],
    schedule: Sequence[float],
    windows: Windows,
) -> list[str]:
    """Every violated invariant, one line each (empty: the run passed)."""
    problems = [f"process died: {name}" for name in dead]
    if not settled:
        problems.append("did not settle: paid transactions unconfirmed or deliveries pending")
    problems += [f"{c.reference or c.index} ({c.scenario}): {c.error}" for c in citizens if c.error]
    problems += _money(ledger, rows, records)
    problems += _cases(citizens, rows, records)
    problems += _citizens(citizens, rows, ledger, schedule, windows)
    return problems


def _money(
    ledger: dict[str, Any],
    rows: dict[str, list[dict[str, Any]]],
    records: Sequence[Sequence[Any]],
) -> list[str]:
    """Invariants 1 and 2."""
    problems: list[str] = []
    paid_ours = {p["transaction_id"]: p for p in rows["payments"] if p["status"] == "PAYED"}
    notices = Counter(d["payment_id"] for d in rows["deliveries"] if d["kind"] == "payment-notice")
    got = received(records)
    for t in ledger["transactions"]:
        if t["status"] != "PAYED":
            continue
        payment = paid_ours.get(t["txid"])
        if payment is None:
            problems.append(f"transaction {t['txid']} paid at the provider, not with us")
            continue
        if notices[payment["id"]] != 1:
            problems.append(f"payment {payment['id']}: {notices[payment['id']]} notices")
        reference = payment["reference"]
        ids = got.get((CASH_OFFICE, reference), set())
        if len(ids) != 1:
            problems.append(f"{reference}: the cash office got {len(ids)} notices")
    for d in rows["deliveries"]:
        if d["kind"] == "payment-notice" and d["status"] != "delivered":
            problems.append(f"notice {d['id']} is {d['status']}")
    return problems


def _cases(
    citizens: list[Citizen],
    rows: dict[str, list[dict[str, Any]]],
    records: Sequence[Sequence[Any]],
) -> list[str]:
    """Invariant 3."""
    problems: list[str] = []
    paid_refs = {p["reference"] for p in rows["payments"] if p["status"] == "PAYED"}
    got = received(records)
    for c in citizens:
        if not c.reference:
            continue
        ids = got.get((ORDER_OFFICE, c.reference), set())
        if c.reference in paid_refs and len(ids) != 1:
            problems.append(f"{c.reference}: paid, the office got {len(ids)} case deliveries")
        if c.reference not in paid_refs and ids:
            problems.append(f"{c.reference}: delivered without a payment")
    return problems


def _citizens(
    citizens: list[Citizen],
    rows: dict[str, list[dict[str, Any]]],
    ledger: dict[str, Any],
    schedule: Sequence[float],
    windows: Windows,
) -> list[str]:
    """Invariants 4, 5 and 6."""
    problems: list[str] = []
    per_case = Counter(
        t["redirect_url"].split("/pay/")[1].split("/")[0] for t in ledger["transactions"]
    )
    attempts = Counter(p["reference"] for p in rows["payments"])
    live = Counter(p["reference"] for p in rows["payments"] if p["status"] != "abandoned")
    for c in citizens:
        # One transaction per attempt, one attempt in use (another one only after a create
        # whose answer a neighbour's fault lost: abandoned, never payable).
        many = per_case[c.reference] > attempts[c.reference] or live[c.reference] != 1
        if c.scenario == "double_click" and (c.distinct_pages != 1 or many):
            problems.append(
                f"{c.reference}: double click gave {per_case[c.reference]} transactions for "
                f"{attempts[c.reference]} attempts, {c.distinct_pages} pay pages"
            )
        wait = c.wait_s
        end = c.pay_page_at or time.time()
        bound = down_during(c.first_click, end, windows) + max(schedule) + SLACK_S
        if wait is None or wait > bound:
            problems.append(f"{c.reference} ({c.scenario}): waited {wait} s > {bound:.1f} s")
        lag = confirm_lag(c, rows) if c.transaction else None
        if c.transaction:
            until = c.paid_at + (lag if lag is not None else 3600.0)
            limit = down_during(c.paid_at, until, windows) + max(schedule) + SWEEP_S + SLACK_S
            if lag is None or lag > limit:
                problems.append(
                    f"{c.reference} ({c.scenario}): confirmed after {lag} s > {limit:.1f} s"
                )
        bad = [code for code in c.codes + c.callback_codes if code >= 500 and code != 503]
        if bad:
            problems.append(f"{c.reference} ({c.scenario}): answers {bad}")
    return problems


def _worst(pairs: list[tuple[float, float]], step: float) -> tuple[float, float]:
    """The longest wait and its bound (the outage it met + `step`), by the margin left."""
    if not pairs:
        return 0.0, step
    value, down = min(pairs, key=lambda p: p[1] + step - p[0])
    return value, down + step


def table(
    citizens: list[Citizen],
    rows: dict[str, list[dict[str, Any]]],
    records: Sequence[Sequence[Any]],
    schedule: Sequence[float],
    windows: Windows,
) -> str:
    """The summary by scenario (markdown)."""
    got = received(records)
    paid = {p["reference"] for p in rows["payments"] if p["status"] == "PAYED"}
    notices = Counter(
        p["reference"]
        for p in rows["payments"]
        for d in rows["deliveries"]
        if d["payment_id"] == p["id"] and d["status"] == "delivered"
    )
    lines = [
        "| scenario | cases | paid | notices (delivered once) | cases delivered once "
        "| 503s seen | max wait for pay page s (bound) | max confirmation s (bound) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    by: dict[str, list[Citizen]] = defaultdict(list)
    for c in citizens:
        by[c.scenario].append(c)
    for scenario, group in sorted(by.items()):
        refs = [c.reference for c in group]
        once_notice = sum(
            notices[r] == 1 and len(got.get((CASH_OFFICE, r), set())) == 1 for r in refs
        )
        once_case = sum(len(got.get((ORDER_OFFICE, r), set())) == 1 for r in refs)
        wait, wait_bound = _worst(
            [
                (c.wait_s, down_during(c.first_click, c.pay_page_at, windows))
                for c in group
                if c.wait_s is not None
            ],
            max(schedule) + SLACK_S,
        )
        lag, lag_bound = _worst(
            [
                (x, down_during(c.paid_at, c.paid_at + x, windows))
                for c in group
                if (x := confirm_lag(c, rows)) is not None
            ],
            max(schedule) + SWEEP_S + SLACK_S,
        )
        unavailable = sum(code == 503 for c in group for code in c.codes + c.callback_codes)
        lines.append(
            f"| {scenario} | {len(group)} | {sum(r in paid for r in refs)} | {once_notice} "
            f"| {once_case} | {unavailable} | {wait:.1f} ({wait_bound:.1f}) "
            f"| {lag:.1f} ({lag_bound:.1f}) |"
        )
    lines.append("")
    lines.append(
        "Bounds: the seconds the provider was down meanwhile + the reconciliation's longest "
        f"step ({max(schedule):g} s) + {SLACK_S:g} s (confirmation: + {SWEEP_S:g} s sweep)."
    )
    return "\n".join(lines)
