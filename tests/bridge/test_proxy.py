"""Behind a reverse proxy every per-address rule sees the client, and only a trusted proxy is
believed: the pay pages' limit, the callback journal, the login lock-out, the admin sessions,
the cookie's Secure flag (docs/proxy.md). Through the Flask client; tests/deploy/test_nginx.py
does the same through a real nginx."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from bridge import create_app
from domain.accounts.accounts import Actor, create_account
from domain.accounts.logins import ACCOUNT_MAX_FAILURES
from domain.accounts.passwords import ScryptParams
from domain.settings import Settings, SettingsError
from store.accounts import AdminSession
from store.engine import Store
from store.models import PaymentCallback
from tests.conftest import ROOT

PROXY = "127.0.0.1"  # nginx on the same host, the default BRIDGE_TRUSTED_PROXIES
PAY = "/pay/NA-2026-000999"  # no such case: the limit is counted before the lookup
LIMIT = 30  # pay-page requests a minute per address (bridge/payments/routes.py)
TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
PASSWORD = "Stadtkasse-Usingen-2026!"


def _app(environ: dict[str, str], **extra: str) -> Flask:
    app = create_app(Settings.from_env({**environ, **extra}))
    app.config["TESTING"] = True
    return app


@pytest.fixture
def proxied(environ: dict[str, str]) -> Iterator[Flask]:
    """The app behind one proxy on loopback (BRIDGE_PROXY_HOPS=1, default trusted proxies)."""
    app = _app(environ, BRIDGE_PROXY_HOPS="1")
    yield app
    app.extensions["bridge"].store.dispose()


def _send(
    client: FlaskClient,
    method: str,
    path: str,
    peer: str,
    forwarded: str | None = None,
    proto: str | None = None,
    **options: Any,
) -> TestResponse:
    """A request from the TCP peer `peer` carrying the given forwarded headers."""
    headers = {}
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    if proto is not None:
        headers["X-Forwarded-Proto"] = proto
    return client.open(
        path, method=method, headers=headers, environ_base={"REMOTE_ADDR": peer}, **options
    )


def _pay_statuses(client: FlaskClient, peer: str, forwarded: list[str]) -> list[int]:
    return [_send(client, "GET", PAY, peer, f).status_code for f in forwarded]


def test_behind_the_proxy_each_citizen_has_a_limit_of_their_own(proxied: Flask) -> None:
    """Thirty pay-page requests of one citizen through the proxy use up that citizen's minute
    (the 31st is 429); a second citizen through the same proxy is not limited at all."""
    client = proxied.test_client()
    first = _pay_statuses(client, PROXY, ["198.51.100.1"] * (LIMIT + 1))
    assert 429 not in first[:LIMIT]
    assert first[LIMIT] == 429
    assert _pay_statuses(client, PROXY, ["198.51.100.2"]) != [429]


def test_a_client_cannot_pick_its_address_by_forwarding_one(proxied: Flask) -> None:
    """What a client writes into X-Forwarded-For itself stands left of what the proxy appends
    and is ignored: 31 requests, each claiming another address, are one client's."""
    client = proxied.test_client()
    claims = [f"203.0.113.{i}, 198.51.100.7" for i in range(LIMIT + 1)]
    assert _pay_statuses(client, PROXY, claims)[LIMIT] == 429


@pytest.mark.parametrize(
    ("hops", "peer"),
    [("0", PROXY), ("1", "192.0.2.44"), ("1", "127.0.0.2")],
    ids=["no-proxy-configured", "untrusted-remote-peer", "untrusted-loopback-peer"],
)
def test_a_forged_forwarded_address_from_an_untrusted_peer_is_ignored(
    environ: dict[str, str], hops: str, peer: str
) -> None:
    """Without a proxy configured, or from a peer that is not a trusted proxy, X-Forwarded-For
    changes nothing: 31 requests claiming 31 addresses are the peer's 31 requests."""
    app = _app(environ, BRIDGE_PROXY_HOPS=hops)
    claims = [f"203.0.113.{i}" for i in range(LIMIT + 1)]
    assert _pay_statuses(app.test_client(), peer, claims)[LIMIT] == 429
    app.extensions["bridge"].store.dispose()


def test_the_callback_journal_records_the_provider_not_the_proxy(
    proxied: Flask, environ: dict[str, str]
) -> None:
    """A provider's callback through the proxy is journalled with the provider's address; a
    direct caller's forged header is not (the journal keeps its real address)."""
    client = proxied.test_client()
    store: Store = proxied.extensions["bridge"].store
    for peer, forwarded in ((PROXY, "192.0.2.10, 198.51.100.20"), ("192.0.2.30", "198.51.100.40")):
        response = _send(
            client,
            "POST",
            "/webhooks/payments/epay21-demo",
            peer,
            forwarded,
            data=b"{}",
            content_type="application/json",
        )
        assert response.status_code == 400, response.get_data(as_text=True)
    with store.read() as session:
        addresses = list(session.scalars(select(PaymentCallback.remote_addr).order_by("id")))
    assert addresses == ["198.51.100.20", "192.0.2.30"]


def _login(client: FlaskClient, password: str, forwarded: str) -> int:
    page = _send(client, "GET", "/admin/login", PROXY, forwarded, "https")
    token = TOKEN.search(page.get_data(as_text=True))
    assert token, page.get_data(as_text=True)
    data = {"username": "olga", "password": password, "csrf_token": token.group(1)}
    return _send(client, "POST", "/admin/login", PROXY, forwarded, "https", data=data).status_code


def test_one_clients_lockout_does_not_lock_out_another_behind_the_proxy(proxied: Flask) -> None:
    """Wrong passwords for olga from one address behind the proxy lock that address out; olga
    from her own address through the same proxy gets in, and her session records her address."""
    store: Store = proxied.extensions["bridge"].store
    create_account(
        store,
        "olga",
        PASSWORD,
        "operator",
        actor=Actor("setup", "admin", via="cli"),
        kdf=ScryptParams(n=2**14),
    )
    attacker = proxied.test_client()
    for _ in range(ACCOUNT_MAX_FAILURES + 1):
        assert _login(attacker, "falsch-falsch-falsch", "198.51.100.66") in (401, 429)
    assert _login(attacker, PASSWORD, "198.51.100.66") == 429
    assert _login(proxied.test_client(), PASSWORD, "203.0.113.5") == 303
    with store.read() as session:
        assert list(session.scalars(select(AdminSession.remote_addr))) == ["203.0.113.5"]


def test_the_proxy_says_https_only_when_trusted(proxied: Flask) -> None:
    """X-Forwarded-Proto from the proxy makes the login cookie Secure (the clerk reached the
    proxy over TLS); the same header from a local process that is not the proxy does not."""
    through = _send(proxied.test_client(), "GET", "/admin/login", PROXY, "203.0.113.5", "https")
    assert "Secure" in through.headers["Set-Cookie"]
    direct = _send(
        proxied.test_client(), "GET", "/admin/login", "127.0.0.2", "203.0.113.5", "https"
    )
    assert "Secure" not in direct.headers["Set-Cookie"]


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"BRIDGE_TRUSTED_PROXIES": "127.0.0.1,nginx.local"}, "nginx.local: not an address"),
        ({"BRIDGE_PROXY_HOPS": "1", "BRIDGE_TRUSTED_PROXIES": ""}, "at least one proxy"),
        ({"BRIDGE_PROXY_HOPS": "-1"}, "BRIDGE_PROXY_HOPS"),
        ({"BRIDGE_PROXY_HOPS": "zwei"}, "BRIDGE_PROXY_HOPS"),
    ],
)
def test_bad_proxy_settings_are_refused_at_start(
    environ: dict[str, str], extra: dict[str, str], named: str
) -> None:
    """A proxy address that is not one, or hops without a proxy to trust: the service does
    not start, and the message names the variable."""
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({**environ, **extra})
    assert named in str(refused.value)
    assert any(p.startswith(next(iter(extra))) or named in p for p in refused.value.problems)


def test_proxy_settings_are_read(environ: dict[str, str]) -> None:
    """Hops and networks (IPv4 and IPv6, single addresses and ranges) as configured."""
    settings = Settings.from_env(
        {**environ, "BRIDGE_PROXY_HOPS": "2", "BRIDGE_TRUSTED_PROXIES": "10.0.0.0/8, ::1"}
    )
    assert (settings.proxy_hops, settings.trusted_proxies) == (2, ("10.0.0.0/8", "::1"))
    assert Settings.from_env(environ).proxy_hops == 0


def test_only_bridge_proxy_reads_the_peer_address() -> None:
    """Every other module asks `bridge.proxy.client_address()`, so no rule can see the proxy
    instead of the client (a new `request.remote_addr` would)."""
    readers = []
    for path in sorted(ROOT.glob("bridge/**/*.py")):
        if path == ROOT / "bridge" / "proxy.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr == "remote_addr":
                readers.append(f"{Path(path).relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, ast.Constant) and node.value == "REMOTE_ADDR":
                readers.append(f"{Path(path).relative_to(ROOT)}:{node.lineno}")
    assert readers == []
