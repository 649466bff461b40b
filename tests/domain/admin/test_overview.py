"""The overview: counts by status, failures per office per day, oldest pending, Redis figures."""

from __future__ import annotations

import datetime as dt

from flask.testing import FlaskClient
from sqlalchemy import update

from domain.admin.overview import overview
from store.engine import Store
from store.models import Delivery, Event
from tests.admin_support import fail_all, post
from tests.conftest import TEST_ADMIN
from worker.queue_status import QueueStatus, queue_status


def test_overview_counts_and_chart(client: FlaskClient, store: Store) -> None:
    """Failures are counted per office on the Berlin day their event happened."""
    post(client)
    post(client)
    post(client, "traffic-order")
    ids = fail_all(store)
    now = dt.datetime.now(dt.UTC)
    with store.session() as session:
        for i, delivery_id in enumerate(ids[:2]):
            session.add(
                Event(
                    delivery_id=delivery_id, kind="delivery.failed", actor="worker",
                    at=now - dt.timedelta(days=i), detail={},
                )
            )  # fmt: skip
        session.add(
            Event(delivery_id=ids[0], kind="delivery.failed", actor="worker",
                  at=now - dt.timedelta(days=20), detail={})
        )  # fmt: skip
        session.execute(update(Delivery).where(Delivery.id == ids[2]).values(status="pending"))
    found = overview(store, actor=TEST_ADMIN, now=now, queue_depth=3, live_workers=1)
    assert found.submissions_by_status == {"failed": 3}
    assert found.deliveries_by_status == {"failed": 2, "pending": 1}
    assert len(found.days) == 14
    assert found.failures_per_office_day == {"usingen-steueramt": [0] * 12 + [1, 1]}
    assert [w.office for w in found.oldest_pending] == ["neu-anspach-ordnungsamt"]
    assert (found.queue_depth, found.live_workers) == (3, 1)


def test_queue_figures_are_unknown_without_redis(client: FlaskClient, redis_url: str) -> None:
    """Redis answers: numbers; Redis away: None ("unbekannt"), never an error."""
    from redis import Redis

    assert queue_status(Redis.from_url(redis_url)) == QueueStatus(0, 0)
    away = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    assert queue_status(away) == QueueStatus(None, None)
