"""The queries that run for every submission or every sweep use an index, on both stores.

The statements are captured while the production functions run, then explained by the store
itself, so a later change of a query or an index cannot quietly turn it into a table scan
whose cost grows with the history (issue 10: a million stored submissions must not slow
intake, the sweeper or a drain).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import pytest
from sqlalchemy import Table, event, func, insert, select, text

from domain.config import Config
from domain.delivery.deliveries import claim_due, offices_with_due, pending_for_office
from domain.intake.submissions import find_existing
from domain.settings import Settings
from store.engine import READONLY, Store
from store.models import Delivery, Submission

_S = cast(Table, Submission.__table__)
_D = cast(Table, Delivery.__table__)
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
            # "SCAN deliveries" reads the table, "SCAN deliveries USING INDEX ..." a whole index:
            # both grow with the history. Only a "SEARCH" reads just the matching entries.
            details = [str(r[-1]) for r in rows]
            return [d for d in details if re.match(rf"SCAN ({'|'.join(GROWING)})\b", d)]
        # Without statistics an empty table is cheapest to read in full: forbid that, so that
        # the plan shows whether an index exists that the query can use at all.
        conn.exec_driver_sql("SET enable_seqscan = off")
        rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters).all()
        return [
            str(r[0]).strip()
            for r in rows
            if re.search(rf"Seq Scan on ({'|'.join(GROWING)})\b", str(r[0]))
        ]


def with_history(store: Store, rows: int = 3000) -> Store:
    """Fill the store with finally delivered cases and analyse it, as production's will be.

    On an empty store without statistics a planner takes any index; with a long history all
    but a few deliveries are delivered, and a planner that knows it may prefer another plan.
    """
    now = dt.datetime.now(dt.UTC)
    with store.engine.begin() as conn:
        first = int(conn.execute(select(func.coalesce(func.max(_S.c.id), 0))).scalar_one())
        ids = range(first + 1, first + rows + 1)
        conn.execute(
            insert(_S),
            [
                {
                    "id": i,
                    "reference_prefix": "US",
                    "reference_year": 2026,
                    "service": "dog-registration",
                    "schema": "dog-registration@1",
                    "sender": "formcycle",
                    "idempotency_key": f"history-{i}",
                    "municipality_ags": "06434011",
                    "status": "delivered",
                    "flags": {},
                    "received_at": now,
                    "updated_at": now,
                }
                for i in ids
            ],
        )
        conn.execute(
            insert(_D),
            [
                {
                    "id": f"{i:032x}",
                    "submission_id": i,
                    "office_id": ("usingen-steueramt", "neu-anspach-ordnungsamt")[i % 2],
                    "task_area": "tax",
                    "channel": "http-json",
                    "status": "delivered",
                    "attempts": 1,
                    "next_attempt_at": None,
                    "delivered_at": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in ids
            ],
        )
        conn.exec_driver_sql("ANALYZE")
    return store


@pytest.fixture
def history(store: Store) -> Store:
    """The test store with a long, analysed history of delivered cases."""
    return with_history(store)


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


@pytest.mark.parametrize("analysed", [False, True], ids=["empty", "with-history"])
def test_sweeper_due_query_uses_an_index(store: Store, analysed: bool) -> None:
    """What the sweeper asks every second: offices with due deliveries."""
    if analysed:
        with_history(store)
    assert assert_indexed(store, lambda: offices_with_due(store)) == 1


@pytest.mark.parametrize("analysed", [False, True], ids=["empty", "with-history"])
def test_drain_claim_uses_an_index(store: Store, analysed: bool) -> None:
    """A drain job's claim of an office's due deliveries."""
    if analysed:
        with_history(store)
    assert assert_indexed(store, lambda: claim_due(store, "usingen-steueramt", 50, 30.0)) >= 1


def test_pull_inbox_listing_uses_an_index(history: Store) -> None:
    """An office's pull inbox lists its pending deliveries."""
    assert assert_indexed(history, lambda: pending_for_office(history, "usingen-steueramt")) >= 1


def test_idempotency_lookup_uses_an_index(history: Store, config: Config) -> None:
    """The look-up of a repeat by (sender, service, key)."""
    sender = config.senders["formcycle"]
    service = config.services["dog-registration"]
    assert assert_indexed(history, lambda: find_existing(history, sender, service, "k-1")) == 1


def test_a_table_scan_is_caught(store: Store) -> None:
    """The check itself fails for a query that reads a whole table (it can fail)."""

    def scan() -> None:
        with store.read() as session:
            session.execute(text("SELECT count(*) FROM deliveries WHERE last_error = 'x'"))

    with pytest.raises(AssertionError, match=r"Seq Scan on|SCAN deliveries"):
        assert_indexed(store, scan)
