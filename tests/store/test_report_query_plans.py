"""The daily report and the activity list read by index, on both stores, with a long history.

The report of a past moment reads the rows changed after it (migration 0009's indexes on
`updated_at`) and their events; today's, which is also the daily mail, reads only rows that
are failed, waiting or open. Neither may read the whole history.
"""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Any

import pytest

from domain.admin.activity import ACCOUNT_KINDS, CASE_KINDS, ActivityFilter, list_activity
from domain.settings import Settings
from store.engine import READONLY, Store
from store.models import utcnow
from tests.store.test_query_plans import assert_indexed, captured, with_history
from worker import digest


@pytest.fixture
def history(store: Store) -> Store:
    """The test store with a long, analysed history of delivered cases."""
    return with_history(store)


def test_todays_and_a_past_days_report_use_indexes(history: Store, settings: Settings) -> None:
    """The digest as of now and as of a week ago: every query on a growing table by index."""
    now = utcnow()
    assert assert_indexed(history, lambda: digest.build(history, settings.config, now)) >= 2
    week_ago = now - dt.timedelta(days=7)
    assert assert_indexed(history, lambda: digest.build(history, settings.config, week_ago)) >= 2


def _plan(store: Store, statement: str, parameters: Any) -> str:
    with store.engine.execution_options(**{READONLY: True}).connect() as conn:
        if store.engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        else:
            conn.exec_driver_sql("SET enable_seqscan = off")
            rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters).all()
    return "\n".join(str(r[-1]) for r in rows)


def test_the_rows_changed_after_a_past_moment_are_one_range(
    history: Store, settings: Settings
) -> None:
    """Changed after the moment is a range on ix_deliveries_updated (migration 0009): the
    (status, updated_at) index would be read whole for it (PostgreSQL 15 has no skip scan)."""
    week_ago = utcnow() - dt.timedelta(days=7)
    with captured(history) as seen:
        digest.build(history, settings.config, week_ago)
    changed = [(s, p) for s, p in seen if "LEFT OUTER JOIN" in s]
    assert changed
    for statement, parameters in changed:
        assert "ix_deliveries_updated" in _plan(history, statement, parameters)


def test_the_activity_list_uses_an_index(history: Store) -> None:
    """Unfiltered, by person and by period: the events are read through ix_events_kind_at."""
    kinds = CASE_KINDS + ACCOUNT_KINDS
    today = utcnow().date()
    for flt in (
        ActivityFilter(),
        ActivityFilter(actor="account:olga"),
        ActivityFilter(kind="delivery.replayed", day_from=today, day_to=today),
    ):
        assert assert_indexed(history, partial(list_activity, history, flt, kinds)) == 2
