"""The payment callback journal's retention: rows older than BRIDGE_PAYMENT_JOURNAL_DAYS go.

The journal answers "did the provider call us, and what did we answer?" for a while after a
payment; nothing else reads it (a payment's history is its row and the case's events), so it is
purged by age alone. Every row holds a caller's address and a body, which a store must not keep
for ever, nor let a flood pile up.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select

from store.clock import database_now
from store.engine import Store
from store.models import PaymentCallback

BATCH = 1000


def purge_journal(store: Store, days: int, *, batch: int = BATCH) -> int:
    """Delete journal rows older than `days` (by the database's clock), `batch` per transaction.

    Returns how many rows were deleted. Short transactions keep SQLite's single writer free
    for intake between batches.
    """
    deleted = 0
    while True:
        with store.session() as session:
            cutoff = database_now(session.connection()) - dt.timedelta(days=days)
            ids = list(
                session.scalars(
                    select(PaymentCallback.id)
                    .where(PaymentCallback.at < cutoff)
                    .order_by(PaymentCallback.id)
                    .limit(batch)
                )
            )
            if ids:
                session.execute(
                    delete(PaymentCallback)
                    .where(PaymentCallback.id.in_(ids))
                    .execution_options(synchronize_session=False)
                )
        deleted += len(ids)
        if len(ids) < batch:
            return deleted
