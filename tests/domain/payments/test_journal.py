"""The payment callback journal's retention: rows older than BRIDGE_PAYMENT_JOURNAL_DAYS go."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from domain.payments.journal import purge_journal
from domain.settings import Settings, SettingsError
from store.engine import Store
from store.models import PaymentCallback
from tests.conftest import base_environ


def _row(store: Store, provider: str, age: dt.timedelta) -> None:
    with store.session() as session:
        session.add(
            PaymentCallback(
                at=dt.datetime.now(dt.UTC) - age,
                provider=provider,
                kind="notify",
                headers={},
                body=b"{}",
                verdict="unreadable",
            )
        )


def test_journal_purge_deletes_only_rows_older_than_the_setting(
    store: Store, settings: Settings
) -> None:
    """With 30 days: rows of 31 and 400 days go, rows of 29 days and of now stay; in batches."""
    assert settings.payment_journal_days == 30
    day = dt.timedelta(days=1)
    for provider, age in (("old", 31 * day), ("older", 400 * day), ("old2", 31 * day)):
        _row(store, provider, age)
    _row(store, "recent", 29 * day)
    _row(store, "now", dt.timedelta(0))
    assert purge_journal(store, settings.payment_journal_days, batch=2) == 3
    with store.read() as session:
        kept = sorted(session.scalars(select(PaymentCallback.provider)))
    assert kept == ["now", "recent"]
    assert purge_journal(store, settings.payment_journal_days) == 0


def test_journal_days_are_read_and_checked() -> None:
    """BRIDGE_PAYMENT_JOURNAL_DAYS: read as a number of days; 0 or more than ten years refused."""
    env = base_environ("sqlite:///unused.db", "redis://127.0.0.1:6379/0")
    assert Settings.from_env({**env, "BRIDGE_PAYMENT_JOURNAL_DAYS": "7"}).payment_journal_days == 7
    for bad in ("0", "3651", "x"):
        with pytest.raises(SettingsError) as caught:
            Settings.from_env({**env, "BRIDGE_PAYMENT_JOURNAL_DAYS": bad})
        assert "BRIDGE_PAYMENT_JOURNAL_DAYS" in str(caught.value)
