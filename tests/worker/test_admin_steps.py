"""The sweeper's administration steps: a finished bulk replay is marked done, old data purged."""

from __future__ import annotations

import datetime as dt

from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import select, update

from domain.admin import bulk_replay
from domain.admin.search import SubmissionFilter
from domain.settings import Settings
from store.engine import Store
from store.models import BulkReplay, Delivery, PaymentCallback, Submission
from tests.admin_support import OPERATOR, fail_all, post
from worker.admin_steps import Steps
from worker.sweeper import sweep_once


def test_one_sweep_runs_every_step(
    client: FlaskClient, store: Store, settings: Settings, redis_url: str
) -> None:
    """A sweep round brings the bulk replay's counts in and purges what retention allows."""
    old = post(client)
    post(client)
    fail_all(store)
    bulk_replay.start(
        store, settings.config, SubmissionFilter(), OPERATOR, "wieder da", rate_per_office=5.0
    )
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=200)
    number = int(old.rsplit("-", 1)[1])
    with store.session() as session:
        session.execute(update(Delivery).values(status="delivered", attempts=1))
        session.execute(
            update(Delivery).where(Delivery.submission_id == number).values(delivered_at=long_ago)
        )
    sweep_once(settings, store, Redis.from_url(redis_url), Steps())
    with store.read() as session:
        job = session.scalars(select(BulkReplay)).one()
        data = dict(session.execute(select(Submission.id, Submission.data)).all())
    assert (job.status, job.processed, job.failed) == ("done", 2, 0)
    assert data[number] is None
    assert all(v is not None for k, v in data.items() if k != number)


def test_a_sweep_purges_the_old_payment_journal(
    store: Store, settings: Settings, redis_url: str
) -> None:
    """The sweeper's retention step deletes callback journal rows past their days, keeps others."""
    now = dt.datetime.now(dt.UTC)
    with store.session() as session:
        for provider, at in (("old", now - dt.timedelta(days=31)), ("new", now)):
            session.add(PaymentCallback(at=at, provider=provider, kind="notify", headers={}))
    sweep_once(settings, store, Redis.from_url(redis_url), Steps())
    with store.read() as session:
        assert list(session.scalars(select(PaymentCallback.provider))) == ["new"]
