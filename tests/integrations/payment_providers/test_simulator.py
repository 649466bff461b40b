"""The simulator itself: its outage and timing controls, pay page, process, and layout."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal

import pytest
import requests

from demo_payments import DemoPayments, serve_in_thread
from harness.ports import free_port
from integrations.payment_providers import ProviderUnavailable
from integrations.payment_providers.xbezahldienste import XBezahldiensteProvider
from tests.conftest import ROOT
from tests.integrations.payment_providers.conftest import (
    basic_options,
    control,
    oauth2_options,
    order,
    provider,
)


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_server_errors_and_rate_limits_are_unavailable(
    simulator: DemoPayments, status: int
) -> None:
    """5xx and 429 answers are ProviderUnavailable with the status; the outage can be
    limited to a number of requests."""
    epay = provider(basic_options(simulator))
    control(simulator, f"down?count=1&status={status}")
    with pytest.raises(ProviderUnavailable) as down:
        epay.create(order())
    assert down.value.status_code == status
    assert epay.create(order()).status == "INITIAL"


def test_token_endpoint_down_is_unavailable(simulator: DemoPayments) -> None:
    """An OAuth2 provider whose token endpoint is down: ProviderUnavailable, no API call."""
    control(simulator, "down")
    with pytest.raises(ProviderUnavailable, match="OAuth2"):
        provider(oauth2_options(simulator)).create(order())
    control(simulator, "up")
    assert control(simulator, "tokens", "GET")["issued"] == 0


def test_a_slow_provider_times_out(simulator: DemoPayments) -> None:
    """An answer slower than timeout_s: ProviderUnavailable (Zeitüberschreitung)."""
    control(simulator, "slow?seconds=1")
    epay = provider(basic_options(simulator, timeout_s=0.2))
    with pytest.raises(ProviderUnavailable, match="Zeitüberschreitung"):
        epay.status("0" * 32, "XB1", municipality_ags="06434007")
    control(simulator, "up")


def test_dropped_notifications_are_recorded_not_sent(simulator: DemoPayments) -> None:
    """drop-notifications loses the notify (the reconciliation case) but still pays."""
    epay = provider(basic_options(simulator, send_notify_url=True))
    created = epay.create(order())
    control(simulator, "drop-notifications")
    assert control(simulator, f"pay/{created.transaction_id}")["status"] == "PAYED"
    [sent] = control(simulator, "notifications", "GET")["notifications"]
    assert sent["dropped"] is True
    assert sent["status_code"] is None
    control(simulator, "send-notifications")
    assert control(simulator, f"pay/{created.transaction_id}")["status"] == "PAYED"
    assert control(simulator, "notifications", "GET")["count"] == 1  # final: no second one


def test_set_amount_makes_the_status_report_another_amount(simulator: DemoPayments) -> None:
    """For amount-mismatch tests: the status call reports what the control set."""
    epay = provider(basic_options(simulator))
    created = epay.create(order())
    control(simulator, f"set-amount/{created.transaction_id}?amount=3.50")
    status = epay.status(order().payment_id, created.transaction_id, municipality_ags="06434007")
    assert status.amount == Decimal("3.50")


def test_unknown_transactions_on_pages_and_controls(simulator: DemoPayments) -> None:
    """Unknown ids: a German 404 page, a JSON 404 from the controls, never a 5xx."""
    page = requests.get(f"{simulator.xbezahldienste_url}/pay/XB404", timeout=5)
    assert page.status_code == 404
    assert "Zahlung unbekannt" in page.text
    assert requests.post(f"{simulator.url}/_control/pay/XB404", timeout=5).status_code == 404
    nowhere = requests.get(f"{simulator.url}/nirgends", timeout=5)
    assert nowhere.status_code == 404
    assert nowhere.headers["Content-Type"] == "application/problem+json"
    too_big = requests.post(
        f"{simulator.xbezahldienste_url}/paymenttransaction/o/e",
        data=b"x" * (1024 * 1024 + 1),
        auth=("bridge-demo", "demo-basic-passwort"),
        timeout=5,
    )
    assert too_big.status_code == 413


def test_pay_page_is_german_labelled_and_needs_no_javascript(simulator: DemoPayments) -> None:
    """The page: lang=de, amount and purpose shown, labelled methods, two submit buttons."""
    created = provider(basic_options(simulator)).create(order())
    assert created.pay_url is not None
    page = requests.get(created.pay_url, timeout=5).text
    assert '<html lang="de">' in page
    assert "<script" not in page
    assert "NA-2026-000123 Halteverbot" in page
    assert "35,00 EUR" in page
    assert page.count('<label><input type="radio" name="method"') == 4
    assert '<button type="submit" name="action" value="pay">Bezahlen</button>' in page
    assert '<button type="submit" name="action" value="cancel">Abbrechen</button>' in page
    control(simulator, f"pay/{created.transaction_id}")
    done = requests.get(created.pay_url, timeout=5).text
    assert "bereits abgeschlossen" in done
    # Paying a final transaction again changes nothing.
    again = requests.post(created.pay_url, data={"action": "cancel"}, timeout=5)
    assert again.status_code == 200
    assert control(simulator, "transactions", "GET")["transactions"][0]["status"] == "PAYED"


def test_serve_in_thread_gives_a_url_and_a_stop() -> None:
    """The fixture-friendly entry point: a URL answering at once, closed by stop()."""
    url, stop = serve_in_thread()
    try:
        assert requests.get(f"{url}/_control/transactions", timeout=5).json()["count"] == 0
    finally:
        stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/_control/transactions", timeout=2)


def test_python_m_demo_payments_runs_and_stops_on_sigterm() -> None:
    """The Procfile's `payments:` line: the module listens on --port and ends on SIGTERM."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "demo_payments", "--port", str(port)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                answer = requests.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the simulator did not start"
                time.sleep(0.1)
        assert "Demo-Bezahldienst" in answer.text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.stdout is not None
    assert "Demo-Bezahldienst läuft" in proc.stdout.read().decode()


def test_health_check_answers_and_needs_credentials(simulator: DemoPayments) -> None:
    """GET /status/{originatorId}/{endPointId}: up with credentials, refused without."""
    epay = provider(basic_options(simulator))
    assert isinstance(epay, XBezahldiensteProvider)  # health() is the plugin's, not the contract's
    assert epay.health("06434007") is True
    anonymous = requests.get(
        f"{simulator.xbezahldienste_url}/status/formcycle-bridge/06434007", timeout=5
    )
    assert anonymous.status_code == 401
    assert anonymous.headers["Content-Type"] == "application/problem+json"


def test_delayed_notifications_arrive_after_the_return(
    start_simulator: Callable[..., DemoPayments],
) -> None:
    """notify_delay_s sends the notification after the browser's redirect (reordering)."""
    demo = start_simulator(notify_delay_s=0.3)
    epay = provider(basic_options(demo, send_notify_url=True))
    created = epay.create(order(notify_url="http://127.0.0.1:9/notify"))
    assert created.pay_url is not None
    back = requests.post(created.pay_url, data={"action": "pay"}, allow_redirects=False, timeout=5)
    assert back.status_code == 303
    assert control(demo, "notifications", "GET")["count"] == 0
    deadline = time.monotonic() + 5
    while control(demo, "notifications", "GET")["count"] == 0:
        assert time.monotonic() < deadline, "the delayed notification never went out"
        time.sleep(0.05)
    [sent] = control(demo, "notifications", "GET")["notifications"]
    assert (sent["status"], sent["error"]) == ("PAYED", "ConnectionError")
