"""The administrators' overview: counts by status, failures per office and day, what waits longest.

Queue depth and live workers live in Redis, which the domain does not reach: the caller passes
them in (`worker.queue_status.queue_status`), None meaning "unbekannt" when Redis is down.
The counts are the actor's own: an actor limited to offices counts only their cases and
deliveries (`domain.accounts.scopes`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select

from domain.accounts.accounts import Actor
from domain.accounts.scopes import scope_of
from schemas.options import LOCAL_TZ
from store.engine import Store
from store.models import Delivery, DeliveryStatus, Event, Submission, format_reference


@dataclass(frozen=True)
class WaitingDelivery:
    """A pending delivery and since when it waits."""

    delivery_id: str
    reference: str
    office: str
    attempts: int
    waiting_since: dt.datetime
    last_error: str | None


@dataclass(frozen=True)
class Overview:
    """What the start page shows."""

    submissions_by_status: dict[str, int]
    deliveries_by_status: dict[str, int]
    # office -> one count per day, oldest day first, for `days`
    failures_per_office_day: dict[str, list[int]]
    days: list[dt.date]
    oldest_pending: list[WaitingDelivery]
    queue_depth: int | None
    live_workers: int | None


def overview(
    store: Store,
    *,
    actor: Actor,
    now: dt.datetime,
    days: int = 14,
    queue_depth: int | None = None,
    live_workers: int | None = None,
    oldest: int = 10,
) -> Overview:
    """Counts and the failure chart's data as of `now` (days are Europe/Berlin days), within
    `actor`'s scope."""
    scope = scope_of(actor)
    today = now.astimezone(LOCAL_TZ).date()
    day_list = [today - dt.timedelta(days=i) for i in range(days - 1, -1, -1)]
    start = dt.datetime.combine(day_list[0], dt.time(), tzinfo=LOCAL_TZ).astimezone(dt.UTC)
    with store.read() as session:
        by_submission = {
            status: count
            for status, count in session.execute(
                select(Submission.status, func.count())
                .where(scope.submissions())
                .group_by(Submission.status)
            )
        }
        by_delivery = {
            status: count
            for status, count in session.execute(
                select(Delivery.status, func.count())
                .where(scope.deliveries())
                .group_by(Delivery.status)
            )
        }
        failures: dict[str, list[int]] = {}
        index = {d: i for i, d in enumerate(day_list)}
        for office_id, at in session.execute(
            select(Delivery.office_id, Event.at)
            .join(Delivery, Delivery.id == Event.delivery_id)
            .where(Event.kind == "delivery.failed", Event.at >= start, scope.deliveries())
        ):
            day = at.astimezone(LOCAL_TZ).date()
            if day in index:
                failures.setdefault(office_id, [0] * days)[index[day]] += 1
        waiting = session.execute(
            select(
                Delivery.id,
                Delivery.office_id,
                Delivery.attempts,
                Delivery.created_at,
                Delivery.last_error,
                Submission.reference_prefix,
                Submission.reference_year,
                Submission.id.label("number"),
            )
            .join(Submission, Submission.id == Delivery.submission_id)
            .where(Delivery.status == DeliveryStatus.PENDING, scope.deliveries())
            .order_by(Delivery.created_at)
            .limit(oldest)
        ).all()
    return Overview(
        submissions_by_status={str(k): int(v) for k, v in by_submission.items()},
        deliveries_by_status={str(k): int(v) for k, v in by_delivery.items()},
        failures_per_office_day=dict(sorted(failures.items())),
        days=day_list,
        oldest_pending=[
            WaitingDelivery(
                delivery_id=w.id,
                reference=format_reference(w.reference_prefix, w.reference_year, w.number),
                office=w.office_id,
                attempts=w.attempts,
                waiting_since=w.created_at,
                last_error=w.last_error,
            )
            for w in waiting
        ],
        queue_depth=queue_depth,
        live_workers=live_workers,
    )
