"""Odd provider answers, from a canned-answer server on loopback: never trusted, never a crash."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from integrations.payment_providers import ProviderRefused, ProviderUnavailable
from tests.integrations.payment_providers.conftest import order, provider


class Canned:
    """What the server answers next: status, content type and body."""

    def __init__(self) -> None:
        self.status = 200
        self.content_type = "application/json"
        self.body = b"{}"

    def answer(self, value: Any, status: int = 200, content_type: str = "application/json") -> None:
        self.status = status
        self.content_type = content_type
        self.body = value if isinstance(value, bytes) else json.dumps(value).encode()


@pytest.fixture
def canned() -> Iterator[tuple[str, Canned]]:
    """A loopback HTTP server answering every request with the canned answer."""
    state = Canned()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self.send_response(state.status)
            self.send_header("Content-Type", state.content_type)
            self.send_header("Content-Length", str(len(state.body)))
            if state.status in (301, 302, 303):
                self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.end_headers()
            self.wfile.write(state.body)

        do_GET = do_POST = _answer  # noqa: N815 - http.server's handler names

        def log_message(self, format: str, *args: object) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", state
    server.shutdown()
    server.server_close()


def _epay(url: str) -> Any:
    return provider(
        {
            "base_url": url,
            "originator_id": "bridge",
            "auth": "basic",
            "username": "u",
            "password_env": "EPAY_PASSWORD",
        }
    )


def _info(**info: Any) -> dict[str, Any]:
    return {"paymentRequest": {"grosAmount": 35}, "paymentInformation": info}


def test_unreadable_success_is_unavailable(canned: tuple[str, Canned]) -> None:
    """A 2xx that is not JSON: the transaction may exist, so retry (idempotent), not refuse."""
    url, state = canned
    state.answer(b"<html>oops</html>", content_type="text/html")
    with pytest.raises(ProviderUnavailable, match="unlesbare Antwort"):
        _epay(url).create(order())


@pytest.mark.parametrize(
    "body",
    [
        {"no": "paymentInformation"},
        _info(status="INITIAL"),  # no transactionId
        _info(transactionId="x" * 129, status="INITIAL"),
        _info(transactionId="a/b", status="INITIAL"),
        _info(transactionId="XB1", status="BEZAHLT"),
    ],
)
def test_answers_we_cannot_trust_are_refused(canned: tuple[str, Canned], body: Any) -> None:
    """Missing or odd ids and unknown statuses are refusals (a cut id would find nothing)."""
    url, state = canned
    state.answer(body, status=201)
    with pytest.raises(ProviderRefused):
        _epay(url).create(order())


def test_a_pay_url_that_is_not_http_is_dropped(canned: tuple[str, Canned]) -> None:
    """A javascript: or whitespace pay URL is never handed to the citizen's browser."""
    url, state = canned
    for bad in ("javascript:alert(1)", "https://pay.example/a b", "ftp://pay.example/"):
        state.answer(_info(transactionId="XB1", status="INITIAL", transactionRedirectUrl=bad))
        assert _epay(url).create(order()).pay_url is None
    state.answer(
        _info(transactionId="XB1", status="INITIAL", transactionRedirectUrl="https://p.example/1")
    )
    assert _epay(url).create(order()).pay_url == "https://p.example/1"


def test_problem_codes_are_taken_only_when_known(canned: tuple[str, Canned]) -> None:
    """A known functionalCode is kept; other text of the problem never reaches the message."""
    url, state = canned
    state.answer(
        {"functionalCode": "BOOKING_DATA_MISSING", "detail": "Herr Max Mustermann fehlt"},
        status=422,
        content_type="application/problem+json",
    )
    with pytest.raises(ProviderRefused) as known:
        _epay(url).create(order())
    assert known.value.code == "BOOKING_DATA_MISSING"
    assert "Mustermann" not in known.value.message
    state.answer({"functionalCode": "<b>x</b>"}, status=400)
    with pytest.raises(ProviderRefused) as unknown:
        _epay(url).create(order())
    assert unknown.value.code is None
    assert "<b>" not in unknown.value.message


def test_redirects_are_not_followed(canned: tuple[str, Canned]) -> None:
    """A 302 from the API is a refusal; credentials never follow it elsewhere."""
    url, state = canned
    state.answer(b"", status=302)
    with pytest.raises(ProviderRefused) as moved:
        _epay(url).create(order())
    assert moved.value.status_code == 302


def test_pmpayment_status_codes_and_odd_answers(canned: tuple[str, Canned]) -> None:
    """1 / 0 / -1 (number or text) map to PAYED / FAILED / INITIAL; anything else refused."""
    url, state = canned
    pm = provider(
        {"base_url": url, "procedure": "p", "salt_env": "PMPAYMENT_SALT"}, plugin="pmpayment"
    )
    for code, expected in ((1, "PAYED"), ("0", "FAILED"), (-1, "INITIAL"), ("-1", "INITIAL")):
        state.answer({"status": code, "timestamp": "2026-12-01 12:30:00"})
        status = pm.status("a" * 32, None, municipality_ags="06434007")
        assert status.status == expected
        assert status.transaction_id == "a" * 32
    assert status.at is not None
    assert status.at.isoformat() == "2026-12-01T11:30:00+00:00"  # Europe/Berlin, winter
    for odd in ({"status": 2}, {"status": True}, {"nothing": 1}, {"status": None}):
        state.answer(odd)
        with pytest.raises(ProviderRefused):
            pm.status("a" * 32, None, municipality_ags="06434007")
    state.answer({"url": "javascript:alert(1)", "txid": "a" * 32})
    with pytest.raises(ProviderRefused):
        pm.create(order("a" * 32))
