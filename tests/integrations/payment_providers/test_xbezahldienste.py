"""The xbezahldienste plugin against the simulator: create, status, dedupe, errors, callbacks."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import requests

from demo_payments import DemoPayments
from integrations.payment_providers import (
    BadCallback,
    ProviderConfigError,
    ProviderRefused,
    ProviderUnavailable,
    UnknownTransaction,
    build_provider,
    secret_names,
    validate_provider_options,
)
from tests.integrations.payment_providers.conftest import (
    AGS_NEU_ANSPACH,
    basic_options,
    control,
    order,
    provider,
)


def test_create_then_pay_then_status_confirms_paid_with_kassenzeichen(
    simulator: DemoPayments,
) -> None:
    """Create gives a pay page; after paying there the status call says PAYED, the amount
    and the Kassenzeichen; the browser goes back to our return URL."""
    epay = provider(basic_options(simulator))
    fee = order()
    created = epay.create(fee)
    assert created.status == "INITIAL"
    assert created.pay_url is not None
    assert created.pay_url.startswith(f"{simulator.url}/xbezahldienste/pay/")

    before = epay.status(fee.payment_id, created.transaction_id, municipality_ags=AGS_NEU_ANSPACH)
    assert (before.status, before.amount, before.transaction_reference) == (
        "INITIAL",
        Decimal("35.00"),
        None,
    )

    page = requests.get(created.pay_url, timeout=5)
    assert "Bezahlen" in page.text
    assert "Abbrechen" in page.text
    assert "35,00 EUR" in page.text
    paid = requests.post(
        created.pay_url, data={"action": "pay", "method": "CREDITCARD"}, allow_redirects=False,
        timeout=5,
    )  # fmt: skip
    assert paid.status_code == 303
    assert paid.headers["Location"] == fee.return_url

    after = epay.status(fee.payment_id, created.transaction_id, municipality_ags=AGS_NEU_ANSPACH)
    assert after.status == "PAYED"
    assert after.amount == Decimal("35.00")
    assert after.method == "CREDITCARD"
    assert after.transaction_reference is not None
    assert after.transaction_reference.startswith("KZ-")
    assert after.at is not None


def test_the_body_follows_the_standard(simulator: DemoPayments) -> None:
    """grosAmount (one s) equals the item, purpose and requestId as the standard wants them."""
    epay = provider(basic_options(simulator))
    fee = order(purpose="NA-2026-000123 Halteverbot / Umzug: Gebühr 35 €")
    epay.create(fee)
    [txn] = control(simulator, "transactions", "GET")["transactions"]
    stored = simulator.ledger.all()[0].request
    assert stored["grosAmount"] == Decimal("35.00")
    assert stored["items"][0]["totalNetAmount"] == Decimal("35.00")
    assert stored["requestId"] == fee.payment_id
    assert stored["purpose"] == "NA-2026-000123 Halteverbot"
    assert stored["currency"] == "EUR"
    assert txn["amount"] == "35.00"


def test_a_lenient_provider_answers_a_repeated_create_with_the_same_transaction(
    start_simulator: Callable[..., DemoPayments],
) -> None:
    """A provider that dedupes instead of refusing (`on_repeat = "return"`): one transaction
    at the provider, the same id and pay page both times."""
    simulator = start_simulator(on_repeat="return")
    epay = provider(basic_options(simulator))
    first = epay.create(order())
    second = epay.create(order())
    assert second.transaction_id == first.transaction_id
    assert second.pay_url == first.pay_url
    listing = control(simulator, "transactions", "GET")
    assert listing["count"] == 1
    assert listing["transactions"][0]["creates"] == 2


def test_payment_exists_from_a_real_provider_is_a_refusal_with_its_code(
    start_simulator: Callable[..., DemoPayments],
) -> None:
    """The standard (and the simulator's default) answers a repeated requestId with
    PAYMENT_EXISTS: ProviderRefused(code=PAYMENT_EXISTS)."""
    demo = start_simulator()
    epay = provider(basic_options(demo))
    epay.create(order())
    with pytest.raises(ProviderRefused) as refused:
        epay.create(order())
    assert refused.value.code == "PAYMENT_EXISTS"
    assert refused.value.status_code == 409
    assert control(demo, "transactions", "GET")["count"] == 1


def test_wrong_basic_password_is_refused(simulator: DemoPayments) -> None:
    """A wrong password: ProviderRefused (401), nothing created."""
    epay = provider(basic_options(simulator), secrets={"EPAY_PASSWORD": "falsch"})
    with pytest.raises(ProviderRefused) as refused:
        epay.create(order())
    assert refused.value.status_code == 401
    assert not isinstance(refused.value, ProviderUnavailable)
    assert control(simulator, "transactions", "GET")["count"] == 0


def test_missing_secret_is_a_configuration_error(simulator: DemoPayments) -> None:
    """The env var the options name is not set: ProviderConfigError naming it, no request."""
    epay = provider(basic_options(simulator), secrets={})
    with pytest.raises(ProviderConfigError, match="EPAY_PASSWORD"):
        epay.create(order())
    assert control(simulator, "transactions", "GET")["counters"] == {}


def test_provider_down_is_unavailable_and_later_up_works(simulator: DemoPayments) -> None:
    """503 while down -> ProviderUnavailable; up again, the same create succeeds once."""
    epay = provider(basic_options(simulator))
    control(simulator, "down")
    with pytest.raises(ProviderUnavailable) as down:
        epay.create(order())
    assert down.value.status_code == 503
    control(simulator, "up")
    assert epay.create(order()).status == "INITIAL"
    assert control(simulator, "transactions", "GET")["count"] == 1


def test_unreachable_and_slow_providers_are_unavailable(simulator: DemoPayments) -> None:
    """Connection refused and timeouts are ProviderUnavailable, never a refusal."""
    gone = provider(basic_options(simulator, base_url="http://127.0.0.1:9/xbezahldienste"))
    with pytest.raises(ProviderUnavailable, match="keine Verbindung"):
        gone.create(order())


def test_unknown_transaction_on_status(simulator: DemoPayments) -> None:
    """404 on the status call is UnknownTransaction; without a transaction id too."""
    epay = provider(basic_options(simulator))
    with pytest.raises(UnknownTransaction):
        epay.status("0" * 32, "XB0000", municipality_ags=AGS_NEU_ANSPACH)
    with pytest.raises(UnknownTransaction):
        epay.status("0" * 32, None, municipality_ags=AGS_NEU_ANSPACH)


def test_cancel_and_expiry_are_final_statuses(simulator: DemoPayments) -> None:
    """Abbrechen -> CANCELED; the provider's own timeout -> FAILED; a new attempt is separate."""
    epay = provider(basic_options(simulator))
    first = epay.create(order("a" * 32))
    assert first.pay_url is not None
    requests.post(first.pay_url, data={"action": "cancel"}, allow_redirects=False, timeout=5)
    cancelled = epay.status("a" * 32, first.transaction_id, municipality_ags=AGS_NEU_ANSPACH)
    assert cancelled.status == "CANCELED"
    assert cancelled.transaction_reference is None
    second = epay.create(order("b" * 32))
    control(simulator, f"expire/{second.transaction_id}")
    expired = epay.status("b" * 32, second.transaction_id, municipality_ags=AGS_NEU_ANSPACH)
    assert expired.status == "FAILED"
    assert control(simulator, f"pay/{second.transaction_id}")["status"] == "FAILED"


def test_configured_end_point_is_used_instead_of_the_town(simulator: DemoPayments) -> None:
    """end_point_id fixes the endPointId; the status call finds the transaction without AGS."""
    epay = provider(basic_options(simulator, end_point_id="stadtkasse-usingen"))
    created = epay.create(order())
    [txn] = control(simulator, "transactions", "GET")["transactions"]
    assert txn["scope"] == ["formcycle-bridge", "stadtkasse-usingen"]
    assert epay.status(order().payment_id, created.transaction_id).status == "INITIAL"


def test_notification_reaches_the_notify_url_and_parses_as_a_claim(
    simulator: DemoPayments,
) -> None:
    """With send_notify_url the simulator POSTs the transaction; parse_callback names ours."""
    received: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the stand-in bridge's webhook
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(({k: v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    bridge = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=bridge.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        pid = "c" * 32
        notify = f"http://127.0.0.1:{bridge.server_port}/webhooks/payments/epay21?payment={pid}"
        epay = provider(basic_options(simulator, send_notify_url=True))
        created = epay.create(order(pid, notify_url=notify))
        control(simulator, f"pay/{created.transaction_id}")
    finally:
        bridge.shutdown()
        bridge.server_close()
    [(headers, body)] = received
    claim = epay.parse_callback(headers, body, {"payment": pid})
    assert claim.payment_id == pid
    assert claim.transaction_id == created.transaction_id
    assert claim.status == "PAYED"
    assert claim.amount == Decimal("35.00")
    assert json.loads(body)["paymentInformation"]["transactionReference"].startswith("KZ-")
    assert control(simulator, "notifications", "GET")["notifications"][0]["status_code"] == 204


def test_callbacks_and_returns_only_name_the_payment(simulator: DemoPayments) -> None:
    """A return carries no status; callbacks without any id, or unreadable, are BadCallback."""
    epay = provider(basic_options(simulator))
    claim = epay.parse_return({"payment": "d" * 32, "status": "PAYED"})
    assert (claim.payment_id, claim.status, claim.amount) == ("d" * 32, None, None)
    form = epay.parse_callback(
        {"Content-Type": "application/x-www-form-urlencoded"}, b"transactionId=XB1", {}
    )
    assert (form.payment_id, form.transaction_id) == (None, "XB1")
    with pytest.raises(BadCallback):
        epay.parse_return({})
    with pytest.raises(BadCallback):
        epay.parse_callback({"Content-Type": "application/json"}, b"{not json", {})
    with pytest.raises(BadCallback):
        epay.parse_callback({}, b"", {"payment": "<script>"})


def test_option_validation_lines() -> None:
    """Unknown plugin, missing auth options and foreign ones are dotted problem lines."""
    [unknown] = validate_provider_options("nope", {})[1]
    assert unknown.startswith("plugin: unknown payment provider plugin 'nope' (known: ")
    assert "xbezahldienste" in unknown
    base = {"base_url": "https://epay-qs.ekom21.de/x", "originator_id": "bridge"}
    _, problems = validate_provider_options("xbezahldienste", {**base, "auth": "basic"})
    assert problems == [
        "password_env: required with auth = 'basic'",
        "username: required with auth = 'basic'",
    ]
    _, problems = validate_provider_options(
        "xbezahldienste",
        {**base, "auth": "basic", "username": "u", "password_env": "lower", "client_id": "x"},
    )
    assert problems == ["password_env: must name an environment variable (A-Z, 0-9, _)"]
    _, problems = validate_provider_options(
        "xbezahldienste",
        {**base, "auth": "basic", "username": "u", "password_env": "PW", "client_id": "x"},
    )
    assert problems == ["client_id: not used with auth = 'basic'"]
    _, problems = validate_provider_options("xbezahldienste", {**base, "auth": "none", "x": 1})
    assert any(p.startswith("auth:") for p in problems)
    assert any(p.startswith("x:") for p in problems)
    loaded, problems = validate_provider_options(
        "xbezahldienste", {**base, "auth": "basic", "username": "u", "password_env": "PW"}
    )
    assert problems == []
    assert loaded["timeout_s"] == 10.0
    assert secret_names("xbezahldienste", {**base, "password_env": "PW"}) == {"PW"}
    with pytest.raises(ProviderConfigError, match="auth"):
        build_provider("epay21", "xbezahldienste", base, {})
