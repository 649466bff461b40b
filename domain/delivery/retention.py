"""Retention: personal data is purged a configured number of days after a case is finally delivered.

A purge clears the submission's encrypted data and each attachment's content and encrypted
file name; it keeps the metadata (service, town, status, times), every attachment's hash,
size and type, the deliveries and the events, and adds a `retention.purged` event. A case
still in flight (any delivery pending, failed or held) is never touched: `purgeable_clause`
is the one place that says what may be purged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, update

from domain.config import Config
from store.clock import database_now
from store.engine import Store
from store.models import (
    Attachment,
    Delivery,
    DeliveryStatus,
    Event,
    Payment,
    PaymentStatus,
    Submission,
)

BATCH = 500


def purgeable_clause(config: Config, now: dt.datetime) -> ColumnElement[bool]:
    """Submissions whose personal data may go: delivered everywhere, long enough ago.

    Every delivery is delivered (or cancelled, with at least one delivered), the last delivery
    is older than the service's `retention_days`, and something personal is still stored.
    No payment of the case may still be open (INITIAL: not reconciled with the provider).
    Extend it here rather than next to a caller.
    """
    per_service = [
        and_(
            Submission.service == service.id,
            ~exists().where(
                Delivery.submission_id == Submission.id,
                or_(
                    Delivery.status.not_in([DeliveryStatus.DELIVERED, DeliveryStatus.CANCELLED]),
                    # A delivered one without its time is not known to be old: it is kept.
                    and_(
                        Delivery.status == DeliveryStatus.DELIVERED,
                        or_(
                            Delivery.delivered_at.is_(None),
                            Delivery.delivered_at
                            >= now - dt.timedelta(days=service.retention_days),
                        ),
                    ),
                ),
            ),
        )
        for service in config.services.values()
    ]
    delivered = exists().where(
        Delivery.submission_id == Submission.id, Delivery.status == DeliveryStatus.DELIVERED
    )
    personal = or_(
        Submission.data.is_not(None),
        exists().where(Attachment.submission_id == Submission.id, Attachment.content.is_not(None)),
    )
    # A payment still open may yet be paid and must then reach the cash office with its case.
    unreconciled = exists().where(
        Payment.submission_id == Submission.id, Payment.status == PaymentStatus.INITIAL
    )
    return and_(or_(False, *per_service), delivered, personal, ~unreconciled)


@dataclass(frozen=True)
class PurgeResult:
    """How many cases were purged (or, in a dry run, would be)."""

    submissions: int
    attachments: int
    dry_run: bool


def count_purgeable(store: Store, config: Config) -> int:
    """How many cases a purge would clear now (the dry run)."""
    with store.read() as session:
        now = database_now(session.connection())
        return (
            session.scalar(
                select(func.count()).select_from(Submission).where(purgeable_clause(config, now))
            )
            or 0
        )


def purge(
    store: Store, config: Config, *, dry_run: bool = False, batch: int = BATCH
) -> PurgeResult:
    """Purge every purgeable case, `batch` per transaction; a dry run only counts."""
    if dry_run:
        return PurgeResult(count_purgeable(store, config), 0, True)
    submissions = attachments = 0
    while True:
        with store.session() as session:
            now = database_now(session.connection())
            ids = list(
                session.scalars(
                    select(Submission.id)
                    .where(purgeable_clause(config, now))
                    .order_by(Submission.id)
                    .limit(batch)
                    .with_for_update(skip_locked=True)
                )
            )
            if not ids:
                break
            counts = {
                sid: n
                for sid, n in session.execute(
                    select(Attachment.submission_id, func.count())
                    .where(Attachment.submission_id.in_(ids), Attachment.content.is_not(None))
                    .group_by(Attachment.submission_id)
                )
            }
            session.execute(
                update(Submission)
                .where(Submission.id.in_(ids))
                .values(data=None, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            session.execute(
                update(Attachment)
                .where(Attachment.submission_id.in_(ids))
                .values(content=None, filename=b"")
                .execution_options(synchronize_session=False)
            )
            session.add_all(
                Event(
                    submission_id=sid,
                    kind="retention.purged",
                    actor="retention",
                    at=now,
                    detail={"attachments": int(counts.get(sid, 0))},
                )
                for sid in ids
            )
            submissions += len(ids)
            attachments += sum(int(c) for c in counts.values())
        if len(ids) < batch:
            break
    return PurgeResult(submissions, attachments, False)
