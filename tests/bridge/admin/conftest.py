"""Fixtures of the admin page tests: accounts of each role and a logged-in test client."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from domain.accounts.accounts import Actor, create_account
from domain.accounts.passwords import ScryptParams
from store.engine import Store

PASSWORDS = {
    "olga": "Stadtkasse-Usingen-2026!",
    "vera": "Nur-lesen-bitte-2026!",
}
SETUP = Actor("setup", "admin", via="cli")
# The cheapest cost the settings allow: these tests are about the page, not about scrypt.
SCRYPT_N = 2**14
TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


@pytest.fixture
def environ(environ: dict[str, str]) -> dict[str, str]:
    """The test environment with cheap password hashing."""
    environ["BRIDGE_PASSWORD_SCRYPT_N"] = str(SCRYPT_N)
    return environ


@pytest.fixture
def accounts(store: Store) -> dict[str, str]:
    """An operator (olga) and a viewer (vera); their user names to passwords."""
    kdf = ScryptParams(n=SCRYPT_N)
    create_account(store, "olga", PASSWORDS["olga"], "operator", actor=SETUP, kdf=kdf)
    create_account(store, "vera", PASSWORDS["vera"], "viewer", actor=SETUP, kdf=kdf)
    return PASSWORDS


def csrf_of(response: TestResponse) -> str:
    """The CSRF token a page's forms carry."""
    found = TOKEN.search(response.get_data(as_text=True))
    assert found, response.get_data(as_text=True)
    return found.group(1)


def login(client: FlaskClient, username: str, password: str) -> TestResponse:
    """Log in through the form as a browser would (GET for the token, then POST)."""
    token = csrf_of(client.get("/admin/login"))
    return client.post(
        "/admin/login",
        data={"username": username, "password": password, "csrf_token": token},
    )


@pytest.fixture
def operator(client: FlaskClient, accounts: dict[str, str]) -> FlaskClient:
    """The client logged in as the operator."""
    assert login(client, "olga", accounts["olga"]).status_code == 303
    return client


@pytest.fixture
def viewer(client: FlaskClient, accounts: dict[str, str]) -> FlaskClient:
    """The client logged in as the viewer."""
    assert login(client, "vera", accounts["vera"]).status_code == 303
    return client
