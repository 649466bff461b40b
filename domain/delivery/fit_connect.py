"""FIT-Connect deliveries in the database: progress kept, waiting for acceptance, case events.

A FIT-Connect delivery is delivered only when its destination accepts it (ADR 15): after the
submission is handed over it waits in `awaiting_accept`, and the sweeper reads the case's event
log on a schedule. Every change here happens in one transaction with the event that records it,
and only while the caller holds the delivery's lease, like every other delivery change.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from domain.delivery.deliveries import refresh_statuses
from infra.logs import log_event
from store.clock import database_now
from store.engine import Store
from store.models import Delivery, DeliveryStatus, Event

log = logging.getLogger(__name__)

#: Event kinds of the case's event log as the bridge journals it (admin/labels.py names them).
EVENT_VERIFIED = "fit_connect.event"
EVENT_REFUSED = "fit_connect.event_refused"
ACCEPT = "accept-submission"
REJECT = "reject-submission"
DELETE = "delete-submission"
#: Why a deleted submission failed (FIT-Connect deletes one nobody fetched in time, for one).
DELETED = "FIT-Connect hat die Einreichung gelöscht, ohne dass die Stelle sie angenommen hat."
#: Why a submission may be created anew on a replay: the old one is gone or was rejected.
FINISHED_OUTCOMES = frozenset({"rejected", "gone"})
#: How the error of a rejected submission begins (the admin page shows it as it stands).
REJECTED = "Vom Zustellpunkt abgelehnt"


@dataclass(frozen=True)
class CaseEvent:
    """One entry of a case's event log as the channel read it (never personal data).

    `key` identifies the entry across polls (its `jti`, or a digest of an unreadable token);
    `verified` says whether signature and claims held; `reason` why not; `problems` are a
    rejection's problems in words.
    """

    key: str
    event: str
    verified: bool
    issued_at: int | None = None
    reason: str | None = None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Awaiting:
    """A delivery waiting for its destination's answer, leased to one poller."""

    delivery_id: str
    office_id: str
    state: Mapping[str, Any]
    lease_until: dt.datetime


def remember_progress(
    store: Store, delivery_id: str, lease_until: dt.datetime, state: Mapping[str, Any]
) -> bool:
    """Commit a FIT-Connect attempt's progress with its delivery; False when the lease is lost.

    Called before anything is uploaded to a new submission, so a crash after this point finds
    the submission id and resumes it instead of creating a second submission.
    """
    with store.session() as session:
        changed = session.execute(
            update(Delivery)
            .where(
                Delivery.id == delivery_id,
                Delivery.lease_until == lease_until,
                Delivery.status == DeliveryStatus.PENDING,
            )
            .values(
                fit_state=dict(state),
                fit_submission_id=state.get("submission_id"),
                fit_case_id=state.get("case_id"),
            )
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(changed, "rowcount", 0))


def claim_awaiting(store: Store, limit: int, lease_s: float) -> list[Awaiting]:
    """Lease up to `limit` waiting deliveries whose next look at the event log is due."""
    with store.session() as session:
        now = database_now(session.connection())
        lease_until = now + dt.timedelta(seconds=lease_s)
        due = (
            Delivery.status == DeliveryStatus.AWAITING_ACCEPT,
            Delivery.next_attempt_at <= now,
            or_(Delivery.lease_until.is_(None), Delivery.lease_until < now),
        )
        rows = session.execute(
            select(Delivery.id, Delivery.office_id, Delivery.fit_state)
            .where(*due)
            .order_by(Delivery.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        if not rows:
            return []
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_([r.id for r in rows]), *due)
            .values(lease_until=lease_until)
            .execution_options(synchronize_session=False)
        )
    return [Awaiting(r.id, r.office_id, dict(r.fit_state or {}), lease_until) for r in rows]


def poll_soon(store: Store, case_id: str) -> int:
    """Make the waiting delivery of a case due for a look now (a callback said news are there)."""
    with store.session() as session:
        now = database_now(session.connection())
        changed = session.execute(
            update(Delivery)
            .where(
                Delivery.fit_case_id == case_id,
                Delivery.status == DeliveryStatus.AWAITING_ACCEPT,
            )
            .values(next_attempt_at=now)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(changed, "rowcount", 0))


def rejection_text(problems: Sequence[str]) -> str:
    """The error shown for a rejected submission (German, the problems in words)."""
    if not problems:
        return f"{REJECTED} (ohne Begründung)."
    return f"{REJECTED}: " + "; ".join(problems)


def apply_case_events(
    store: Store,
    waiting: Awaiting,
    events: Sequence[CaseEvent],
    poll_again_s: float,
    *,
    gone: str | None = None,
) -> str | None:
    """Journal new entries of a case's event log and move the delivery on; returns its status.

    A verified `accept-submission` makes the delivery delivered, a verified
    `reject-submission` failed with the problems in words; a refused entry changes nothing but
    is journalled once (and logged). `gone` (the case no longer exists) fails the delivery.
    Without a verdict the delivery waits for the next look. None when the lease was lost.
    """
    with store.session() as session:
        now = database_now(session.connection())
        delivery = session.get(Delivery, waiting.delivery_id, with_for_update=True)
        if (
            delivery is None
            or delivery.status != DeliveryStatus.AWAITING_ACCEPT
            or delivery.lease_until != waiting.lease_until
        ):
            return None
        seen = {
            str(e.detail.get("key"))
            for e in session.scalars(
                select(Event).where(
                    Event.delivery_id == delivery.id,
                    Event.kind.in_((EVENT_VERIFIED, EVENT_REFUSED)),
                )
            )
        }
        verdict: CaseEvent | None = None
        for entry in events:
            if entry.verified and entry.event in (ACCEPT, REJECT) and verdict is None:
                verdict = entry
            if entry.verified and entry.event == DELETE and gone is None:
                gone = DELETED
            if entry.key in seen:
                continue
            seen.add(entry.key)
            _journal(session, delivery, entry, now)
        state = dict(delivery.fit_state or {})
        delivery.lease_until = None
        delivery.updated_at = now
        if verdict is not None and verdict.event == ACCEPT:
            delivery.status = DeliveryStatus.DELIVERED
            delivery.delivered_at = now
            delivery.next_attempt_at = None
            delivery.last_error = None
            state["outcome"] = "accepted"
            _event(session, delivery, "delivery.delivered", now, fit_case_id=delivery.fit_case_id)
        elif verdict is not None or gone is not None:
            error = rejection_text(verdict.problems) if verdict is not None else str(gone)
            delivery.status = DeliveryStatus.FAILED
            delivery.next_attempt_at = None
            delivery.last_error = error
            # The submit's 200 is not what failed: the page explains the stored words instead.
            delivery.last_status_code = None
            state["outcome"] = "rejected" if verdict is not None else "gone"
            _event(session, delivery, "delivery.failed", now, error=error, permanent=True)
        else:
            delivery.next_attempt_at = now + dt.timedelta(seconds=poll_again_s)
        delivery.fit_state = state
        session.flush()
        refresh_statuses(session.connection(), {delivery.submission_id}, now)
        return str(delivery.status)


def _journal(session: Session, delivery: Delivery, entry: CaseEvent, now: dt.datetime) -> None:
    """One row per entry of the event log; a refused one is also logged (ids only)."""
    issued = (
        dt.datetime.fromtimestamp(entry.issued_at, dt.UTC).isoformat()
        if entry.issued_at is not None
        else None
    )
    if entry.verified:
        _event(
            session,
            delivery,
            EVENT_VERIFIED,
            now,
            key=entry.key,
            event=entry.event,
            issued_at=issued,
            problems=list(entry.problems),
        )
        return
    _event(
        session,
        delivery,
        EVENT_REFUSED,
        now,
        key=entry.key,
        event=entry.event,
        issued_at=issued,
        reason=entry.reason,
    )
    log_event(
        log,
        "fit_connect.event_refused",
        level=logging.WARNING,
        delivery=delivery.id,
        fit_case_id=delivery.fit_case_id,
        case_event=entry.event,
        reason=entry.reason,
    )


def _event(session: Any, delivery: Delivery, kind: str, now: dt.datetime, **detail: object) -> None:
    session.add(
        Event(
            submission_id=delivery.submission_id,
            delivery_id=delivery.id,
            kind=kind,
            actor="worker",
            at=now,
            detail={"office": delivery.office_id, **detail},
        )
    )
