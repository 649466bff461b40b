"""The bulk replay's stored state: one running at a time (the database says so), done when tried."""

from __future__ import annotations

from itertools import pairwise

import pytest
from flask.testing import FlaskClient
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from domain.admin import bulk_replay
from domain.admin.search import SubmissionFilter
from domain.settings import Settings
from store.engine import Store
from store.models import BulkReplay, Delivery, utcnow
from tests.admin_support import OPERATOR, fail_all, post


def test_the_database_allows_one_running_bulk_replay(store: Store) -> None:
    """Two rows with status running violate the partial unique index; done ones do not."""
    row = {"filter": {}, "total": 1, "processed": 0, "failed": 0, "created_by": "x",
           "reason": "r", "rate_per_office": 5.0, "created_at": utcnow()}  # fmt: skip
    with store.session() as session:
        session.execute(insert(BulkReplay), [{**row, "status": "done"}, {**row, "status": "done"}])
        session.execute(insert(BulkReplay), [{**row, "status": "running"}])
    with pytest.raises(IntegrityError), store.session() as session:
        session.execute(insert(BulkReplay), [{**row, "status": "running"}])


def test_staggered_release_and_done_once_tried(
    client: FlaskClient, store: Store, settings: Settings
) -> None:
    """Due times are 1/rate apart per office; the sweeper step marks the replay done."""
    for _ in range(3):
        post(client)
    post(client, "traffic-order")
    fail_all(store)
    view, offices = bulk_replay.start(
        store, settings.config, SubmissionFilter(), OPERATOR, "wieder da", rate_per_office=2.0
    )
    assert offices == ["neu-anspach-ordnungsamt", "usingen-steueramt"]
    with store.read() as session:
        due = sorted(
            d
            for d in session.scalars(
                select(Delivery.next_attempt_at).where(Delivery.office_id == "usingen-steueramt")
            )
            if d is not None
        )
        ids = list(session.scalars(select(Delivery.id)))
    assert [round((b - a).total_seconds(), 3) for a, b in pairwise(due)] == [
        0.5,
        0.5,
    ]
    assert bulk_replay.paced(store, ids) == {i: 2.0 for i in ids}
    assert bulk_replay.refresh_running(store) is not None
    with store.session() as session:
        session.execute(update(Delivery).values(status="delivered", attempts=1))
    done = bulk_replay.refresh_running(store)
    assert done is not None
    assert (done.status, done.processed, done.delivered) == ("done", 4, 4)
    assert bulk_replay.refresh_running(store) is None
    assert bulk_replay.paced(store, ids) == {}
    assert view.total == 4
