"""Leases and due times follow the database's clock, not the clock of the host that asks.

PostgreSQL is shown a clock an hour off the test host's: a function `now()` in a schema that
comes before pg_catalog in the connection's search_path, shifted by the connection option
`bridge_test.clock_offset`. For the bridge's code that is a database host whose clock differs
from the worker host's, which is what two machines with skewed clocks look like.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, make_url, select, text

from domain.delivery.deliveries import AttemptOutcome, claim_due, offices_with_due, record_outcomes
from store.clock import database_now
from store.engine import Store
from store.models import Delivery, DeliveryStatus, Event, Submission, SubmissionStatus
from tests.conftest import TABLES

OFFICE = "usingen-steueramt"
CLOCK_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS skewed_clock;
CREATE OR REPLACE FUNCTION skewed_clock.now() RETURNS timestamptz LANGUAGE sql STABLE AS
$$ SELECT pg_catalog.now() + current_setting('bridge_test.clock_offset')::interval $$;
"""


def _skewed_store(postgres_url: str | None, offset: str) -> Iterator[Store]:
    if postgres_url is None:
        pytest.skip("PostgreSQL not configured (set TEST_POSTGRES_URL; required in CI)")
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(CLOCK_SCHEMA))
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    admin.dispose()
    options = f"-c search_path=skewed_clock,public,pg_catalog -c bridge_test.clock_offset={offset}"
    url = make_url(postgres_url).update_query_dict({"options": options})
    store = Store.from_url(url.render_as_string(hide_password=False))
    yield store
    store.dispose()


@pytest.fixture
def db_ahead(postgres_url: str | None) -> Iterator[Store]:
    """A store whose database clock is an hour ahead of this host's (the host runs behind)."""
    yield from _skewed_store(postgres_url, "3600")


@pytest.fixture
def db_behind(postgres_url: str | None) -> Iterator[Store]:
    """A store whose database clock is an hour behind this host's (the host runs ahead)."""
    yield from _skewed_store(postgres_url, "-3600")


def _db_now(store: Store) -> dt.datetime:
    with store.engine.connect() as conn:
        return database_now(conn)


def _delivery(
    store: Store, next_attempt_at: dt.datetime, lease_until: dt.datetime | None = None
) -> str:
    """A routed submission with one pending delivery to OFFICE at the given times."""
    with store.session() as session:
        submission = Submission(
            reference_prefix="US",
            reference_year=2026,
            service="dog-registration",
            schema="dog-registration@1",
            sender="formcycle",
            municipality_ags="06434011",
            status=SubmissionStatus.ROUTED,
            flags={},
            data=None,
        )
        delivery = Delivery(
            office_id=OFFICE,
            task_area="tax",
            channel="http-json",
            status=DeliveryStatus.PENDING,
            next_attempt_at=next_attempt_at,
            lease_until=lease_until,
        )
        submission.deliveries.append(delivery)
        session.add(submission)
        session.flush()
        return delivery.id


@pytest.mark.postgres
def test_the_database_clock_is_the_skewed_one(db_ahead: Store) -> None:
    """The premise of the tests below: the bridge reads the shifted clock."""
    skew = _db_now(db_ahead) - dt.datetime.now(dt.UTC)
    assert abs(skew - dt.timedelta(hours=1)) < dt.timedelta(seconds=10)


@pytest.mark.postgres
def test_due_by_the_database_clock_is_claimed_on_a_host_that_runs_behind(
    db_ahead: Store,
) -> None:
    """Due a minute ago by the database, due in 59 minutes by this host: it is due now."""
    now = _db_now(db_ahead)
    delivery_id = _delivery(db_ahead, next_attempt_at=now - dt.timedelta(minutes=1))

    assert offices_with_due(db_ahead) == [OFFICE]
    ids, lease_until = claim_due(db_ahead, OFFICE, limit=10, lease_s=30)

    assert ids == [delivery_id]
    # The lease runs 30 s of the database's time, not of this host's.
    assert abs(lease_until - (now + dt.timedelta(seconds=30))) < dt.timedelta(seconds=10)
    with db_ahead.read() as session:
        stored = session.get(Delivery, delivery_id)
        assert stored is not None
        assert stored.lease_until == lease_until


@pytest.mark.postgres
def test_a_host_that_runs_ahead_neither_delivers_early_nor_steals_a_lease(
    db_behind: Store,
) -> None:
    """A retry due in 30 minutes and a lease held for 10 more are left alone."""
    now = _db_now(db_behind)
    _delivery(db_behind, next_attempt_at=now + dt.timedelta(minutes=30))
    _delivery(
        db_behind,
        next_attempt_at=now - dt.timedelta(minutes=1),
        lease_until=now + dt.timedelta(minutes=10),
    )

    assert offices_with_due(db_behind) == []
    assert claim_due(db_behind, OFFICE, limit=10, lease_s=30)[0] == []


@pytest.mark.postgres
def test_a_retry_is_scheduled_and_recorded_by_the_database_clock(db_ahead: Store) -> None:
    """The next attempt and the event's time are the database's now plus the interval."""
    now = _db_now(db_ahead)
    _delivery(db_ahead, next_attempt_at=now - dt.timedelta(seconds=1))
    [delivery_id], lease_until = claim_due(db_ahead, OFFICE, limit=10, lease_s=30)
    failed = AttemptOutcome(delivery_id, lease_until, ok=False, error="HTTP 503")

    assert record_outcomes(db_ahead, [failed], schedule=(120.0,), jitter=0.0) == [failed]

    with db_ahead.read() as session:
        stored = session.get(Delivery, delivery_id)
        assert stored is not None
        assert stored.next_attempt_at is not None
        event = session.scalars(select(Event).where(Event.delivery_id == delivery_id)).one()
    planned = now + dt.timedelta(seconds=120)
    assert abs(stored.next_attempt_at - planned) < dt.timedelta(seconds=10)
    assert abs(event.at - now) < dt.timedelta(seconds=10)
    assert event.kind == "delivery.retry_scheduled"


def test_database_now_on_both_stores(database_url: str) -> None:
    """Both dialects give an aware UTC time (SQLite's is this host's: one host owns the file)."""
    store = Store.from_url(database_url)
    try:
        before = dt.datetime.now(dt.UTC)
        now = _db_now(store)
    finally:
        store.dispose()
    assert now.tzinfo is dt.UTC
    assert abs(now - before) < dt.timedelta(seconds=5)


@pytest.mark.postgres
def test_a_new_submission_is_due_by_the_database_clock(
    db_behind: Store, redis_url: str, auth_headers: dict[str, str]
) -> None:
    """A web host an hour ahead of the database: its new delivery is due at once, not in an hour."""
    from bridge import create_app
    from domain.settings import Settings
    from tests.conftest import base_environ
    from tests.factories import as_json, dog

    url = db_behind.engine.url.render_as_string(hide_password=False)
    app = create_app(Settings.from_env(base_environ(url, redis_url)))
    try:
        response = app.test_client().post(
            "/webhooks/formcycle/dog-registration",
            data=as_json(dog()),
            headers=auth_headers,
            content_type="application/json",
        )
        assert response.status_code == 202, response.get_data(as_text=True)
    finally:
        app.extensions["bridge"].store.dispose()

    assert offices_with_due(db_behind) == [OFFICE]
    ids, _ = claim_due(db_behind, OFFICE, limit=10, lease_s=30)
    assert len(ids) == 1
