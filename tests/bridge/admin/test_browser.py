"""The admin page in a real Chromium: a weekend's failures found and replayed, and no serious
accessibility violation on the login, overview, list, case and confirmation pages.

The bridge runs on a real WSGI server, a real worker and sweeper deliver to the demo back
office on loopback, which refuses (HTTP 400, a permanent error) until it "recovers".
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from demo_backoffice import DemoBackOffice
from harness.waiting import wait_for
from store.engine import Store, make_engine
from store.migrations import upgrade
from store.models import Delivery, DeliveryStatus, Event
from tests.bridge.admin.browser import axe_source, chromium, serious_violations, served
from tests.factories import dog

# The delivery tests' fixtures: demo back office, its routing configuration, worker processes.
from tests.worker.conftest import (  # noqa: F401 - fixtures are found by name
    Processes,
    backoffice,
    config_extra,
    environ,
    processes,
    submit,
)

OFFICE = "usingen-steueramt"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the page's stores are covered by the client tests on both databases."""
    url = f"sqlite:///{tmp_path / 'bridge.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def _statuses(store: Store) -> list[str]:
    with store.read() as session:
        return list(session.scalars(select(Delivery.status).order_by(Delivery.created_at)))


def _scan(page: Any, source: str, what: str, found: dict[str, list[str]]) -> None:
    found[what] = serious_violations(page, source)


def test_weekend_failures_found_and_replayed_in_chromium(
    app: Flask,
    client: FlaskClient,
    store: Store,
    backoffice: DemoBackOffice,  # noqa: F811 - the imported fixture, requested by name
    processes: Processes,  # noqa: F811 - the imported fixture, requested by name
    accounts: dict[str, str],
) -> None:
    """Log in, see the failures, replay one from its case page and the rest in bulk, all
    delivered; axe-core finds nothing serious on any page on the way."""
    backoffice.set_fault(OFFICE, "status", status=400)
    processes.worker()
    processes.sweeper()
    first = submit(client, "dog-registration", dog(), key="wochenende-1")["reference"]
    submit(client, "dog-registration", dog(), key="wochenende-2")
    wait_for(lambda: _statuses(store) == ["failed", "failed"], what="both deliveries failed")
    backoffice.set_fault(OFFICE, "ok")  # Monday: the back office is back
    source = axe_source()
    violations: dict[str, list[str]] = {}

    with served(app) as base, chromium() as browser:
        context = browser.new_context(locale="de-DE", bypass_csp=True)
        page = context.new_page()
        page.goto(base + "/admin/")
        assert page.url.startswith(base + "/admin/login")
        _scan(page, source, "login", violations)
        # The first Tab reaches the skip link; the form works from the keyboard alone.
        page.keyboard.press("Tab")
        assert page.evaluate("() => document.activeElement.textContent") == ("Zum Inhalt springen")
        page.get_by_label("Benutzername").fill("olga")
        page.get_by_label("Passwort").fill(accounts["olga"])
        page.get_by_label("Passwort").press("Enter")
        page.wait_for_url(base + "/admin/")
        assert "2 Zustellungen fehlgeschlagen" in page.inner_text("main")
        _scan(page, source, "overview", violations)

        # Click 1: from the overview to the failures.
        page.get_by_role("link", name="Fehler ansehen und erneut senden").click()
        page.wait_for_url(re.compile(r".*/admin/fehler$"))
        assert "2 fehlgeschlagene Zustellungen" in page.inner_text("main")
        assert "HTTP 400" in page.inner_text("main")

        # One case: its page, and the replay button there.
        page.get_by_role("link", name=first).first.click()
        page.wait_for_url(re.compile(rf".*/admin/antraege/{first}$"))
        _scan(page, source, "case", violations)
        page.get_by_role("button", name="Zustellung an Steueramt Usingen erneut senden").click()
        assert "Die Zustellung wird erneut gesendet." in page.inner_text("main")
        deliveries = page.locator("section[aria-labelledby=h-deliveries] tbody")
        for _ in range(100):
            if "Zugestellt" in deliveries.inner_text():
                break
            page.wait_for_timeout(200)
            page.reload()
        assert "Zugestellt" in deliveries.inner_text()
        assert "olga" in page.locator("ol.timeline").inner_text()

        # The rest in bulk: "Fehler" -> "Alle gefilterten erneut senden" -> reason + confirm.
        page.get_by_role("link", name="Fehler", exact=True).click()
        page.get_by_role("button", name=re.compile("Alle gefilterten erneut senden")).click()
        assert page.inner_text("#bulk-count") == "1"
        _scan(page, source, "confirmation", violations)
        page.get_by_label(re.compile("^Ergänzung zum Grund")).fill("Fachverfahren gewartet")
        page.get_by_role("button", name="Jetzt 1 erneut senden").click()
        page.wait_for_url(re.compile(r".*/admin/sammel/\d+.*"))
        assert page.inner_text("#bulk-total") == "1"
        # The page's script updates the numbers in place (no reload) until the run is done.
        page.wait_for_function(
            "() => document.querySelector('#bulk-delivered')?.textContent === '1'",
            timeout=20_000,
        )
        _scan(page, source, "progress", violations)

        page.get_by_role("link", name="Anträge", exact=True).click()
        page.wait_for_url(re.compile(r".*/admin/antraege$"))
        assert page.get_by_role("cell", name="Zugestellt").count() >= 1
        _scan(page, source, "list", violations)
        context.close()

    wait_for(lambda: _statuses(store) == ["delivered", "delivered"], what="both delivered")
    # Each delivered once: the back office's cases are exactly the delivered deliveries.
    assert sorted(c["delivery_id"] for c in backoffice.cases(OFFICE)) == sorted(_ids(store))
    assert violations == {
        k: [] for k in ("login", "overview", "case", "confirmation", "progress", "list")
    }
    with store.read() as session:
        actors = set(
            session.scalars(select(Event.actor).where(Event.kind.like("admin.bulk_replay%")))
        )
    assert "account:olga" in actors


def _ids(store: Store) -> list[str]:
    with store.read() as session:
        return list(
            session.scalars(select(Delivery.id).where(Delivery.status == DeliveryStatus.DELIVERED))
        )


def test_the_scan_finds_what_it_must_refuse() -> None:
    """The harness is not blind: an unlabelled field and an image without text are reported."""
    with chromium() as browser:
        page = browser.new_page()
        page.set_content(
            '<html lang="de"><head><title>x</title></head><body><main>'
            '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="><input name="q">'
            "</main></body></html>"
        )
        found = serious_violations(page, axe_source())
    assert any(line.startswith("image-alt") for line in found)
    assert any(line.startswith("label") for line in found)
