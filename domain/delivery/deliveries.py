"""The delivery state machine in the database: claim, record an attempt, retry, fail, replay.

Every state change happens here, in one transaction with the event that records it, so that the
worker, the sweeper, the CLI and the admin API all move deliveries the same way. Every time
compared or stored here is the database's (`store.clock`): hosts with skewed clocks neither
take a lease early nor deliver before a delivery is due.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Table,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from domain.accounts.accounts import Actor, record_action
from store.clock import database_now
from store.engine import Store
from store.models import Delivery, DeliveryKind, DeliveryStatus, Event, Submission, SubmissionStatus

MAX_RETRY_AFTER_S = 24 * 3600
_D = cast(Table, Delivery.__table__)
_E = cast(Table, Event.__table__)
_S = cast(Table, Submission.__table__)
# Only the lease holder records: the lease in the WHERE makes a lost lease a no-op.
_RECORD = (
    update(_D)
    .where(
        _D.c.id == bindparam("b_id"),
        _D.c.lease_until == bindparam("b_lease"),
        _D.c.status == DeliveryStatus.PENDING,
    )
    .values(
        attempts=bindparam("v_attempts"),
        status=bindparam("v_status"),
        lease_until=None,
        last_status_code=bindparam("v_last_status_code"),
        last_error=bindparam("v_last_error"),
        next_attempt_at=bindparam("v_next_attempt_at"),
        delivered_at=bindparam("v_delivered_at"),
        case_number=bindparam("v_case_number"),
        updated_at=bindparam("v_updated_at"),
    )
)
_SET_STATUS = (
    update(_S)
    .where(_S.c.id == bindparam("b_id"))
    .values(status=bindparam("v_status"), updated_at=bindparam("v_updated_at"))
)


@dataclass(frozen=True)
class AttemptOutcome:
    """What one attempt to deliver came to (no personal data in `error`)."""

    delivery_id: str
    lease_until: dt.datetime
    ok: bool
    permanent: bool = False
    status_code: int | None = None
    case_number: str | None = None
    error: str | None = None
    retry_after_s: float | None = None
    duration_ms: float = 0.0
    # Handed over but not yet accepted (FIT-Connect): wait, and ask again after this long.
    awaiting_poll_s: float | None = None


def derive_status(statuses: Sequence[str]) -> str:
    """A submission's status from its deliveries' statuses."""
    live = [s for s in statuses if s != DeliveryStatus.CANCELLED]
    if not statuses:
        return SubmissionStatus.RECEIVED
    if not live:
        return SubmissionStatus.CANCELLED
    if any(s == DeliveryStatus.HELD for s in live):
        return SubmissionStatus.AWAITING_PAYMENT
    delivered = sum(s == DeliveryStatus.DELIVERED for s in live)
    if delivered == len(live):
        return SubmissionStatus.DELIVERED
    if delivered:
        return SubmissionStatus.PARTIALLY_DELIVERED
    if any(s in (DeliveryStatus.PENDING, DeliveryStatus.AWAITING_ACCEPT) for s in live):
        return SubmissionStatus.ROUTED
    return SubmissionStatus.FAILED


def _due(now: dt.datetime) -> ColumnElement[bool]:
    return and_(
        Delivery.status == DeliveryStatus.PENDING,
        Delivery.next_attempt_at <= now,
        or_(Delivery.lease_until.is_(None), Delivery.lease_until < now),
    )


def claim_due(
    store: Store, office_id: str, limit: int, lease_s: float
) -> tuple[list[str], dt.datetime]:
    """Lease up to `limit` due deliveries of an office; nobody else works them until the lease ends.

    Due and leased are judged by the database's clock, and the lease ends `lease_s` after the
    database's now, whatever the calling host's clock says.
    """
    with store.session() as session:
        now = database_now(session.connection())
        lease_until = now + dt.timedelta(seconds=lease_s)
        # SKIP LOCKED (PostgreSQL): two workers of one office take different rows; SQLite
        # serialises writers at BEGIN IMMEDIATE and leaves the clause out.
        ids = list(
            session.scalars(
                select(Delivery.id)
                .where(Delivery.office_id == office_id, _due(now))
                .order_by(Delivery.next_attempt_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if ids:
            # The due condition is repeated so that a row leased meanwhile is never taken twice.
            session.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids), _due(now))
                .values(lease_until=lease_until)
                .execution_options(synchronize_session=False)
            )
    return ids, lease_until


def release(store: Store, delivery_ids: Sequence[str], lease_until: dt.datetime) -> None:
    """Give back leased deliveries that were not attempted, so that the next claim takes them.

    Only the lease holder releases: a delivery leased again meanwhile keeps its new lease.
    """
    if not delivery_ids:
        return
    with store.session() as session:
        session.execute(
            update(Delivery)
            .where(
                Delivery.id.in_(list(delivery_ids)),
                Delivery.lease_until == lease_until,
                Delivery.status == DeliveryStatus.PENDING,
            )
            .values(lease_until=None)
            .execution_options(synchronize_session=False)
        )


def seconds_until_due(store: Store, office_id: str, horizon_s: float) -> float | None:
    """Seconds until the office's next pending delivery is due, if that is within `horizon_s`.

    A bulk replay staggers due times by the office's rate; a drain job that waits for the next
    one, instead of ending and being woken by the next sweep, sends them at that pace rather
    than in bursts of a sweep interval's worth.
    """
    with store.read() as session:
        now = database_now(session.connection())
        soonest = session.scalar(
            select(func.min(Delivery.next_attempt_at)).where(
                Delivery.office_id == office_id,
                Delivery.status == DeliveryStatus.PENDING,
                Delivery.next_attempt_at > now,
                Delivery.next_attempt_at <= now + dt.timedelta(seconds=horizon_s),
                or_(Delivery.lease_until.is_(None), Delivery.lease_until < now),
            )
        )
    if soonest is None:
        return None
    return max(0.0, (soonest - now).total_seconds())


def offices_with_due(store: Store) -> list[str]:
    """Offices that have deliveries due and not leased (what the sweeper wakes)."""
    with store.read() as session:
        now = database_now(session.connection())
        return list(session.scalars(select(Delivery.office_id).where(_due(now)).distinct()))


def next_attempt(
    attempts: int,
    schedule: Sequence[float],
    jitter: float,
    now: dt.datetime,
    retry_after_s: float | None,
) -> dt.datetime | None:
    """When to try again after `attempts` failed attempts, or None when the schedule is exhausted."""
    if attempts > len(schedule):
        return None
    if retry_after_s is not None:
        # The office said when it can take the case again; honour it (within a day).
        delay = min(max(retry_after_s, 0.0), MAX_RETRY_AFTER_S)
    else:
        base = schedule[attempts - 1]
        delay = base * (1 + random.uniform(-jitter, jitter))  # noqa: S311 - jitter, not secrecy
    return now + dt.timedelta(seconds=delay)


def record_outcomes(
    store: Store,
    outcomes: Sequence[AttemptOutcome],
    schedule: Sequence[float],
    jitter: float,
) -> list[AttemptOutcome]:
    """Record a batch of attempts and move the deliveries on; returns the outcomes recorded.

    An outcome whose lease was lost (the delivery was leased again or replayed meanwhile) is
    not recorded: whoever holds the delivery now will record its own attempt. One transaction
    and a handful of statements per batch, whatever its size: this is the drain loop's
    largest cost after the HTTP call itself (bench/delivery).
    """
    if not outcomes:
        return []
    by_id = {o.delivery_id: o for o in outcomes}
    recorded: list[AttemptOutcome] = []
    changes: list[dict[str, object]] = []
    events: list[dict[str, object]] = []
    with store.engine.begin() as conn:
        now = database_now(conn)
        # Hold the rows until commit, so a replay cannot slip in between read and write.
        rows = conn.execute(
            select(_D.c.id, _D.c.attempts, _D.c.lease_until, _D.c.submission_id, _D.c.office_id)
            .where(_D.c.id.in_(list(by_id)), _D.c.status == DeliveryStatus.PENDING)
            .with_for_update()
        ).all()
        for row in rows:
            outcome = by_id[row.id]
            if row.lease_until != outcome.lease_until:
                continue
            attempts = row.attempts + 1
            change, kind, detail = _advance(outcome, attempts, schedule, jitter, now)
            detail.update(
                attempt=attempts,
                office=row.office_id,
                status_code=outcome.status_code,
                duration_ms=round(outcome.duration_ms, 1),
            )
            change.update(attempts=attempts, last_status_code=outcome.status_code, updated_at=now)
            changes.append(
                {"b_id": row.id, "b_lease": outcome.lease_until}
                | {f"v_{k}": v for k, v in change.items()}
            )
            events.append(
                {
                    "submission_id": row.submission_id,
                    "delivery_id": row.id,
                    "kind": kind,
                    "actor": "worker",
                    "at": now,
                    "detail": detail,
                }
            )
            recorded.append(outcome)
        if not changes:
            return []
        conn.execute(_RECORD, changes)
        conn.execute(insert(_E), events)
        refresh_statuses(conn, {int(str(e["submission_id"])) for e in events}, now)
    return recorded


def _advance(
    outcome: AttemptOutcome,
    attempts: int,
    schedule: Sequence[float],
    jitter: float,
    now: dt.datetime,
) -> tuple[dict[str, object], str, dict[str, object]]:
    """The new column values, event kind and event detail after one attempt."""
    if outcome.ok and outcome.awaiting_poll_s is not None:
        # Submitted, not yet accepted: no case number of the office yet, and the next
        # "attempt" is a look at the case's event log (worker/fit_connect_poll.py).
        waiting: dict[str, object] = {
            "status": DeliveryStatus.AWAITING_ACCEPT,
            "delivered_at": None,
            "case_number": None,
            "last_error": None,
            "next_attempt_at": now + dt.timedelta(seconds=outcome.awaiting_poll_s),
        }
        return waiting, "delivery.submitted", {"fit_case_id": outcome.case_number}
    if outcome.ok:
        change: dict[str, object] = {
            "status": DeliveryStatus.DELIVERED,
            "delivered_at": now,
            "case_number": outcome.case_number,
            "last_error": None,
            "next_attempt_at": None,
        }
        return change, "delivery.delivered", {"case_number": outcome.case_number}
    retry_at = (
        None
        if outcome.permanent
        else next_attempt(attempts, schedule, jitter, now, outcome.retry_after_s)
    )
    change = {
        "status": DeliveryStatus.FAILED if retry_at is None else DeliveryStatus.PENDING,
        "delivered_at": None,
        "case_number": None,
        "last_error": outcome.error,
        "next_attempt_at": retry_at,
    }
    if retry_at is None:
        return change, "delivery.failed", {"error": outcome.error, "permanent": outcome.permanent}
    return (
        change,
        "delivery.retry_scheduled",
        {"error": outcome.error, "next_attempt_at": retry_at.isoformat()},
    )


def refresh_statuses(conn: Connection, submission_ids: set[int], now: dt.datetime) -> None:
    """Derive and store the status of these submissions from their deliveries.

    The submission rows are locked first (in id order, so two callers cannot deadlock): two
    workers recording the two deliveries of one submission at once would otherwise each read
    the other's delivery as still pending under READ COMMITTED, and both write
    `partially_delivered`. Whoever locks second reads after the first one's commit. FOR NO KEY
    UPDATE does not wait for the key-share locks that inserting events takes on PostgreSQL;
    SQLite has one writer at a time anyway (BEGIN IMMEDIATE) and leaves the clause out.
    """
    ordered = sorted(submission_ids)
    conn.execute(
        select(_S.c.id)
        .where(_S.c.id.in_(ordered))
        .order_by(_S.c.id)
        .with_for_update(key_share=True)
    )
    statuses: dict[int, list[str]] = {sid: [] for sid in ordered}
    for sid, status in conn.execute(
        # A payment notice to the cash office is not part of the case's own progress.
        select(_D.c.submission_id, _D.c.status).where(
            _D.c.submission_id.in_(ordered), _D.c.kind == DeliveryKind.CASE
        )
    ):
        statuses[sid].append(status)
    conn.execute(
        _SET_STATUS,
        [
            {"b_id": sid, "v_status": derive_status(found), "v_updated_at": now}
            for sid, found in statuses.items()
        ],
    )


@dataclass(frozen=True)
class ReplayResult:
    """Which deliveries a replay reset, and which it left alone and why."""

    replayed: list[str]
    skipped: dict[str, str]


def replay(
    store: Store,
    delivery_ids: Sequence[str],
    actor: str | Actor,
    reason: str = "",
) -> ReplayResult:
    """Reset failed deliveries (attempts to zero, due now) and record who did it and why.

    The delivery goes to the office it was routed to; re-routing is a separate admin action.
    """
    with store.session() as session:
        return replay_in(session, delivery_ids, actor, reason)


def replay_in(
    session: Session,
    delivery_ids: Sequence[str],
    actor: str | Actor,
    reason: str = "",
    *,
    due: Mapping[str, dt.datetime] | None = None,
    detail: Mapping[str, object] | None = None,
) -> ReplayResult:
    """`replay` inside the caller's transaction; `due` staggers when each delivery is sent.

    An `Actor` leaves its audit event through `record_action` (kind ``delivery.replayed``);
    a plain name (the CLI's ``cli:erika``) a plain event. Deliveries not failed are skipped
    with the reason, so replaying twice is harmless.
    """
    replayed: list[str] = []
    skipped: dict[str, str] = {}
    now = database_now(session.connection())
    touched: set[int] = set()
    for delivery_id in delivery_ids:
        delivery = session.get(Delivery, delivery_id)
        if delivery is None:
            skipped[delivery_id] = "unknown delivery"
            continue
        if delivery.status != DeliveryStatus.FAILED:
            skipped[delivery_id] = f"status is {delivery.status}, only failed ones are replayed"
            continue
        body: dict[str, object] = {
            "office": delivery.office_id,
            "previous_attempts": delivery.attempts,
            "last_error": delivery.last_error,
            **(detail or {}),
        }
        delivery.status = DeliveryStatus.PENDING
        delivery.attempts = 0
        delivery.next_attempt_at = max(now, due[delivery_id]) if due and delivery_id in due else now
        delivery.lease_until = None
        delivery.updated_at = now
        if isinstance(actor, Actor):
            record_action(
                session,
                actor,
                "delivery.replayed",
                submission_id=delivery.submission_id,
                delivery_id=delivery.id,
                reason=reason,
                detail=body,
            ).at = now
        else:
            session.add(
                Event(
                    submission_id=delivery.submission_id,
                    delivery_id=delivery.id,
                    kind="delivery.replayed",
                    actor=actor,
                    at=now,
                    detail={**body, "reason": reason},
                )
            )
        touched.add(delivery.submission_id)
        replayed.append(delivery_id)
    if touched:
        session.flush()
        refresh_statuses(session.connection(), touched, now)
    return ReplayResult(replayed, skipped)


def failed_deliveries(store: Store, office_id: str | None = None) -> list[Delivery]:
    """The dead-letter list: failed deliveries, oldest first, optionally of one office."""
    with store.read() as session:
        query = select(Delivery).where(Delivery.status == DeliveryStatus.FAILED)
        if office_id is not None:
            query = query.where(Delivery.office_id == office_id)
        return list(session.scalars(query.order_by(Delivery.updated_at)))


def acknowledge(
    store: Store,
    office_id: str,
    delivery_id: str,
    case_number: str | None,
) -> str | None:
    """An inbox office confirms it took a case; returns an error text, None when done.

    Acknowledging twice is harmless: the second time changes nothing and is not an error.
    """
    with store.session() as session:
        now = database_now(session.connection())
        delivery = session.get(Delivery, delivery_id)
        if delivery is None or delivery.office_id != office_id:
            return "unknown"
        if delivery.status == DeliveryStatus.DELIVERED:
            return None
        if delivery.status != DeliveryStatus.PENDING:
            return f"status is {delivery.status}"
        delivery.status = DeliveryStatus.DELIVERED
        delivery.attempts += 1
        delivery.delivered_at = now
        delivery.case_number = case_number
        delivery.next_attempt_at = None
        delivery.updated_at = now
        session.add(
            Event(
                submission_id=delivery.submission_id,
                delivery_id=delivery.id,
                kind="delivery.delivered",
                actor=f"office:{office_id}",
                at=now,
                detail={"office": office_id, "case_number": case_number, "channel": "inbox"},
            )
        )
        session.flush()
        refresh_statuses(session.connection(), {delivery.submission_id}, now)
    return None


def pending_for_office(store: Store, office_id: str, limit: int = 100) -> list[str]:
    """Ids of an office's pending deliveries, oldest first (the pull inbox)."""
    with store.read() as session:
        return list(
            session.scalars(
                select(Delivery.id)
                .where(Delivery.office_id == office_id, Delivery.status == DeliveryStatus.PENDING)
                .order_by(Delivery.created_at)
                .limit(limit)
            )
        )
