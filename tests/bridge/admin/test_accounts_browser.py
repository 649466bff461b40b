"""Accounts and API tokens in a real Chromium: an admin creates a clerk limited to an office,
the clerk sets the password through the one-time link and sees only that office; axe-core
finds nothing serious on the accounts, account, secret, tokens and link pages."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from domain.accounts.accounts import create_account
from domain.accounts.passwords import ScryptParams
from store.engine import Store, make_engine
from store.migrations import upgrade
from store.models import Event
from tests.bridge.admin.browser import axe_source, chromium, serious_violations, served
from tests.bridge.admin.conftest import SCRYPT_N, SETUP

CHEF_PASSWORD = "Verwaltung-Usingen-2026!"
NEW_PASSWORD = "Hundesteuer-ab-Januar-2026!"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the page's stores are covered by the client tests on both databases."""
    url = f"sqlite:///{tmp_path / 'bridge.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def _log_in(page: Any, base: str, username: str, password: str) -> None:
    page.goto(base + "/admin/login")
    page.get_by_label("Benutzername").fill(username)
    page.get_by_label("Passwort").fill(password)
    page.get_by_label("Passwort").press("Enter")
    page.wait_for_url(base + "/admin/")


def test_an_admin_manages_accounts_and_tokens_in_chromium(app: Flask, store: Store) -> None:
    """Create a limited clerk, hand over the link, change the role; make and revoke a token."""
    create_account(store, "chef", CHEF_PASSWORD, "admin", actor=SETUP, kdf=ScryptParams(n=SCRYPT_N))
    source = axe_source()
    violations: dict[str, list[str]] = {}
    with served(app) as base, chromium() as browser:
        context = browser.new_context(locale="de-DE", bypass_csp=True)
        page = context.new_page()
        _log_in(page, base, "chef", CHEF_PASSWORD)
        page.get_by_role("link", name="Konten", exact=True).click()
        page.wait_for_url(base + "/admin/konten")
        violations["accounts"] = serious_violations(page, source)
        page.get_by_label(re.compile("^Benutzername")).fill("anna")
        page.get_by_label("Name der Person").fill("Anna Beispiel")
        page.get_by_label("Rolle", exact=True).select_option(label="Bedienen")
        page.get_by_label("Nur die angekreuzten Stellen:").check()
        page.get_by_label("Steueramt Usingen", exact=True).check()
        page.get_by_role("button", name="Konto anlegen").click()
        page.wait_for_load_state()
        assert "Konto anna angelegt" in page.inner_text("main")
        violations["secret"] = serious_violations(page, source)
        link = page.input_value("#secret")
        assert "/admin/passwort/" in link

        page.goto(base + "/admin/konten")
        page.get_by_role("link", name="anna", exact=True).click()
        assert "Steueramt Usingen" in page.inner_text("main")
        violations["account"] = serious_violations(page, source)
        page.get_by_label("Neue Rolle").select_option(label="Lesen")
        page.get_by_role("button", name="Rolle speichern").click()
        assert "Die Rolle wurde geändert." in page.inner_text("main")

        page.get_by_role("link", name="API-Schlüssel", exact=True).click()
        violations["tokens"] = serious_violations(page, source)
        page.get_by_label(re.compile("^Name")).fill("statistik")
        page.get_by_role("button", name="Schlüssel erzeugen").click()
        assert page.input_value("#secret").startswith("fcb_")
        page.get_by_role("link", name="Weiter").click()
        page.get_by_role("button", name="Schlüssel statistik widerrufen").click()
        assert "Der API-Schlüssel ist widerrufen." in page.inner_text("main")
        context.close()

        # The clerk's own browser: the link, the password, the login, her office only.
        holder = browser.new_context(locale="de-DE", bypass_csp=True)
        own = holder.new_page()
        # The link names the bridge's public URL; the test server listens elsewhere.
        own.goto(base + link[link.index("/admin/passwort/") :])
        assert "Passwort setzen für anna" in own.inner_text("main")
        violations["link"] = serious_violations(own, source)
        own.get_by_label(re.compile("^Neues Passwort")).fill(NEW_PASSWORD)
        own.get_by_label("Passwort wiederholen").fill(NEW_PASSWORD)
        own.get_by_role("button", name="Passwort speichern").click()
        own.wait_for_url(re.compile(r".*/admin/login\?hinweis=password-set"))
        assert "Ihr Passwort ist gesetzt" in own.inner_text("main")
        _log_in(own, base, "anna", NEW_PASSWORD)
        assert own.get_by_role("link", name="Konten", exact=True).count() == 0
        own.goto(base + "/admin/antraege")
        offered = own.locator("#f-office option").all_inner_texts()
        assert offered == ["Alle", "Steueramt Usingen"]
        holder.close()

    assert violations == {k: [] for k in ("accounts", "secret", "account", "tokens", "link")}
    with store.read() as session:
        kinds = set(session.scalars(select(Event.kind).where(Event.actor == "account:chef")))
    assert {
        "account.created",
        "account.password_link_created",
        "account.role_set",
        "token.created",
        "token.revoked",
    } <= kinds
