"""Logins under attack through the Flask client: no lock-out from outside, no name oracle,
busy hashing refused at once, and only safe local paths after the login."""

from __future__ import annotations

import re
import threading

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from domain.accounts import passwords
from domain.accounts.logins import ACCOUNT_MAX_FAILURES
from store.engine import Store
from tests.bridge.admin.conftest import csrf_of
from tests.conftest import hashing_slots_held, snapshot

ATTACKER = {"REMOTE_ADDR": "198.51.100.66"}
CLERK = {"REMOTE_ADDR": "203.0.113.5"}
ERROR = re.compile(r'<div class="notice error"[^>]*>(.*?)</div>', re.S)


def _login(
    client: FlaskClient, username: str, password: str, remote: dict[str, str], next_url: str = ""
) -> TestResponse:
    token = csrf_of(client.get("/admin/login", environ_base=remote))
    return client.post(
        "/admin/login",
        data={"username": username, "password": password, "csrf_token": token, "next": next_url},
        environ_base=remote,
    )


def _answer(response: TestResponse) -> tuple[int, str, str | None]:
    page = response.get_data(as_text=True)
    found = ERROR.search(page)
    return (
        response.status_code,
        found.group(1) if found else page,
        response.headers.get("Retry-After"),
    )


def test_an_attack_from_elsewhere_does_not_close_the_admin_page(
    app: Flask, accounts: dict[str, str]
) -> None:
    """Six wrong passwords for olga from one address lock that address out of olga's account,
    but olga, logging in from her own address without failures, gets in."""
    attacker = app.test_client()
    for _ in range(ACCOUNT_MAX_FAILURES + 1):
        assert _login(attacker, "olga", "falsch-falsch-falsch", ATTACKER).status_code in (401, 429)
    assert _login(attacker, "olga", accounts["olga"], ATTACKER).status_code == 429
    clerk = app.test_client()
    response = _login(clerk, "olga", accounts["olga"], CLERK)
    assert response.status_code == 303
    assert clerk.get("/admin/", environ_base=CLERK).status_code == 200


def test_unknown_names_answer_like_known_ones(app: Flask, accounts: dict[str, str]) -> None:
    """Six wrong logins for olga and for a name without an account: the same statuses, the
    same German messages and the same Retry-After, one by one."""
    known = [
        _answer(_login(app.test_client(), "olga", "falsch-falsch-falsch", ATTACKER))
        for _ in range(ACCOUNT_MAX_FAILURES + 1)
    ]
    unknown = [
        _answer(_login(app.test_client(), "niemand", "falsch-falsch-falsch", CLERK))
        for _ in range(ACCOUNT_MAX_FAILURES + 1)
    ]
    assert known == unknown
    assert [status for status, _, _ in known] == [401] * 4 + [429] * 2
    assert known[0][1] == "Benutzername oder Passwort falsch."


def test_busy_hashing_refuses_at_once_with_retry_after(
    app: Flask, store: Store, accounts: dict[str, str]
) -> None:
    """While other threads hold every hashing slot, a login is answered 429 at once in German
    with Retry-After, nothing is counted and no session opens; afterwards it works."""
    client = app.test_client()
    token = csrf_of(client.get("/admin/login"))
    with hashing_slots_held():
        before = snapshot(store)
        response = client.post(
            "/admin/login",
            data={"username": "olga", "password": accounts["olga"], "csrf_token": token},
        )
        assert response.status_code == 429
        assert response.headers["Retry-After"] == str(passwords.BUSY_RETRY_S)
        assert "Gerade melden sich viele gleichzeitig an." in response.get_data(as_text=True)
        assert snapshot(store) == before
    again = client.post(
        "/admin/login",
        data={"username": "olga", "password": accounts["olga"], "csrf_token": token},
    )
    assert again.status_code == 303


class TestBurst:
    """A burst of logins with real hashing cost, from threads at once."""

    @pytest.fixture
    def environ(self, environ: dict[str, str]) -> dict[str, str]:
        """Hashes slow enough (64 MiB) that a burst finds the slots taken."""
        environ["BRIDGE_PASSWORD_SCRYPT_N"] = str(2**16)
        return environ

    def test_a_burst_is_answered_without_queueing(
        self, app: Flask, accounts: dict[str, str]
    ) -> None:
        """Eight logins at once: each is either a login (303) or refused as busy (429), at
        least one of each, never a 5xx."""
        count = 8
        clients = [app.test_client() for _ in range(count)]
        tokens = [csrf_of(c.get("/admin/login")) for c in clients]
        start = threading.Barrier(count)
        statuses: list[int] = []

        def attempt(i: int) -> None:
            start.wait()
            response = clients[i].post(
                "/admin/login",
                data={"username": "olga", "password": accounts["olga"], "csrf_token": tokens[i]},
            )
            statuses.append(response.status_code)

        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(count)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(set(statuses)) == [303, 429], statuses
        assert len(statuses) == count


@pytest.mark.parametrize(
    "target",
    [
        "/admin/\r\nSet-Cookie:x=1",
        "/admin/\nx",
        "/admin/\x00",
        "/admin/\t",
        "//evil.example",
        "https://evil.example",
        "\\\\evil",
        "/admin/../evil",
        "/admin/%2E%2E/evil",
        "/\\evil.example",
    ],
)
def test_login_refuses_unsafe_next(
    client: FlaskClient, accounts: dict[str, str], target: str
) -> None:
    """Control characters or anything but a plain /admin/ path in `next` lead to /admin/ after
    the login, and a logged-in GET with it redirects there too (never a 5xx)."""
    response = _login(client, "olga", accounts["olga"], CLERK, next_url=target)
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/"
    again = client.get("/admin/login", query_string={"next": target}, environ_base=CLERK)
    assert again.status_code == 303
    assert again.headers["Location"] == "/admin/"


def test_login_form_drops_an_unsafe_next(client: FlaskClient) -> None:
    """The form does not carry a CR/LF `next` into its hidden field."""
    response = client.get("/admin/login?next=/admin/%0D%0ASet-Cookie:x=1")
    assert response.status_code == 200
    assert "Set-Cookie:x=1" not in response.get_data(as_text=True)
