"""Hostile payment callbacks cannot fill the store: unknown providers store nothing, configured
ones a bounded row per call, at most 60 calls a minute per address, and Redis down is no 5xx."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from bridge import create_app
from domain.settings import Settings
from store.engine import Store
from store.models import PaymentCallback
from tests.conftest import snapshot

CONFIGURED = "/webhooks/payments/epay21-demo"
LIMIT = 60  # callbacks a minute per address (README, E-Payment)
BODY_BOUND = 4096  # bytes of a body the journal keeps
HEADERS_BOUND = 1024  # bytes of a row's headers as JSON (allow-listed, values cut)
# The attack: a 64 KB body and 48 padding headers of 500 characters.
PADDING = {f"X-Pad-{i:02d}": "p" * 500 for i in range(48)}
HOSTILE = b"x" * (64 * 1024)


def _rows(store: Store) -> list[PaymentCallback]:
    with store.read() as session:
        return list(session.scalars(select(PaymentCallback).order_by(PaymentCallback.id)))


def _hostile(client: FlaskClient, path: str, addr: str) -> int:
    response = client.post(
        path,
        data=HOSTILE,
        headers=PADDING,
        content_type="application/json",
        environ_base={"REMOTE_ADDR": addr},
    )
    assert response.status_code < 500
    if response.status_code != 429:
        assert response.headers["Content-Type"] == "application/problem+json"
    return response.status_code


def test_hostile_callbacks_leave_the_store_bounded(client: FlaskClient, store: Store) -> None:
    """1,000 posts of 64 KB with 48 padding headers: unknown provider ids store nothing; a
    configured provider's garbage stores at most 60 rows a minute per address, each within
    4 KiB of body and 1 KiB of headers (the bound: rows x 5 KiB)."""
    before = snapshot(store)
    unknown = [
        _hostile(client, f"/webhooks/payments/nobody-{i}", f"198.51.100.{i % 5}")
        for i in range(500)
    ]
    assert sorted(set(unknown)) == [404, 429]
    assert unknown.count(404) == 5 * LIMIT
    assert snapshot(store) == before
    garbage = [_hostile(client, CONFIGURED, f"203.0.113.{i % 5}") for i in range(500)]
    assert garbage.count(400) == 5 * LIMIT
    assert garbage.count(429) == 500 - 5 * LIMIT
    rows = _rows(store)
    assert len(rows) == 5 * LIMIT
    assert all(r.provider == "epay21-demo" and r.verdict == "unreadable" for r in rows)
    assert all(r.body is not None and len(r.body) == BODY_BOUND and r.body_truncated for r in rows)
    header_sizes = [len(json.dumps(r.headers)) for r in rows]
    assert max(header_sizes) <= HEADERS_BOUND
    assert not any(k.startswith("X-Pad") for r in rows for k in r.headers)
    stored = sum(len(r.body or b"") for r in rows) + sum(header_sizes)
    assert stored <= len(rows) * (BODY_BOUND + HEADERS_BOUND)
    assert {k: v for k, v in snapshot(store).items() if k != "payment_callbacks"} == {
        k: v for k, v in before.items() if k != "payment_callbacks"
    }


def test_callbacks_are_rate_limited_per_address(client: FlaskClient, store: Store) -> None:
    """The 61st call in a minute from one address: 429, Retry-After 60, a German (or English)
    problem, nothing journalled; another address is still heard."""
    codes = [client.post(CONFIGURED, json={}).status_code for _ in range(LIMIT)]
    assert codes == [400] * LIMIT
    before = snapshot(store)
    limited = client.post(CONFIGURED, json={})
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "60"
    assert limited.headers["Content-Type"] == "application/problem+json"
    assert limited.get_json()["title"] == "Zu viele Anfragen."
    assert "60" in limited.get_json()["detail"]
    english = client.post(CONFIGURED, json={}, headers={"Accept-Language": "en"})
    assert english.status_code == 429
    assert english.get_json()["title"] == "Too many requests."
    assert snapshot(store) == before
    other = client.post(CONFIGURED, json={}, environ_base={"REMOTE_ADDR": "192.0.2.77"})
    assert other.status_code == 400


def test_unknown_provider_is_a_404_that_stores_nothing(client: FlaskClient, store: Store) -> None:
    """A provider id not in the routing file: 404 problem in German, no journal row."""
    before = snapshot(store)
    response = client.post("/webhooks/payments/paypal-ish", json={"transactionId": "t-1"})
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.get_json()["title"] == "Unbekannter Zahlungsanbieter."
    assert snapshot(store) == before


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def redisless(environ: dict[str, str]) -> Iterator[Flask]:
    """The app with Redis on a closed port."""
    app = create_app(
        Settings.from_env({**environ, "REDIS_URL": f"redis://127.0.0.1:{_closed_port()}/0"})
    )
    yield app
    app.extensions["bridge"].store.dispose()


def test_callbacks_are_answered_without_redis(redisless: Flask) -> None:
    """Redis down: the limit cannot be counted, the callback is still answered (no 5xx): an
    unknown provider 404 with nothing stored, garbage 400 journalled as before."""
    client = redisless.test_client()
    store: Store = redisless.extensions["bridge"].store
    before = snapshot(store)
    unknown = client.post("/webhooks/payments/paypal-ish", data=HOSTILE, headers=PADDING)
    assert unknown.status_code == 404
    assert snapshot(store) == before
    garbage = client.post(CONFIGURED, json={})
    assert garbage.status_code == 400
    assert garbage.get_json()["title"] == "Die Zahlungsnachricht ist nicht lesbar."
    assert [r.verdict for r in _rows(store)] == ["unreadable"]
