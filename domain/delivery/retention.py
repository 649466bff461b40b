"""Retention: personal data is purged a configured number of days after a case is finished.

Finished means delivered, fully cancelled, or left unpaid (its payment expired, failed or was
cancelled); the days count from the last delivery, cancellation or payment end.

A purge clears the submission's encrypted data and each attachment's content and encrypted
file name; it keeps the metadata (service, town, status, times), every attachment's hash,
size and type, the deliveries and the events, and adds a `retention.purged` event. A case
still in flight (any delivery pending or failed, or held for an open fee) is never touched:
`purgeable_clause` is the one place that says what may be purged.
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


#: Payments that ended without money: the case will not be delivered unless paid late.
UNPAID_FINAL = (
    PaymentStatus.EXPIRED,
    PaymentStatus.FAILED,
    PaymentStatus.CANCELED,
    PaymentStatus.ABANDONED,
    PaymentStatus.WITHDRAWN,
)


def _delivered_before(cutoff: dt.datetime) -> ColumnElement[bool]:
    """Delivered (the rest cancelled), the last delivery before `cutoff`."""
    return and_(
        ~exists().where(
            Delivery.submission_id == Submission.id,
            or_(
                Delivery.status.not_in([DeliveryStatus.DELIVERED, DeliveryStatus.CANCELLED]),
                # A delivered one without its time is not known to be old: it is kept.
                and_(
                    Delivery.status == DeliveryStatus.DELIVERED,
                    or_(Delivery.delivered_at.is_(None), Delivery.delivered_at >= cutoff),
                ),
            ),
        ),
        exists().where(
            Delivery.submission_id == Submission.id, Delivery.status == DeliveryStatus.DELIVERED
        ),
    )


def _cancelled_before(cutoff: dt.datetime) -> ColumnElement[bool]:
    """Every delivery cancelled, the last cancellation before `cutoff`."""
    return and_(
        exists().where(Delivery.submission_id == Submission.id),
        ~exists().where(
            Delivery.submission_id == Submission.id,
            # A cancelled delivery changes no more, so its updated_at is the cancellation.
            or_(Delivery.status != DeliveryStatus.CANCELLED, Delivery.updated_at >= cutoff),
        ),
    )


def _unpaid_before(cutoff: dt.datetime) -> ColumnElement[bool]:
    """Still held (or cancelled) for a fee whose every payment ended unpaid before `cutoff`."""
    return and_(
        exists().where(Payment.submission_id == Submission.id),
        ~exists().where(
            Payment.submission_id == Submission.id,
            # updated_at of an expired, failed or cancelled payment is when it became so.
            or_(Payment.status.not_in(UNPAID_FINAL), Payment.updated_at >= cutoff),
        ),
        ~exists().where(
            Delivery.submission_id == Submission.id,
            Delivery.status.not_in([DeliveryStatus.HELD, DeliveryStatus.CANCELLED]),
        ),
    )


def purgeable_clause(config: Config, now: dt.datetime) -> ColumnElement[bool]:
    """Submissions whose personal data may go: finished one way or another, long enough ago.

    A case is finished when every delivery is delivered (or cancelled, with at least one
    delivered), when every delivery is cancelled, or when it waits for a fee whose every
    payment expired, failed or was cancelled. The service's `retention_days` count from the
    last delivery, the last cancellation or the end of the last payment. Something personal
    must still be stored, and no payment may still be open (INITIAL: not reconciled with the
    provider). Extend it here rather than next to a caller.
    """
    per_service = []
    for service in config.services.values():
        cutoff = now - dt.timedelta(days=service.retention_days)
        per_service.append(
            and_(
                Submission.service == service.id,
                or_(
                    _delivered_before(cutoff),
                    _cancelled_before(cutoff),
                    _unpaid_before(cutoff),
                ),
            )
        )
    personal = or_(
        Submission.data.is_not(None),
        exists().where(Attachment.submission_id == Submission.id, Attachment.content.is_not(None)),
    )
    # A payment still open may yet be paid and must then reach the cash office with its case;
    # so may an abandoned or withdrawn one the reconciliation still asks about.
    unreconciled = exists().where(
        Payment.submission_id == Submission.id,
        or_(
            Payment.status == PaymentStatus.INITIAL,
            and_(
                Payment.status.in_([PaymentStatus.ABANDONED, PaymentStatus.WITHDRAWN]),
                Payment.next_check_at.is_not(None),
            ),
        ),
    )
    return and_(or_(False, *per_service), personal, ~unreconciled)


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
