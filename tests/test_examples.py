"""The sample submissions in examples/ (used by the README's curl lines) are accepted."""

from __future__ import annotations

import io

from flask.testing import FlaskClient

from tests.conftest import FORMCYCLE_SECRET, ROOT

EXAMPLES = ROOT / "examples"
HEADERS = {"X-Bridge-Secret": FORMCYCLE_SECRET}


def test_dog_registration_form_example(client: FlaskClient) -> None:
    """examples/dog-registration.form, posted urlencoded as Formcycle does."""
    response = client.post(
        "/webhooks/formcycle/dog-registration",
        data=(EXAMPLES / "dog-registration.form").read_bytes().strip(),
        headers=HEADERS,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.get_json()["reference"].startswith("NA-")


def test_traffic_order_json_example(client: FlaskClient) -> None:
    """examples/traffic-order.json, posted as JSON."""
    response = client.post(
        "/webhooks/formcycle/traffic-order",
        data=(EXAMPLES / "traffic-order.json").read_bytes(),
        headers=HEADERS,
        content_type="application/json",
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.get_json()["municipality"]["name"] == "Usingen"


def test_construction_multipart_example(client: FlaskClient) -> None:
    """examples/traffic-order-construction.fields with the site plan PDF, as multipart."""
    lines = (EXAMPLES / "traffic-order-construction.fields").read_text(encoding="utf-8")
    data: dict[str, object] = {}
    for line in filter(None, lines.splitlines()):
        key, value = line.split("=", 1)
        data[key] = value
    data["site_plan"] = (
        io.BytesIO((EXAMPLES / "lageplan.pdf").read_bytes()),
        "lageplan.pdf",
        "application/pdf",
    )
    response = client.post(
        "/webhooks/formcycle/traffic-order",
        data=data,
        headers=HEADERS,
        content_type="multipart/form-data",
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    assert [d["office"] for d in response.get_json()["deliveries"]] == ["neu-anspach-ordnungsamt"]


def test_fee_is_announced_in_the_answer(client: FlaskClient) -> None:
    """A traffic order carries a fee: the 202 says how much and what for; a dog has none."""
    response = client.post(
        "/webhooks/formcycle/traffic-order",
        data=(EXAMPLES / "traffic-order.json").read_bytes(),
        headers=HEADERS,
        content_type="application/json",
    )
    assert response.get_json()["payment"] == {
        "amount": "35.00",
        "currency": "EUR",
        "purpose": "Verkehrsrechtliche Anordnung (Halteverbotszone)",
        "status": "due",
    }
    dog = client.post(
        "/webhooks/formcycle/dog-registration",
        data=(EXAMPLES / "dog-registration.form").read_bytes().strip(),
        headers=HEADERS,
        content_type="application/x-www-form-urlencoded",
    )
    assert "payment" not in dog.get_json()


def test_traffic_order_form_example(client: FlaskClient) -> None:
    """examples/traffic-order.form, the JSON example as Formcycle's urlencoded form posts it."""
    response = client.post(
        "/webhooks/formcycle/traffic-order",
        data=(EXAMPLES / "traffic-order.form").read_bytes().strip(),
        headers=HEADERS,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.get_json()["municipality"]["name"] == "Usingen"
