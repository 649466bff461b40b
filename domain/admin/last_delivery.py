"""When each office last took a delivery: the "is it back?" hint beside the failed list."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from sqlalchemy import func, select

from store.engine import Store
from store.models import Delivery, DeliveryStatus


def last_delivered(store: Store, office_ids: Collection[str]) -> dict[str, dt.datetime]:
    """The latest successful delivery per office of `office_ids` (offices without one left out)."""
    if not office_ids:
        return {}
    with store.read() as session:
        rows = session.execute(
            select(Delivery.office_id, func.max(Delivery.delivered_at))
            .where(
                Delivery.office_id.in_(list(office_ids)),
                Delivery.status == DeliveryStatus.DELIVERED,
            )
            .group_by(Delivery.office_id)
        ).all()
    return {office: at for office, at in rows if at is not None}
