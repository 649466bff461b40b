"""Is the office back? The side-effect-free checks against a real loopback back office, up and down."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from demo_backoffice import DemoBackOffice
from domain.config import Office
from harness.ports import free_port
from integrations.checks import office_problems
from integrations.reachability import Reach, ReachabilityMonitor, check_office
from tests.worker.conftest import backoffice  # noqa: F401 - the fixture, found by name


def _office(channel: str, **options: Any) -> Office:
    return Office("usingen-steueramt", "Steueramt Usingen", "usingen", "tax", channel, options)


@pytest.fixture
def silent() -> Iterator[str]:
    """An address that takes connections and never answers (a hanging office)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_an_office_up_and_down_by_connect_check(backoffice: DemoBackOffice) -> None:  # noqa: F811
    """Without a health URL the check connects to the url's host and port, and POSTs nothing."""
    office = _office("http-json", url=backoffice.case_url("usingen-steueramt"))
    up = check_office(office, 1.0)
    assert up.state == Reach.UP
    assert up.checked_at is not None
    assert backoffice.requests() == []  # a connect, not a request: no case was sent
    backoffice.stop()
    down = check_office(office, 1.0)
    assert down.state == Reach.DOWN
    assert down.detail == "Verbindung abgelehnt oder nicht möglich"


def test_the_health_url_decides_when_configured(backoffice: DemoBackOffice) -> None:  # noqa: F811
    """A 2xx from the health URL is up; any other answer is down, with the code in words."""
    healthy = _office("xml", url=backoffice.case_url("x"), health_url=backoffice.url + "/healthz")
    assert check_office(healthy, 1.0).state == Reach.UP
    assert backoffice.requests() == [("GET", "/healthz")]
    missing = _office("xml", url=backoffice.case_url("x"), health_url=backoffice.url + "/fehlt")
    answer = check_office(missing, 1.0)
    assert answer.state == Reach.DOWN
    assert answer.detail == "Die Statusadresse antwortet mit HTTP 404"


def test_mail_offices_are_checked_by_an_smtp_session(backoffice: DemoBackOffice) -> None:  # noqa: F811
    """E-mail: greeting and NOOP on the office's mail server, no mail; a closed port is down."""
    options = {"sender": "bruecke@example.org", "to": "amt@example.org", "tls": "insecure"}
    up = _office("email", host="127.0.0.1", port=backoffice.smtp_port, **options)
    assert check_office(up, 1.0).state == Reach.UP
    assert backoffice.cases() == []
    down = _office("email", host="127.0.0.1", port=free_port(), **options)
    assert check_office(down, 1.0).detail == "Der Mailserver ist nicht erreichbar"


def test_an_inbox_office_is_always_reachable() -> None:
    """A pull inbox fetches its cases itself: nothing to reach."""
    office = _office("inbox", token_env="BRIDGE_SECRET_INBOX")
    assert check_office(office, 1.0).state == Reach.PULL


def test_a_hanging_office_does_not_hold_the_page(silent: str) -> None:
    """Beyond the budget the page reads "still checking"; the result is kept once it is in."""
    office = _office("http-json", url=silent + "/cases", health_url=silent + "/health")
    monitor = ReachabilityMonitor(timeout_s=0.5, budget_s=0.05, ttl_s=60)
    try:
        assert monitor.check([office])[office.id].state == Reach.CHECKING
        monitor.budget_s = 5.0
        settled = monitor.check([office])[office.id]
        assert settled.state == Reach.DOWN
        assert settled.detail == "Keine Antwort (Zeitüberschreitung)"
        assert monitor.check([office])[office.id] is settled  # cached, not checked again
    finally:
        monitor.close()


def test_offices_are_checked_concurrently_within_one_budget(silent: str) -> None:
    """Three hanging offices, 0.5 s each: one after the other they would need 1.5 s, more than
    the budget of 1.4 s; checked side by side all three come back within it."""
    hanging = [
        Office(
            f"o{i}",
            f"Stelle {i}",
            "usingen",
            "tax",
            "http-json",
            {"url": silent + "/x", "health_url": silent + "/health"},
        )
        for i in range(3)
    ]
    monitor = ReachabilityMonitor(timeout_s=0.5, budget_s=1.4)
    try:
        results = monitor.check(hanging)
    finally:
        monitor.close()
    assert {r.detail for r in results.values()} == {"Keine Antwort (Zeitüberschreitung)"}


def test_a_health_url_must_be_an_http_address() -> None:
    """The new option is validated at start-up like every other channel option."""
    from domain.config import Config

    office = _office("http-json", url="http://127.0.0.1:1/cases", health_url="ftp://x/health")
    config = Config({}, {office.id: office}, {}, {}, {})
    problems = office_problems(config)
    assert problems
    assert problems[0].startswith("offices.usingen-steueramt.options.health_url")
