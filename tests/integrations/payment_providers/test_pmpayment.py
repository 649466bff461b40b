"""The pmpayment plugin: fixed hash vectors, and create/status/notify/return against the simulator."""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from demo_payments import DemoPayments
from integrations.payment_providers import (
    BadCallback,
    ProviderRefused,
    UnknownTransaction,
    validate_provider_options,
)
from integrations.payment_providers.pmpayment import PmPaymentProvider, init_hash_string, sign
from tests.integrations.payment_providers.conftest import AGS_NEU_ANSPACH, control, order, provider

PID = "0123456789abcdef0123456789abcdef"
VECTOR_SALT = "geheim-1234"
NOTIFY = f"https://bridge.example/webhooks/payments/pmpayment?payment={PID}"
RETURN = f"https://bridge.example/pay/NA-2026-000123/return?payment={PID}"


def pm_options(base_url: str, **extra: Any) -> dict[str, Any]:
    """pmpayment options (procedure of the traffic order, salt by env var)."""
    return {
        "base_url": base_url,
        "procedure": "verkehrsanordnung",
        "salt_env": "PMPAYMENT_SALT",
        **extra,
    }


def test_init_hash_matches_the_fixed_vector() -> None:
    """The 8-field init hash, computed independently here and pinned as a literal."""
    pm = provider(
        pm_options("https://payment-test.govconnect.de", accounting_record="Gebuehr {reference}"),
        plugin="pmpayment",
        secrets={"PMPAYMENT_SALT": VECTOR_SALT},
    )
    assert isinstance(pm, PmPaymentProvider)
    form = pm.create_form(order(PID, notify_url=NOTIFY, return_url=RETURN))
    text = (
        f"06434007|3500|verkehrsanordnung|NA-2026-000123 Halteverbot|Gebuehr NA-2026-000123|"
        f"{PID}|{NOTIFY}|{RETURN}"
    )
    independent = hmac.new(VECTOR_SALT.encode(), text.encode(), hashlib.sha256).hexdigest()
    assert form["hash"] == independent
    assert form["hash"] == "a8fb8c459f9a43a8afe5149803acba91ee3214ec01806076845a051f482d7358"
    assert form == {
        "ags": "06434007",
        "amount": "3500",
        "procedure": "verkehrsanordnung",
        "desc": "NA-2026-000123 Halteverbot",
        "accountingRecord": "Gebuehr NA-2026-000123",
        "txid": PID,
        "notifyURL": NOTIFY,
        "redirectURL": RETURN,
        "hash": independent,
    }


def test_init_hash_leaves_out_fields_not_sent() -> None:
    """Without accountingRecord and txid the string has six fields (the efast form)."""
    form = {
        "ags": "06434007",
        "amount": "3500",
        "procedure": "verkehrsanordnung",
        "desc": "NA-2026-000123 Halteverbot",
        "notifyURL": "https://bridge.example/n",
        "redirectURL": "https://bridge.example/r",
    }
    text = "06434007|3500|verkehrsanordnung|NA-2026-000123 Halteverbot|https://bridge.example/n|https://bridge.example/r"
    assert init_hash_string(form) == text
    assert sign(VECTOR_SALT, text) == hmac.new(b"geheim-1234", text.encode(), "sha256").hexdigest()
    assert sign(VECTOR_SALT, text) == (
        "e96bd52bf6c9f919029f3097f428d86bbedd5646d8c8102802641b5bdffc4e06"
    )


def _signed_return(**override: str) -> dict[str, str]:
    query = {
        "payment": PID,
        "ags": "06434007",
        "txid": PID,
        "amount": "3500",
        "desc": "NA-2026-000123 Halteverbot",
        "status": "1",
        "payment_method": "giropay",
        "created_at": "2026-12-01 12:30:00",
    }
    query["hash"] = "999478ee25ce2773ec132032643a2e5a80923602f1dbcef69b24aef78e75379c"
    query.update(override)
    return query


def test_return_signature_vector_verifies_and_forgeries_do_not() -> None:
    """The pinned return signature verifies; a changed status, amount or hash is BadCallback."""
    pm = provider(
        pm_options("https://payment-test.govconnect.de"),
        plugin="pmpayment",
        secrets={"PMPAYMENT_SALT": VECTOR_SALT},
    )
    text = f"06434007|{PID}|3500|NA-2026-000123 Halteverbot|1|giropay|2026-12-01 12:30:00"
    assert _signed_return()["hash"] == sign(VECTOR_SALT, text)
    claim = pm.parse_return(_signed_return())
    assert (claim.payment_id, claim.transaction_id) == (PID, PID)
    assert (claim.status, claim.amount) == ("1", Decimal("35.00"))
    for forged in (
        _signed_return(amount="100"),
        _signed_return(status="0"),
        _signed_return(hash="0" * 64),
        _signed_return(hash=""),
        {k: v for k, v in _signed_return().items() if k != "hash"},
        _signed_return(payment="f" * 32),
    ):
        with pytest.raises(BadCallback):
            pm.parse_return(forged)


@pytest.fixture
def notify_sink() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    """A stand-in bridge webhook on loopback recording what it receives."""
    received: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the stand-in bridge's webhook
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers.items()), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", received
    server.shutdown()
    server.server_close()


def test_create_pay_notify_status_and_signed_return(
    simulator: DemoPayments, notify_sink: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    """The whole paypage round: create, the pay page, the notify form, the status call and
    the browser's signed return, all read back by the plugin."""
    sink, received = notify_sink
    pm = provider(pm_options(simulator.url), plugin="pmpayment", provider_id="pmpayment-na")
    fee = order(PID, notify_url=f"{sink}/webhooks/payments/pmpayment-na?payment={PID}")
    created = pm.create(fee)
    assert created.transaction_id == PID
    assert created.pay_url == f"{simulator.url}/payment/pay/{AGS_NEU_ANSPACH}/{PID}"
    assert pm.create(fee).transaction_id == PID
    assert control(simulator, "transactions", "GET")["count"] == 1

    open_ = pm.status(PID, created.transaction_id, municipality_ags=AGS_NEU_ANSPACH)
    assert (open_.status, open_.amount) == ("INITIAL", None)

    page = requests.get(created.pay_url, timeout=5)
    assert "35,00 EUR" in page.text
    paid = requests.post(
        created.pay_url, data={"action": "pay", "method": "paypal"}, allow_redirects=False,
        timeout=5,
    )  # fmt: skip
    assert paid.status_code == 303
    location = urlsplit(paid.headers["Location"])
    assert location.path == "/pay/NA-2026-000123/return"
    query = dict(parse_qsl(location.query))
    claim = pm.parse_return(query)
    assert (claim.payment_id, claim.status, claim.amount) == (PID, "1", Decimal("35.00"))

    [(headers, body)] = received
    notified = pm.parse_callback(headers, body, {"payment": PID})
    assert (notified.payment_id, notified.transaction_id) == (PID, PID)
    assert (notified.status, notified.amount) == ("1", Decimal("35.00"))

    # The status call by our own id (no transaction id stored) confirms it.
    confirmed = pm.status(PID, None, municipality_ags=AGS_NEU_ANSPACH)
    assert confirmed.status == "PAYED"
    assert confirmed.amount is None
    assert confirmed.at is not None


def test_cancel_gives_a_signed_unpaid_return_and_failed_status(simulator: DemoPayments) -> None:
    """Abbrechen: status=0 with empty payment_method (signed), the status call says 0."""
    pm = provider(pm_options(simulator.url), plugin="pmpayment")
    created = pm.create(order(PID))
    assert created.pay_url is not None
    back = requests.post(
        created.pay_url, data={"action": "cancel"}, allow_redirects=False, timeout=5
    )
    query = dict(parse_qsl(urlsplit(back.headers["Location"]).query, keep_blank_values=True))
    assert query["payment_method"] == ""
    claim = pm.parse_return(query)
    assert claim.status == "0"
    assert pm.status(PID, PID, municipality_ags=AGS_NEU_ANSPACH).status == "FAILED"
    assert control(simulator, "notifications", "GET")["count"] == 0


def test_wrong_salt_is_refused_by_the_provider(simulator: DemoPayments) -> None:
    """A salt the provider does not share: "ungültiger Hashwert", a refusal, nothing created."""
    pm = provider(
        pm_options(simulator.url), plugin="pmpayment", secrets={"PMPAYMENT_SALT": "falsch"}
    )
    with pytest.raises(ProviderRefused) as refused:
        pm.create(order(PID))
    assert refused.value.status_code == 400
    assert not isinstance(refused.value, UnknownTransaction)
    assert control(simulator, "transactions", "GET")["count"] == 0


def test_unknown_transaction_and_notify_from_elsewhere(simulator: DemoPayments) -> None:
    """404 on status is UnknownTransaction; a notify for another ags or procedure is refused."""
    pm = provider(pm_options(simulator.url, ags="06434011"), plugin="pmpayment")
    with pytest.raises(UnknownTransaction):
        pm.status(PID, PID)
    body = f"ags=06434007&txid={PID}&amount=3500&status=1&procedure=verkehrsanordnung".encode()
    with pytest.raises(BadCallback):
        pm.parse_callback({}, body, {})
    other = f"ags=06434011&txid={PID}&amount=3500&status=1&procedure=hundesteuer".encode()
    with pytest.raises(BadCallback):
        pm.parse_callback({}, other, {})
    with pytest.raises(BadCallback):
        pm.parse_callback({}, b"amount=3500", {})


def test_pmpayment_options() -> None:
    """Templates may only use known placeholders; ags is 8 digits; the salt is an env var."""
    base = {"base_url": "https://payment.govconnect.de", "procedure": "p", "salt_env": "SALT"}
    assert validate_provider_options("pmpayment", base)[1] == []
    _, problems = validate_provider_options(
        "pmpayment", {**base, "accounting_record": "{name}", "ags": "6434007"}
    )
    assert problems == [
        "accounting_record: unknown placeholder(s) name; known: ags, payment_id, reference",
        "ags: 8 digits",
    ]
    _, problems = validate_provider_options("pmpayment", {**base, "salt_env": "geheim"})
    assert problems == ["salt_env: must name an environment variable (A-Z, 0-9, _)"]


def test_the_simulator_refuses_a_desc_outside_sepa(simulator: DemoPayments) -> None:
    """A correctly hashed desc with an umlaut is refused (pmPayment's hash breaks on it);
    the plugin spells umlauts out, so its own init passes."""
    form = {
        "ags": "06434007",
        "amount": "3500",
        "procedure": "verkehrsanordnung",
        "desc": "Gebühr NA-2026-000123",
        "txid": PID,
        "notifyURL": NOTIFY,
        "redirectURL": RETURN,
    }
    form["hash"] = sign("demo-pmpayment-salt", init_hash_string(form))
    refused = requests.post(f"{simulator.url}/payment/secure", data=form, timeout=5)
    assert refused.status_code == 400
    assert "desc" in refused.json()["error"]
    pm = provider(pm_options(simulator.url), plugin="pmpayment")
    assert pm.create(order(PID, purpose="Gebühr NA-2026-000123")).transaction_id == PID
    assert simulator.ledger.all()[0].purpose == "Gebuehr NA-2026-000123"
