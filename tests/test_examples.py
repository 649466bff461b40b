"""The sample submissions in examples/ (used by the README's curl lines) are accepted."""

from __future__ import annotations

import io
import re
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.conftest import FORMCYCLE_SECRET, ROOT

EXAMPLES = ROOT / "examples"
HEADERS = {"X-Bridge-Secret": FORMCYCLE_SECRET}
FORM = "application/x-www-form-urlencoded"


def _construction_parts() -> dict[str, Any]:
    """The `.fields` lines as form fields (curl's --form-string) plus the site plan PDF part."""
    lines = (EXAMPLES / "traffic-order-construction.fields").read_text(encoding="utf-8")
    data: dict[str, Any] = dict(line.split("=", 1) for line in filter(None, lines.splitlines()))
    data["site_plan"] = (
        io.BytesIO((EXAMPLES / "lageplan.pdf").read_bytes()),
        "lageplan.pdf",
        "application/pdf",
    )
    return data


def post_example(client: FlaskClient, name: str) -> TestResponse:
    """Post one example exactly as the README's curl line does."""
    if name == "traffic-order-construction":
        return client.post(
            "/webhooks/formcycle/traffic-order",
            data=_construction_parts(),
            headers=HEADERS,
            content_type="multipart/form-data",
        )
    service, _, kind = name.rpartition(".")
    return client.post(
        f"/webhooks/formcycle/{service}",
        data=(EXAMPLES / name).read_bytes().strip(),
        headers=HEADERS,
        content_type="application/json" if kind == "json" else FORM,
    )


def _accepted(response: TestResponse) -> dict[str, Any]:
    assert response.status_code == 202, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def test_dog_registration_form_example(client: FlaskClient) -> None:
    """examples/dog-registration.form, posted urlencoded as Formcycle does."""
    answer = _accepted(post_example(client, "dog-registration.form"))
    assert answer["reference"].startswith("NA-")


def test_traffic_order_json_example(client: FlaskClient) -> None:
    """examples/traffic-order.json, posted as JSON."""
    answer = _accepted(post_example(client, "traffic-order.json"))
    assert answer["municipality"]["name"] == "Usingen"


def test_traffic_order_form_example(client: FlaskClient) -> None:
    """examples/traffic-order.form, the JSON example as Formcycle's urlencoded form posts it."""
    answer = _accepted(post_example(client, "traffic-order.form"))
    assert answer["municipality"]["name"] == "Usingen"


def test_construction_multipart_example(client: FlaskClient) -> None:
    """examples/traffic-order-construction.fields with the site plan PDF, as multipart."""
    answer = _accepted(post_example(client, "traffic-order-construction"))
    assert [d["office"] for d in answer["deliveries"]] == ["neu-anspach-ordnungsamt"]


def test_every_example_is_its_own_submission(client: FlaskClient) -> None:
    """Sent one after another as in the README, each example is a new case (own process id)."""
    names = (
        "dog-registration.form",
        "traffic-order.json",
        "traffic-order.form",
        "traffic-order-construction",
    )
    references = [_accepted(post_example(client, name))["reference"] for name in names]
    assert len(set(references)) == len(names)


def test_fee_is_announced_in_the_answer(client: FlaskClient) -> None:
    """A traffic order carries a fee: the 202 says how much, what for, its real status and
    where to pay; the case waits for the payment. A dog has none."""
    answer = _accepted(post_example(client, "traffic-order.json"))
    reference = answer["reference"]
    assert answer["status"] == "awaiting_payment"
    assert answer["payment"] == {
        "amount": "35.00",
        "currency": "EUR",
        "purpose": f"{reference} Halteverbot",
        "status": "INITIAL",
        "paid": False,
        "before_delivery": True,
        "url": answer["payment"]["url"],
        "transaction_reference": None,
        "paid_at": None,
    }
    # The pay link is a capability: the reference and a signed token (domain.payments.pay_links).
    assert re.fullmatch(
        rf"http://127\.0\.0\.1:8000/pay/{reference}\?token=\d+-[0-9a-f]{{64}}",
        answer["payment"]["url"],
    )
    assert "payment" not in _accepted(post_example(client, "dog-registration.form"))
