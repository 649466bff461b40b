"""Queue truth in the database: a drain job that crashed is recorded on its office's deliveries.

RQ keeps crashed jobs in its failed-job registry; the bridge's one list of failures is the
database. `record_crash` turns one crashed job into an event and, on the deliveries whose
lease it left to run out, a last error, so the crash is visible where administrators look.
"""

from __future__ import annotations

from sqlalchemy import select

from store.clock import database_now
from store.engine import Store
from store.models import Delivery, DeliveryStatus, Event

MAX_ERROR = 200


def record_crash(store: Store, office_id: str, job_id: str, error_type: str) -> int:
    """Record a crashed drain job; returns how many orphaned deliveries got its error.

    Orphaned are the office's pending deliveries whose lease ran out without an attempt being
    recorded (the crashed job held them); they are due again and the sweeper wakes them. Only
    the exception's type is kept: its message may quote personal data.
    """
    error = f"Verarbeitung abgebrochen (Job {job_id[:60]}: {error_type[:60]})"[:MAX_ERROR]
    with store.session() as session:
        now = database_now(session.connection())
        orphans = list(
            session.scalars(
                select(Delivery)
                .where(
                    Delivery.office_id == office_id,
                    Delivery.status == DeliveryStatus.PENDING,
                    Delivery.lease_until.is_not(None),
                    Delivery.lease_until < now,
                )
                .with_for_update(skip_locked=True)
            )
        )
        for delivery in orphans:
            delivery.last_error = error
            delivery.lease_until = None
            delivery.updated_at = now
        session.add(
            Event(
                kind="queue.job_crashed",
                actor="sweeper",
                at=now,
                detail={
                    "office": office_id,
                    "job": job_id[:100],
                    "error": error_type[:60],
                    "deliveries": [d.id for d in orphans],
                },
            )
        )
        session.add_all(
            Event(
                submission_id=d.submission_id,
                delivery_id=d.id,
                kind="delivery.job_crashed",
                actor="sweeper",
                at=now,
                detail={"office": office_id, "job": job_id[:100], "error": error_type[:60]},
            )
            for d in orphans
        )
    return len(orphans)
