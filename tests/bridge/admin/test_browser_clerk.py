"""A weekend's failures replayed as a clerk does it, in Debian's Chromium (issue 19, items 1 and 2).

Counted from the overview: three clicks to a started bulk replay with a reason recorded (the
likely reason is preselected), and the keyboard steps for the same. The progress page is
scanned with axe while the replay runs (no worker runs yet, so it stays running), updates its
numbers in place when the worker starts, and keeps a cancel reason typed meanwhile.
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
from store.models import BulkReplay, Delivery
from tests.admin_support import fail_all
from tests.bridge.admin.browser import axe_source, chromium, serious_violations, served
from tests.factories import dog

# The delivery tests' fixtures: demo back office, its routing configuration, worker processes.
from tests.worker.conftest import (  # noqa: F401 - fixtures are found by name
    FAST,
    Processes,
    backoffice,
    processes,
    routing_config,
    submit,
)

OFFICE = "usingen-steueramt"
WEEKEND = "HTTP 500 Internal Server Error: Der Zustellpunkt ist vorübergehend nicht bereit."
# Before issue 19 the keyboard took 82 keys after the login; the target is a handful.
MAX_KEYS = 15


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the page's stores are covered by the client tests on both databases."""
    url = f"sqlite:///{tmp_path / 'bridge.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture
def environ(
    environ: dict[str, str],
    backoffice: DemoBackOffice,  # noqa: F811 - the imported fixture, requested by name
    tmp_path: Path,
) -> dict[str, str]:
    """The delivery tests' environment (routing to the demo back office) with a slow replay,
    one delivery a second per office, so that the progress can be watched."""
    path = tmp_path / "routing.toml"
    path.write_text(routing_config(backoffice.url), encoding="utf-8")
    environ.update(FAST, BRIDGE_CONFIG=str(path), BRIDGE_REPLAY_RATE_PER_OFFICE="1")
    return environ


class Clerk:
    """The browser page with a count of the clicks and keys the clerk used."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.clicks = 0
        self.keys = 0

    def click(self, role: str, name: str | re.Pattern[str]) -> None:
        self.clicks += 1
        self.page.get_by_role(role, name=name).click()

    def press(self, key: str) -> None:
        self.keys += 1
        self.page.keyboard.press(key)

    def tab_to(self, text: str) -> None:
        """Skip to the content (the first Tab reaches the skip link), Tab on until the focused
        element's text starts with `text`, then press Enter."""
        self.press("Tab")
        assert self.page.evaluate("() => document.activeElement.textContent") == (
            "Zum Inhalt springen"
        )
        self.press("Enter")
        for _ in range(40):
            self.press("Tab")
            focused = self.page.evaluate("() => document.activeElement.textContent.trim()")
            if focused.startswith(text):
                self.press("Enter")
                return
        pytest.fail(f"{text!r} cannot be reached with the Tab key")


def _started(store: Store) -> list[str]:
    with store.read() as session:
        return list(session.scalars(select(BulkReplay.status).order_by(BulkReplay.id)))


def _weekend(client: FlaskClient, store: Store, n: int) -> None:
    for i in range(n):
        submit(client, "dog-registration", dog(), key=f"wochenende-{i}")
    fail_all(store, error=WEEKEND, status_code=500)


def test_three_clicks_from_the_overview_and_a_progress_page_that_passes_axe_while_running(
    app: Flask,
    client: FlaskClient,
    store: Store,
    backoffice: DemoBackOffice,  # noqa: F811 - the imported fixture, requested by name
    processes: Processes,  # noqa: F811 - the imported fixture, requested by name
    accounts: dict[str, str],
) -> None:
    """Overview -> failures -> confirmation -> started: three clicks, nothing typed; the running
    progress page is axe-clean, updates in place and keeps a typed cancel reason."""
    _weekend(client, store, 3)
    source = axe_source()
    violations: dict[str, list[str]] = {}
    with served(app) as base, chromium() as browser:
        context = browser.new_context(locale="de-DE", bypass_csp=True)
        page = context.new_page()
        page.goto(base + "/admin/login")
        page.get_by_label("Benutzername").fill("olga")
        page.get_by_label("Passwort").fill(accounts["olga"])
        page.get_by_label("Passwort").press("Enter")
        page.wait_for_url(base + "/admin/")

        clerk = Clerk(page)
        clerk.click("link", "Fehler ansehen und erneut senden")
        page.wait_for_url(re.compile(r".*/admin/fehler$"))
        assert re.search(
            r"Stelle (nicht )?erreichbar \(geprüft \d\d:\d\d\)", page.inner_text("main")
        )
        violations["failures"] = serious_violations(page, source)
        clerk.click("button", re.compile("Alle gefilterten erneut senden"))
        assert page.inner_text("#bulk-count") == "3"  # the exact count, still
        violations["confirmation"] = serious_violations(page, source)
        clerk.click("button", "Jetzt 3 erneut senden")
        page.wait_for_url(re.compile(r".*/admin/sammel/\d+$"))
        assert clerk.clicks == 3
        assert _started(store) == ["running"]
        assert "Stelle war nicht erreichbar, jetzt wieder erreichbar" in page.inner_text("main")

        # Running (no worker yet): no reload, a polite live region, nothing serious for axe.
        assert page.inner_text("#bulk-state") == "Läuft"
        assert page.locator('meta[http-equiv="refresh"]').count() == 0
        live = page.locator("[aria-live=polite]")
        assert "von" in live.inner_text()
        violations["progress (running)"] = serious_violations(page, source)
        page.evaluate("() => { window.notReloaded = true; }")
        page.get_by_label("Grund für den Abbruch").fill("Nur falls es hakt")

        processes.worker()
        processes.sweeper()
        page.wait_for_function(
            "() => document.querySelector('#bulk-processed').textContent !== '0'",
            timeout=30_000,
        )
        assert page.evaluate("() => window.notReloaded === true")
        assert page.input_value("#cancel-reason") == "Nur falls es hakt"
        page.wait_for_function(
            "() => document.querySelector('#bulk-delivered').textContent === '3'",
            timeout=30_000,
        )
        assert page.evaluate("() => window.notReloaded === true")
        violations["progress (done)"] = serious_violations(page, source)

        # The same by keyboard alone, from the overview.
        wait_for(lambda: _started(store) == ["done"], what="the first replay done")
        fail_all(store, error=WEEKEND, status_code=500)
        page.goto(base + "/admin/")
        keyboard = Clerk(page)
        keyboard.tab_to("Fehler ansehen und erneut senden")
        page.wait_for_url(re.compile(r".*/admin/fehler$"))
        keyboard.tab_to("Alle gefilterten erneut senden")
        page.wait_for_url(re.compile(r".*/admin/fehler/alle-erneut-senden.*"))
        keyboard.tab_to("Jetzt 3 erneut senden")
        page.wait_for_url(re.compile(r".*/admin/sammel/\d+$"))
        assert _started(store) == ["done", "running"]
        assert keyboard.keys <= MAX_KEYS, keyboard.keys
        print(f"clicks from the overview: {clerk.clicks}; keys: {keyboard.keys}")
        context.close()

    wait_for(lambda: _started(store) == ["done", "done"], what="the second replay done")
    with store.read() as session:
        statuses = set(session.scalars(select(Delivery.status)))
    assert statuses == {"delivered"}
    assert violations == {k: [] for k in violations}
