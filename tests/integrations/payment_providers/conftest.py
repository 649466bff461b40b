"""Fixtures: the provider simulator as a real server on loopback, and providers pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests

from demo_payments import DemoPayments, SimulatorConfig
from demo_payments.config import (
    DEMO_BASIC_PASSWORD,
    DEMO_BASIC_USER,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_PMPAYMENT_SALT,
)
from integrations.payment_providers import PaymentOrder, PaymentProvider, build_provider
from integrations.payment_providers.oauth2 import tokens

#: The secrets the providers' `*_env` options name, as Settings.secrets would hold them.
SECRETS = {
    "EPAY_PASSWORD": DEMO_BASIC_PASSWORD,
    "GOVCONNECT_CLIENT_SECRET": DEMO_CLIENT_SECRET,
    "PMPAYMENT_SALT": DEMO_PMPAYMENT_SALT,
}
AGS_NEU_ANSPACH = "06434007"


@pytest.fixture(autouse=True)
def _fresh_tokens() -> Iterator[None]:
    """Every test starts without cached OAuth2 tokens (the cache is process-wide)."""
    tokens.clear()
    yield
    tokens.clear()


@pytest.fixture
def start_simulator() -> Iterator[Callable[..., DemoPayments]]:
    """Start simulators with a given configuration; all are stopped after the test."""
    started: list[DemoPayments] = []

    def start(**config: Any) -> DemoPayments:
        demo = DemoPayments(config=SimulatorConfig(**config)).start()
        started.append(demo)
        return demo

    yield start
    for demo in started:
        demo.stop()


@pytest.fixture
def simulator(start_simulator: Callable[..., DemoPayments]) -> DemoPayments:
    """A simulator with the default configuration (Basic or OAuth2 accepted)."""
    return start_simulator()


def basic_options(demo: DemoPayments, **extra: Any) -> dict[str, Any]:
    """xbezahldienste options with Basic auth (epay21 style) against `demo`."""
    return {
        "base_url": demo.xbezahldienste_url,
        "originator_id": "formcycle-bridge",
        "auth": "basic",
        "username": DEMO_BASIC_USER,
        "password_env": "EPAY_PASSWORD",
        **extra,
    }


def oauth2_options(demo: DemoPayments, **extra: Any) -> dict[str, Any]:
    """xbezahldienste options with OAuth2 client credentials (pmPayment/GovConnect style)."""
    return {
        "base_url": demo.xbezahldienste_url,
        "originator_id": "formcycle-bridge",
        "auth": "oauth2",
        "token_url": demo.token_url,
        "client_id": DEMO_CLIENT_ID,
        "client_secret_env": "GOVCONNECT_CLIENT_SECRET",
        **extra,
    }


def provider(
    options: dict[str, Any],
    plugin: str = "xbezahldienste",
    secrets: dict[str, str] | None = None,
    provider_id: str = "epay21",
) -> PaymentProvider:
    """A provider built the way the payment flow builds it."""
    return build_provider(provider_id, plugin, options, SECRETS if secrets is None else secrets)


def order(payment_id: str = "0" * 31 + "1", **extra: Any) -> PaymentOrder:
    """The traffic order's 35 EUR fee for a citizen of Neu-Anspach."""
    values: dict[str, Any] = {
        "payment_id": payment_id,
        "reference": "NA-2026-000123",
        "amount": Decimal("35.00"),
        "currency": "EUR",
        "purpose": "NA-2026-000123 Halteverbot",
        "description": "Verkehrsrechtliche Anordnung: Halteverbot für einen Umzug",
        "municipality_ags": AGS_NEU_ANSPACH,
        "return_url": f"http://127.0.0.1:9/pay/NA-2026-000123/return?payment={payment_id}",
        "notify_url": f"http://127.0.0.1:9/webhooks/payments/epay21?payment={payment_id}",
    }
    values.update(extra)
    return PaymentOrder(**values)


def control(demo: DemoPayments, action: str, method: str = "POST") -> Any:
    """Call one of the simulator's `/_control/` hooks; its JSON answer."""
    response = requests.request(method, f"{demo.url}/_control/{action}", timeout=5)
    assert response.status_code < 500, response.text
    return response.json()
