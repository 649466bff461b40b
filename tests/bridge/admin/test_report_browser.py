"""The daily report and the activity list in a real Chromium: used as a clerk would, axe-clean,
and every word German (no English words, no raw event keys)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from domain.accounts.accounts import Actor, create_account
from domain.accounts.passwords import ScryptParams
from domain.admin import operations
from schemas.options import LOCAL_TZ
from store.engine import Store, make_engine
from store.migrations import upgrade
from store.models import Delivery, utcnow
from tests.admin_support import post
from tests.bridge.admin.browser import axe_source, chromium, serious_violations, served
from tests.bridge.admin.conftest import SCRYPT_N, SETUP
from tests.bridge.admin.report_support import attempt

ADA_PASSWORD = "Verwaltung-Usingen-2026!"
OLGA = Actor("olga", "operator", account_id=1, via="session")
# Words a German page has no business showing, and what a raw event key looks like.
ENGLISH = re.compile(
    r"\b(the|and|of|to|by|with|failed|delivered|pending|replay|replayed|cancelled|delivery|"
    r"payment|account|token|login|logout|error|status|admin|operator|viewer|none|true|false|"
    r"null|reason|submit|report|activity|since|waiting)\b",
    re.IGNORECASE,
)
RAW_KEY = re.compile(r"\b[a-z_]+\.[a-z_]+(\.[a-z_]+)?\b")


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the pages' queries are covered on both stores by the client tests."""
    url = f"sqlite:///{tmp_path / 'bridge.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def _german_only(page: Any, what: str) -> None:
    text = page.inner_text("body")
    assert not ENGLISH.findall(text), f"{what}: English words {ENGLISH.findall(text)}"
    assert not RAW_KEY.search(text), f"{what}: raw key {RAW_KEY.search(text)}"


def test_report_and_activity_in_chromium(
    app: Flask, client: FlaskClient, store: Store, accounts: dict[str, str]
) -> None:
    """An admin opens the report, picks yesterday, goes to the activity list, filters it and
    follows a case link; axe-core finds nothing serious, and every word is German."""
    create_account(store, "ada", ADA_PASSWORD, "admin", actor=SETUP, kdf=ScryptParams(n=SCRYPT_N))
    first = post(client)
    post(client)
    post(client)
    attempt(store, ok=False)
    post(client)
    with store.read() as session:
        failed = list(session.scalars(select(Delivery.id).order_by(Delivery.submission_id)))[:2]
    operations.replay_delivery(store, failed[0], OLGA, "Stelle wieder erreichbar")
    operations.cancel_delivery(store, failed[1], OLGA, "Doppelt eingereicht")
    today = utcnow().astimezone(LOCAL_TZ).date()
    yesterday = today - dt.timedelta(days=1)
    source = axe_source()
    violations: dict[str, list[str]] = {}

    with served(app) as base, chromium() as browser:
        context = browser.new_context(locale="de-DE", bypass_csp=True)
        page = context.new_page()
        page.goto(base + "/admin/bericht")
        page.get_by_label("Benutzername").fill("ada")
        page.get_by_label("Passwort").fill(ADA_PASSWORD)
        page.get_by_label("Passwort").press("Enter")
        page.wait_for_url(base + "/admin/bericht")
        heading = page.get_by_role("heading", level=1).inner_text()
        assert heading == f"Tagesbericht vom {today.strftime('%d.%m.%Y')}"
        main = page.inner_text("main")
        assert "Steueramt Usingen: 1 fehlgeschlagen" in main
        assert "Am längsten wartende Zustellungen" in main
        violations["report"] = serious_violations(page, source)
        _german_only(page, "report")

        # The day chooser: yesterday, at its end (nothing existed yet).
        page.get_by_label("Tag", exact=True).select_option(yesterday.isoformat())
        page.get_by_role("button", name="Anzeigen").click()
        page.wait_for_url(re.compile(rf".*/admin/bericht\?tag={yesterday.isoformat()}$"))
        assert "Stand: Ende des Tages." in page.inner_text("main")
        violations["report of yesterday"] = serious_violations(page, source)
        _german_only(page, "report of yesterday")

        page.get_by_role("link", name="Aktivität", exact=True).first.click()
        page.wait_for_url(re.compile(r".*/admin/aktivitaet$"))
        main = page.inner_text("main")
        assert "Doppelt eingereicht" in main
        assert "Angemeldet" in main  # an admin sees the logins
        violations["activity"] = serious_violations(page, source)
        _german_only(page, "activity")

        page.get_by_label("Was", exact=True).select_option(label="Zustellung erneut gesendet")
        page.get_by_label("Wer", exact=True).select_option(label="olga")
        page.get_by_role("button", name="Filtern").click()
        page.wait_for_url(re.compile(r".*/admin/aktivitaet\?actor=account%3Aolga&kind=.*"))
        rows = page.locator("main tbody tr")
        assert rows.count() == 1
        assert "Stelle wieder erreichbar" in rows.inner_text()
        violations["activity filtered"] = serious_violations(page, source)
        _german_only(page, "activity filtered")
        rows.get_by_role("link", name=first).click()
        page.wait_for_url(re.compile(rf".*/admin/antraege/{first}$"))
        context.close()

    assert violations == {
        "report": [],
        "report of yesterday": [],
        "activity": [],
        "activity filtered": [],
    }
