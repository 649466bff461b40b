"""Deliveries and payments as they stood at a past moment, read from the rows and the events.

The daily report of a past day (`worker.digest`, the admin page's Tagesbericht) must say what
it said on that day, although cases moved on since. A row not changed since the moment
(`updated_at <= at`) still holds its state of then; only rows changed later are read from the
append-only `events`: the latest event that moved the delivery (or ended the payment) at or
before the moment gives its state. At the present moment no row is changed later, so the
report of "now" reads the rows alone, exactly as before.

A limited actor (`domain.accounts.scopes`) reads only its offices' deliveries, and the open
payments of cases with a delivery to its offices; the e-mail digest reads everything.

Known limit: the error text of an open payment's last status check is the row's for a payment
not changed since, else the last `payment.provider_error` event's (at most 200 characters).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.orm import Session

from domain.accounts.scopes import EVERYTHING, Scope
from store.models import (
    BulkReplay,
    BulkReplayItem,
    Delivery,
    DeliveryStatus,
    Event,
    Payment,
    PaymentStatus,
)

# The events that move a delivery from one status to another (what the status became).
DELIVERY_MOVES: dict[str, str] = {
    "delivery.routed": DeliveryStatus.PENDING,  # or held: see `_status_after`
    "delivery.released": DeliveryStatus.PENDING,
    "delivery.replayed": DeliveryStatus.PENDING,
    "delivery.retry_scheduled": DeliveryStatus.PENDING,
    "delivery.failed": DeliveryStatus.FAILED,
    "delivery.delivered": DeliveryStatus.DELIVERED,
    "delivery.submitted": DeliveryStatus.AWAITING_ACCEPT,
    "delivery.cancelled": DeliveryStatus.CANCELLED,
    "delivery.rerouted": DeliveryStatus.CANCELLED,  # the old delivery; the new one is a row
}
# The events that end an open payment.
PAYMENT_ENDS = ("payment.paid", "payment.failed", "payment.canceled", "payment.expired")
_CHUNK = 500


@dataclass(frozen=True)
class PastDelivery:
    """A delivery as it stood at the moment: status, attempts so far, since when in it."""

    id: str
    submission_id: int
    office_id: str
    created_at: dt.datetime
    status: str
    attempts: int
    since: dt.datetime


@dataclass(frozen=True)
class PastPayment:
    """A payment still open at the moment, with the last check's error then."""

    id: str
    submission_id: int
    amount_cents: int
    currency: str
    provider: str
    created_at: dt.datetime
    last_error: str | None


def _chunks(ids: list[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


def deliveries_as_of(
    session: Session, at: dt.datetime, statuses: set[str], scope: Scope = EVERYTHING
) -> list[PastDelivery]:
    """Every delivery within `scope` that existed at `at` and then had one of `statuses`,
    oldest first."""
    found = [
        PastDelivery(
            r.id, r.submission_id, r.office_id, r.created_at, r.status, r.attempts, r.updated_at
        )
        for r in session.execute(
            select(
                Delivery.id,
                Delivery.submission_id,
                Delivery.office_id,
                Delivery.created_at,
                Delivery.status,
                Delivery.attempts,
                Delivery.updated_at,
            ).where(
                Delivery.status.in_(sorted(statuses)), Delivery.updated_at <= at, *_within(scope)
            )
        )
    ]
    found += [d for d in _changed_since(session, at, scope) if d.status in statuses]
    return sorted(found, key=lambda d: (d.created_at, d.id))


def _within(scope: Scope) -> list[ColumnElement[bool]]:
    """The condition on deliveries for a limited scope; none at all for everything."""
    return [scope.deliveries()] if scope.limited else []


def _changed_since(session: Session, at: dt.datetime, scope: Scope) -> list[PastDelivery]:
    """The deliveries (within `scope`) created by `at` and changed after it, in their state
    at `at`."""
    latest = (
        select(Event.delivery_id, func.max(Event.id).label("event_id"))
        .join(Delivery, Delivery.id == Event.delivery_id)
        .where(
            Delivery.created_at <= at,
            Delivery.updated_at > at,
            Event.at <= at,
            Event.kind.in_(list(DELIVERY_MOVES)),
            *_within(scope),
        )
        .group_by(Event.delivery_id)
        .subquery()
    )
    rows = session.execute(
        select(
            Delivery.id,
            Delivery.submission_id,
            Delivery.office_id,
            Delivery.created_at,
            Delivery.status,
            Event.kind,
            Event.at,
            Event.detail,
        )
        .outerjoin(latest, latest.c.delivery_id == Delivery.id)
        .outerjoin(Event, Event.id == latest.c.event_id)
        .where(Delivery.created_at <= at, Delivery.updated_at > at, *_within(scope))
    ).all()
    routed = [r.id for r in rows if r.kind == "delivery.routed" and r.status != DeliveryStatus.HELD]
    released = _released(session, routed)
    withdrawn = _withdrawn(session, [r.id for r in rows if r.kind == "delivery.replayed"], at)
    out = []
    for r in rows:
        status, attempts, since = _status_after(r, released, withdrawn)
        out.append(
            PastDelivery(r.id, r.submission_id, r.office_id, r.created_at, status, attempts, since)
        )
    return out


def _status_after(
    row: Any, released: set[str], withdrawn: dict[tuple[str, Any], tuple[int, dt.datetime]]
) -> tuple[str, int, dt.datetime]:
    """The status, attempts and since-when a delivery had after its latest moving event."""
    detail = row.detail or {}
    if row.kind is None:
        # Made by a re-route (its event names the old delivery): waiting since it was made.
        return DeliveryStatus.PENDING, 0, row.created_at
    if row.kind == "delivery.routed":
        # Held for a fee from the start: it is released later, or still held now.
        held = row.status == DeliveryStatus.HELD or row.id in released
        return (DeliveryStatus.HELD if held else DeliveryStatus.PENDING), 0, row.at
    taken = (row.id, detail.get("bulk_replay"))
    if row.kind == "delivery.replayed" and taken in withdrawn:
        # Taken by a bulk replay that was cancelled before it was sent: failed again.
        previous, cancelled_at = withdrawn[taken]
        return DeliveryStatus.FAILED, previous, cancelled_at
    attempts = detail.get("attempt")
    return DELIVERY_MOVES[row.kind], int(attempts) if isinstance(attempts, int) else 0, row.at


def _released(session: Session, ids: list[str]) -> set[str]:
    out: set[str] = set()
    for chunk in _chunks(ids):
        out.update(
            session.scalars(
                select(Event.delivery_id).where(
                    Event.kind == "delivery.released", Event.delivery_id.in_(chunk)
                )
            )
        )
    return {d for d in out if d is not None}


def _withdrawn(
    session: Session, ids: list[str], at: dt.datetime
) -> dict[tuple[str, Any], tuple[int, dt.datetime]]:
    """(delivery, bulk replay) given back by a bulk replay cancelled by `at`: attempts, when."""
    out: dict[tuple[str, Any], tuple[int, dt.datetime]] = {}
    for chunk in _chunks(ids):
        for delivery_id, bulk_id, previous, finished in session.execute(
            select(
                BulkReplayItem.delivery_id,
                BulkReplayItem.bulk_replay_id,
                BulkReplayItem.previous_attempts,
                BulkReplay.finished_at,
            )
            .join(BulkReplay, BulkReplay.id == BulkReplayItem.bulk_replay_id)
            .where(
                BulkReplayItem.delivery_id.in_(chunk),
                BulkReplayItem.withdrawn.is_(True),
                BulkReplay.finished_at <= at,
            )
        ):
            if finished is not None:  # the query asks for it; a cancelled replay has one
                out[(delivery_id, bulk_id)] = (previous, finished)
    return out


def open_payments_as_of(
    session: Session,
    at: dt.datetime,
    started_by: dt.datetime,
    limit: int,
    scope: Scope = EVERYTHING,
) -> list[PastPayment]:
    """Payments started by `started_by` and still open at `at`, oldest first, at most `limit`;
    for a limited scope only those of cases with a delivery to its offices."""
    columns = (
        Payment.id,
        Payment.submission_id,
        Payment.amount_cents,
        Payment.currency,
        Payment.provider,
        Payment.created_at,
        Payment.updated_at,
        Payment.last_error,
    )
    within = (
        [exists().where(Delivery.submission_id == Payment.submission_id, scope.deliveries())]
        if scope.limited
        else []
    )
    # Open and unchanged since (ix_payments_check), or changed since (ix_payments_updated).
    unchanged = session.execute(
        select(*columns)
        .where(
            Payment.status == PaymentStatus.INITIAL,
            Payment.updated_at <= at,
            Payment.created_at <= started_by,
            *within,
        )
        .order_by(Payment.created_at, Payment.id)
        .limit(limit)
    ).all()
    later = session.execute(
        select(*columns).where(Payment.updated_at > at, Payment.created_at <= started_by, *within)
    ).all()
    ended, errors = _payment_events(session, {r.submission_id for r in later}, at)
    found = [_past(r, r.last_error) for r in unchanged]
    found += [_past(r, errors.get(r.id)) for r in later if r.id not in ended]
    return sorted(found, key=lambda p: (p.created_at, p.id))[:limit]


def _past(row: Any, error: str | None) -> PastPayment:
    return PastPayment(
        row.id,
        row.submission_id,
        row.amount_cents,
        row.currency,
        row.provider,
        row.created_at,
        error,
    )


def _payment_events(
    session: Session, submission_ids: set[int], at: dt.datetime
) -> tuple[set[str], dict[str, str]]:
    """The payments (of these cases) ended by `at`, and each one's last check error then."""
    ended: set[str] = set()
    errors: dict[str, str] = {}
    for chunk in _chunks(sorted(submission_ids)):
        for kind, detail in session.execute(
            select(Event.kind, Event.detail)
            .where(
                Event.submission_id.in_(chunk),
                Event.at <= at,
                Event.kind.in_([*PAYMENT_ENDS, "payment.provider_error"]),
            )
            .order_by(Event.id)
        ):
            payment_id = str((detail or {}).get("payment_id", ""))
            if kind == "payment.provider_error":
                errors[payment_id] = str(detail.get("error", ""))
            else:
                ended.add(payment_id)
    return ended, errors
