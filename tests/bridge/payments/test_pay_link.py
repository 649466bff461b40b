"""The pay link is a capability and a GET changes nothing (issue 18 item 3).

The provider is the demo simulator on a real loopback port; what it was asked to create is
counted there (`/_control/transactions`), not inferred from our own rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from flask.testing import FlaskClient
from sqlalchemy import select, update
from werkzeug.test import TestResponse

from bridge.payments.routes import MAX_PAY_FORM_BYTES
from demo_payments import DemoPayments
from domain.payments.pay_links import pay_token
from domain.settings import Settings
from store.engine import Store
from store.models import Delivery, Payment, Submission, utcnow
from tests.conftest import snapshot
from tests.factories import traffic
from tests.payment_support import form_of
from tests.worker.conftest import SHIPPED_CONFIG, submit

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
pytestmark = SQLITE_ONLY


@pytest.fixture
def simulator() -> Iterator[DemoPayments]:
    """The XBezahldienste simulator on a free loopback port."""
    demo = DemoPayments().start()
    yield demo
    demo.stop()


@pytest.fixture
def environ(environ: dict[str, str], tmp_path: Path, simulator: DemoPayments) -> dict[str, str]:
    """The shipped routing file with its provider pointed at the simulator."""
    text = SHIPPED_CONFIG.replace(
        "http://127.0.0.1:8091/xbezahldienste", simulator.xbezahldienste_url
    )
    path = tmp_path / "routing.toml"
    path.write_text(text, encoding="utf-8")
    environ["BRIDGE_CONFIG"] = str(path)
    return environ


def creates(simulator: DemoPayments) -> int:
    """How many create calls the provider received (repeats included)."""
    answer = requests.get(f"{simulator.url}/_control/transactions", timeout=5).json()
    return int(answer["counters"].get("creates", 0))


def local(url: str) -> str:
    """The path and query of one of our absolute links, for the test client."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def press(client: FlaskClient, url: str) -> TestResponse:
    """Open the pay page and press "Jetzt bezahlen" (the client keeps the page's cookie)."""
    page = client.get(local(url))
    assert page.status_code == 200, page.get_data(as_text=True)
    action, fields = form_of(page.get_data(as_text=True))
    return client.post(action, data=fields)


def signed(settings: Settings, reference: str, expires_at: dt.datetime) -> str:
    """A pay link for `reference` signed with the bridge's key, expiring at `expires_at`."""
    token = pay_token(reference, encryption_keys=settings.encryption_keys, expires_at=expires_at)
    return f"/pay/{reference}?token={token}"


def test_a_reference_alone_shows_where_the_new_link_is_and_creates_nothing(
    client: FlaskClient, store: Store, simulator: DemoPayments
) -> None:
    """GET /pay/<reference> (the old link): the same German 404 page for a real reference and
    an invented one, no amount, no Kassenzeichen, no transaction at the provider."""
    reference = submit(client, "traffic-order", traffic())["reference"]
    before = snapshot(store)
    real = client.get(f"/pay/{reference}")
    invented = client.get("/pay/US-2026-999999")
    assert real.status_code == invented.status_code == 404
    page = real.get_data(as_text=True)
    assert page == invented.get_data(as_text=True)
    assert "Dieser Link ist nicht mehr gültig" in page
    assert "Eingangsbestätigung" in page
    assert "Bestätigungs-E-Mail" in page
    assert reference not in page
    assert "35,00" not in page
    assert "Set-Cookie" not in real.headers
    assert creates(simulator) == 0
    assert snapshot(store) == before


def test_the_signed_link_shows_the_fee_and_creates_nothing(
    client: FlaskClient, store: Store, simulator: DemoPayments
) -> None:
    """GET with the token: amount, purpose, the "Jetzt bezahlen" form; twice, and still no
    transaction at the provider and no row changed."""
    answer = submit(client, "traffic-order", traffic())
    reference = answer["reference"]
    before = snapshot(store)
    for _ in range(2):
        response = client.get(local(answer["payment"]["url"]))
        assert response.status_code == 200
        page = response.get_data(as_text=True)
        assert "<h1>Gebühr bezahlen</h1>" in page
        assert '<span id="amount">35,00 €</span>' in page
        assert f"Verwendungszweck: {reference} Halteverbot" in page
        assert '<form method="post" action="/pay/' in page
        assert '<button type="submit" id="pay">Jetzt bezahlen</button>' in page
        assert "Kassenzeichen" not in page
        assert response.headers["Cache-Control"] == "no-store"
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        assert f"Path=/pay/{reference}" in cookie
    assert creates(simulator) == 0
    assert snapshot(store) == before


def test_pressing_pay_creates_one_transaction_and_a_second_press_reuses_it(
    client: FlaskClient, store: Store, simulator: DemoPayments
) -> None:
    """The POST of the form creates the transaction and sends the browser to the provider."""
    answer = submit(client, "traffic-order", traffic())
    first = press(client, answer["payment"]["url"])
    assert first.status_code == 303
    assert first.headers["Location"].startswith(f"{simulator.url}/xbezahldienste/pay/")
    assert creates(simulator) == 1
    second = press(client, answer["payment"]["url"])
    assert second.status_code == 303
    assert second.headers["Location"] == first.headers["Location"]
    assert creates(simulator) == 1
    with store.read() as session:
        [payment] = session.scalars(select(Payment)).all()
    assert payment.transaction_id is not None


def test_bad_and_expired_tokens_get_german_pages_and_create_nothing(
    client: FlaskClient, store: Store, simulator: DemoPayments, settings: Settings
) -> None:
    """A changed, foreign or malformed token: 403; a run-out one: 410; GET and POST alike."""
    answer = submit(client, "traffic-order", traffic())
    reference = answer["reference"]
    other = submit(client, "traffic-order", traffic())["reference"]
    url = local(answer["payment"]["url"])
    before = snapshot(store)
    tampered = url[:-1] + ("0" if url[-1] != "0" else "1")
    later = utcnow() + dt.timedelta(hours=1)
    invalid = [
        tampered,
        signed(settings, other, later).replace(other, reference, 1),
        f"/pay/{reference}?token=<script>alert(1)</script>",
        f"/pay/{reference}?token=",
    ]
    for path in invalid:
        response = client.get(path)
        assert response.status_code == 403, path
        page = response.get_data(as_text=True)
        assert "Dieser Link ist ungültig" in page
        assert "<script>" not in page
        assert "35,00" not in page
    expired = client.get(signed(settings, reference, utcnow() - dt.timedelta(seconds=1)))
    assert expired.status_code == 410
    assert "Dieser Link ist abgelaufen" in expired.get_data(as_text=True)
    token = tampered.split("token=", 1)[1]
    posted = client.post(f"/pay/{reference}", data={"token": token, "csrf_token": "0" * 64})
    assert posted.status_code == 403
    assert "Dieser Link ist ungültig" in posted.get_data(as_text=True)
    assert creates(simulator) == 0
    assert snapshot(store) == before


def test_the_pay_form_without_its_csrf_token_is_refused(
    client: FlaskClient, app: Any, store: Store, simulator: DemoPayments
) -> None:
    """The POST needs the cookie and the form's value, both of this link: otherwise 403, a
    German page, and nothing created (a forged cross-site form has neither)."""
    answer = submit(client, "traffic-order", traffic())
    other = submit(client, "traffic-order", traffic())
    reference = answer["reference"]
    page = client.get(local(answer["payment"]["url"]))
    action, fields = form_of(page.get_data(as_text=True))
    before = snapshot(store)
    _, other_fields = form_of(client.get(local(other["payment"]["url"])).get_data(as_text=True))
    stranger = app.test_client()  # a browser without the page's cookie
    attempts = [
        (client, {"token": fields["token"]}),
        (client, {**fields, "csrf_token": "0" * 64}),
        (client, {**fields, "csrf_token": other_fields["csrf_token"]}),
        (stranger, fields),
    ]
    for browser, data in attempts:
        response = browser.post(action, data=data)
        assert response.status_code == 403
        text = response.get_data(as_text=True)
        assert "Die Anfrage konnte nicht bestätigt werden" in text
        assert "Cookies" in text
    missing = client.post(action, data={"csrf_token": fields["csrf_token"]})
    assert missing.status_code == 404
    assert "Dieser Link ist nicht mehr gültig" in missing.get_data(as_text=True)
    assert creates(simulator) == 0
    assert snapshot(store) == before
    assert action == f"/pay/{reference}"


def test_the_return_page_shows_the_kassenzeichen_only_with_the_token(
    client: FlaskClient, store: Store, simulator: DemoPayments
) -> None:
    """Paid: with the token the page names the Kassenzeichen; with the payment id alone it
    says paid, with the amount, but not the Kassenzeichen."""
    answer = submit(client, "traffic-order", traffic())
    location = press(client, answer["payment"]["url"]).headers["Location"]
    txid = location.rsplit("/", 1)[1]
    paid = requests.post(f"{simulator.url}/_control/pay/{txid}", timeout=5)
    assert paid.status_code == 200
    with store.read() as session:
        [payment] = session.scalars(select(Payment)).all()
    base = f"/pay/{answer['reference']}/return?payment={payment.id}"
    bare = client.get(base).get_data(as_text=True)
    assert "Die Gebühr ist bezahlt" in bare
    assert "35,00 €" in bare
    assert "Kassenzeichen" not in bare
    token = answer["payment"]["url"].split("token=", 1)[1]
    full = client.get(f"{base}&token={token}").get_data(as_text=True)
    assert "Die Gebühr ist bezahlt" in full
    assert "Kassenzeichen: KZ-" in full


def test_a_withdrawn_case_says_so_and_creates_nothing(
    client: FlaskClient, store: Store, simulator: DemoPayments
) -> None:
    """A case cancelled before payment: the link says it was withdrawn; pressing the button of a
    page opened before creates nothing."""
    answer = submit(client, "traffic-order", traffic())
    url = local(answer["payment"]["url"])
    action, fields = form_of(client.get(url).get_data(as_text=True))
    with store.session() as session:
        session.execute(update(Delivery).values(status="cancelled"))
        session.execute(update(Payment).values(status="CANCELED"))
        session.execute(update(Submission).values(status="cancelled"))
    before = snapshot(store)
    shown = client.get(url)
    assert shown.status_code == 200
    page = shown.get_data(as_text=True)
    assert "Der Antrag wurde zurückgezogen" in page
    assert "Jetzt bezahlen" not in page
    pressed = client.post(action, data=fields)
    assert pressed.status_code == 200
    assert "Der Antrag wurde zurückgezogen" in pressed.get_data(as_text=True)
    assert creates(simulator) == 0
    assert snapshot(store) == before


def test_a_pay_form_larger_than_a_pay_form_is_refused_unread(
    client: FlaskClient, store: Store, simulator: DemoPayments
) -> None:
    """The button's form holds a token and a CSRF value; a body beyond MAX_PAY_FORM_BYTES is
    refused with a German 413 page before it is parsed, and nothing is created."""
    answer = submit(client, "traffic-order", traffic())
    action, fields = form_of(client.get(local(answer["payment"]["url"])).get_data(as_text=True))
    before = snapshot(store)
    padded = {**fields, "pad": "x" * MAX_PAY_FORM_BYTES}
    response = client.post(action, data=padded)
    assert response.status_code == 413
    assert "Die Anfrage ist zu groß" in response.get_data(as_text=True)
    assert creates(simulator) == 0
    assert snapshot(store) == before


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/pay/US-2026-000001/return/extra", 404),
        ("POST", "/pay/US-2026-000001/return", 405),
        ("PUT", "/pay/US-2026-000001", 405),
    ],
)
def test_a_wrong_address_or_method_under_pay_is_a_german_page(
    client: FlaskClient, store: Store, method: str, path: str, status: int
) -> None:
    """A citizen's browser that lands on a wrong pay address reads German, not a JSON problem;
    the status stays what HTTP says (405 keeps its Allow header) and nothing is stored."""
    before = snapshot(store)
    answer = client.open(path, method=method, headers={"Accept": "text/html"})
    assert answer.status_code == status
    assert answer.mimetype == "text/html"
    assert "Unter diesem Link ist keine Gebühr zu bezahlen." in answer.get_data(as_text=True)
    if status == 405:
        assert "GET" in answer.headers["Allow"]
    assert snapshot(store) == before
