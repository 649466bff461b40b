"""Field sanitising: any input gives values the standard's patterns and lengths accept."""

from __future__ import annotations

import json
import re
import uuid
from decimal import Decimal

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from demo_payments import DemoPayments
from integrations.payment_providers.common import (
    sanitize_description,
    sanitize_purpose,
    sanitize_request_id,
)
from integrations.payment_providers.pmpayment import sanitize_desc
from integrations.payment_providers.xbezahldienste import XBezahldiensteProvider
from tests.integrations.payment_providers.conftest import basic_options, order, provider

# The standard's patterns as JSON Schema reads them (ASCII \w, \d, \s), written out here and
# not imported, so a wrong pattern in the code cannot make its own test pass.
PURPOSE = re.compile(r"^[\w\d\s-]+$", re.ASCII)
REQUEST_ID = re.compile(r"^[\w\d-]+$", re.ASCII)
DESCRIPTION = re.compile(r"^[\w\d\s\-,\.\u00C0-\u017F]+$", re.ASCII)
SEPA = re.compile(r"^[A-Za-z0-9 ':?,\-(+.)/]+$")


@given(st.text())
def test_purpose_always_matches_the_standard(text: str) -> None:
    """Whatever the purpose template produced: <= 27 characters of the pattern, never empty."""
    purpose = sanitize_purpose(text)
    assert len(purpose) <= 27
    assert PURPOSE.match(purpose)


@given(st.text())
def test_description_always_matches_the_standard(text: str) -> None:
    """Descriptions: <= 250 of the pattern (Latin letters with accents kept)."""
    description = sanitize_description(text, fallback="NA-2026-000123")
    assert len(description) <= 250
    assert DESCRIPTION.match(description)


@given(st.text(min_size=1).filter(lambda t: re.search(r"[A-Za-z0-9_-]", t) is not None))
def test_request_id_always_matches_the_standard(text: str) -> None:
    """requestId: <= 36 of [\\w\\d-]; any input with an allowed character gives one."""
    request_id = sanitize_request_id(text)
    assert len(request_id) <= 36
    assert REQUEST_ID.match(request_id)


@given(st.text())
def test_pmpayment_desc_is_sepa(text: str) -> None:
    """pmPayment's desc: SEPA characters only (others break its hash), <= 27."""
    desc = sanitize_desc(text, "NA-2026-000123")
    assert len(desc) <= 27
    assert SEPA.match(desc)


def test_known_cases() -> None:
    """What the cash office reads: umlauts spelled out, separators dropped, cut at 27."""
    assert sanitize_purpose("NA-2026-000123 Halteverbot / Umzug") == "NA-2026-000123 Halteverbot"
    assert sanitize_purpose("Gebühr: Straße") == "Gebuehr Strasse"
    assert sanitize_purpose("///") == "Gebuehr"
    assert sanitize_description("Anordnung: Halteverbot für Umzug", "x") == (
        "Anordnung Halteverbot für Umzug"
    )
    assert sanitize_request_id("0123456789abcdef0123456789abcdef") == (
        "0123456789abcdef0123456789abcdef"
    )
    with pytest.raises(ValueError, match="requestId"):
        sanitize_request_id("///")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(purpose=st.text(max_size=80), description=st.text(max_size=300))
def test_the_simulator_accepts_every_sanitised_body(
    simulator: DemoPayments, purpose: str, description: str
) -> None:
    """The simulator checks the standard's rules independently: every body we build passes."""
    epay = provider(basic_options(simulator))
    assert isinstance(epay, XBezahldiensteProvider)
    # A fresh requestId per example: the simulator refuses a repeated one (PAYMENT_EXISTS).
    fresh = order(payment_id=uuid.uuid4().hex, purpose=purpose, description=description)
    body = epay.create_body(fresh)
    response = requests.post(
        f"{simulator.xbezahldienste_url}/paymenttransaction/formcycle-bridge/06434007",
        data=body,
        auth=("bridge-demo", "demo-basic-passwort"),
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert response.status_code in (200, 201), response.text


def test_the_simulator_refuses_bodies_against_the_rules(simulator: DemoPayments) -> None:
    """Unsanitised fields and a wrong total: problem+json with the functional code."""
    url = f"{simulator.xbezahldienste_url}/paymenttransaction/formcycle-bridge/06434007"
    auth = ("bridge-demo", "demo-basic-passwort")
    epay = provider(basic_options(simulator))
    assert isinstance(epay, XBezahldiensteProvider)
    good = json.loads(epay.create_body(order()), parse_float=Decimal)
    cases = [
        ({**good, "purpose": "NA/2026: Halteverbot"}, "VALIDATION_ERROR", "purpose"),
        ({**good, "purpose": "x" * 28}, "VALIDATION_ERROR", "purpose"),
        ({**good, "requestId": "a" * 37}, "VALIDATION_ERROR", "requestId"),
        ({**good, "grosAmount": 1000000}, "VALIDATION_ERROR", "grosAmount"),
        ({**good, "items": []}, "VALIDATION_ERROR", "items"),
        ({**good, "grosAmount": 36}, "CALCULATION_ERROR", "grosAmount"),
    ]
    for body, code, field in cases:
        response = requests.post(
            url,
            data=json.dumps(body, default=float),
            auth=auth,
            headers={"Content-Type": "application/json"},
            timeout=5,
        )
        assert response.status_code == 400
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.json()["functionalCode"] == code
        assert field in response.json()["detail"]
    assert simulator.ledger.all() == []


@given(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999999.99"), places=2))
def test_amounts_go_out_exactly(amount: Decimal) -> None:
    """Every fee up to the standard's maximum is sent as exactly that number of euros."""
    epay = provider(
        {
            "base_url": "https://epay-qs.ekom21.de/xbezahldienste/api/v1.0.0",
            "originator_id": "formcycle-bridge",
            "auth": "basic",
            "username": "u",
            "password_env": "EPAY_PASSWORD",
        }
    )
    assert isinstance(epay, XBezahldiensteProvider)
    body = json.loads(epay.create_body(order(amount=amount)), parse_float=Decimal)
    assert Decimal(body["grosAmount"]) == amount
    assert Decimal(body["items"][0]["totalNetAmount"]) == amount
