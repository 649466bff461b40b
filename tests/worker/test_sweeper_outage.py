"""The sweeper lives through a database outage, says so once, and wakes offices afterwards."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from demo_backoffice import DemoBackOffice
from harness.waiting import wait_for
from store.engine import Store, normalise_database_url
from store.models import DeliveryStatus
from tests.factories import dog
from tests.worker.conftest import Processes, deliveries, submit


@contextmanager
def _database_down(database_url: str) -> Iterator[None]:
    """The PostgreSQL database refuses connections (and drops those it had) inside the block."""
    url = make_url(normalise_database_url(database_url))
    name = url.database
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
        yield
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        admin.dispose()


# A database server's outage: PostgreSQL only (SQLite has no server to lose).
@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_sweeper_survives_a_database_outage(
    client: FlaskClient,
    store: Store,
    backoffice: DemoBackOffice,
    processes: Processes,
    redis_url: str,
    database_url: str,
) -> None:
    """While PostgreSQL refuses connections every round fails; the sweeper logs the outage
    once, not every 0.2 s, logs its end, and then wakes an office whose wake-up was lost."""
    processes.worker()
    sweeper = processes.sweeper()
    wait_for(lambda: '"sweeper.started"' in processes.logs(), what="the sweeper")
    with _database_down(database_url):
        wait_for(lambda: '"sweeper.error"' in processes.logs(), what="the outage to be noticed")
        time.sleep(2)  # the outage lasts: about ten more rounds of 0.2 s fail
    recovered = wait_for(
        lambda: re.search(r'"sweeper.recovered", "failed_rounds": (\d+)', processes.logs()),
        what="the sweeper to recover",
    )
    assert int(recovered.group(1)) >= 3
    assert processes.logs().count('"sweeper.error"') == 1
    assert sweeper.poll() is None

    # The app's pooled connections died with the outage (each would answer one 503, as the
    # README says); this test is about the sweeper, so the app starts with a fresh pool.
    store.dispose()
    answer = submit(client, "dog-registration", dog())
    Redis.from_url(redis_url).flushdb()  # the wake-up is lost: only the sweeper can help
    wait_for(lambda: deliveries(store)[0].status == DeliveryStatus.DELIVERED, what="the delivery")
    assert [c["delivery_id"] for c in backoffice.cases("usingen-steueramt")] == [
        answer["deliveries"][0]["id"]
    ]
