"""The last successful delivery per office, as the failed list shows it beside each office."""

from __future__ import annotations

import datetime as dt

from flask.testing import FlaskClient
from sqlalchemy import select, update

from domain.admin.last_delivery import last_delivered
from store.engine import Store
from store.models import Delivery
from tests.admin_support import post


def test_the_latest_delivery_per_office_in_utc(client: FlaskClient, store: Store) -> None:
    """The newest delivered one counts (failed ones do not), as an aware UTC time on every
    database."""
    post(client)
    post(client)
    post(client, "traffic-order")
    early = dt.datetime(2026, 12, 5, 8, 0, tzinfo=dt.UTC)
    late = dt.datetime(2026, 12, 6, 9, 30, tzinfo=dt.UTC)
    with store.session() as session:
        tax = list(
            session.scalars(
                select(Delivery.id)
                .where(Delivery.office_id == "usingen-steueramt")
                .order_by(Delivery.created_at)
            )
        )
        session.execute(
            update(Delivery)
            .where(Delivery.id == tax[0])
            .values(status="delivered", delivered_at=early)
        )
        session.execute(
            update(Delivery).where(Delivery.id == tax[1]).values(status="failed", delivered_at=late)
        )
    found = last_delivered(store, ["usingen-steueramt", "neu-anspach-ordnungsamt"])
    assert found == {"usingen-steueramt": early}
    assert found["usingen-steueramt"].utcoffset() == dt.timedelta(0)
