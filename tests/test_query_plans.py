"""The queries that run for every submission or every sweep use an index, on both stores.

The statements are captured while the production functions run, then explained by the store
itself, so a later change of a query or an index cannot quietly turn it into a table scan
whose cost grows with the history (issue 10: a million stored submissions must not slow
intake, the sweeper or a drain).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, text

from domain.config import Config
from domain.deliveries import claim_due, offices_with_due, pending_for_office
from domain.settings import Settings
from domain.store import READONLY, Store
from domain.submissions import find_existing

#: The tables whose size grows with the history.
GROWING = ("submissions", "deliveries", "events", "attachments")


@contextmanager
def captured(store: Store) -> Iterator[list[tuple[str, Any]]]:
    """Every SELECT on a growing table that runs inside the block, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def capture(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, _many: bool
    ) -> None:
        if statement.lstrip().upper().startswith("SELECT") and any(
            re.search(rf"\b{t}\b", statement) for t in GROWING
        ):
            seen.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", capture)


def scans(store: Store, statement: str, parameters: Any) -> list[str]:
    """The growing tables the store would read in full for `statement` (empty: all by index)."""
    # A reader's connection: on SQLite it begins without taking the write lock.
    with store.engine.execution_options(**{READONLY: True}).connect() as conn:
        if store.engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            # "SCAN deliveries" reads the table; "SEARCH ... USING INDEX" or a covering index
            # scan do not grow with rows other than the matching ones.
            details = [str(r[-1]) for r in rows]
            return [
                d
                for d in details
                if re.match(rf"SCAN ({'|'.join(GROWING)})\b", d) and "USING" not in d
            ]
        # Without statistics an empty table is cheapest to read in full: forbid that, so that
        # the plan shows whether an index exists that the query can use at all.
        conn.exec_driver_sql("SET enable_seqscan = off")
        rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters).all()
        return [
            str(r[0]).strip()
            for r in rows
            if re.search(rf"Seq Scan on ({'|'.join(GROWING)})\b", str(r[0]))
        ]


def assert_indexed(store: Store, run: Callable[[], object]) -> int:
    """Run `run` and assert every captured statement is answered by an index; returns the count."""
    with captured(store) as seen:
        run()
    assert seen, "the function ran no query on a growing table"
    offenders = {s: found for s, p in seen if (found := scans(store, s, p))}
    assert offenders == {}
    return len(seen)


@pytest.fixture
def config(settings: Settings) -> Config:
    """The test configuration."""
    return settings.config


def test_sweeper_due_query_uses_an_index(store: Store) -> None:
    """What the sweeper asks every second: offices with due deliveries."""
    assert assert_indexed(store, lambda: offices_with_due(store)) == 1


def test_drain_claim_uses_an_index(store: Store) -> None:
    """A drain job's claim of an office's due deliveries."""
    assert assert_indexed(store, lambda: claim_due(store, "usingen-steueramt", 50, 30.0)) >= 1


def test_pull_inbox_listing_uses_an_index(store: Store) -> None:
    """An office's pull inbox lists its pending deliveries."""
    assert assert_indexed(store, lambda: pending_for_office(store, "usingen-steueramt")) >= 1


def test_idempotency_lookup_uses_an_index(store: Store, config: Config) -> None:
    """The look-up of a repeat by (sender, service, key)."""
    sender = config.senders["formcycle"]
    service = config.services["dog-registration"]
    assert assert_indexed(store, lambda: find_existing(store, sender, service, "k-1")) == 1


def test_a_table_scan_is_caught(store: Store) -> None:
    """The check itself fails for a query that reads a whole table (it can fail)."""

    def scan() -> None:
        with store.read() as session:
            session.execute(text("SELECT count(*) FROM deliveries WHERE last_error = 'x'"))

    with pytest.raises(AssertionError, match=r"Seq Scan on|SCAN deliveries"):
        assert_indexed(store, scan)
