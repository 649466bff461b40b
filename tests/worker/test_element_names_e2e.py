"""End to end: a form that uses only the default element names, with no aliases configured,
is accepted and reaches the back office with the right nested data (schemas/element_names.py)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from urllib.parse import urlencode

import pytest
from flask.testing import FlaskClient

from demo_backoffice import DemoBackOffice
from harness.waiting import wait_for
from schemas.element_names import ELEMENT_NAME, element_name
from store.engine import Store
from tests.factories import PDF, PNG, dog, flatten, today, traffic
from tests.schemas.samples import DELETE
from tests.webhook_support import FORM, FilePart, multipart_body, post
from tests.worker.conftest import Processes, all_delivered

pytestmark = pytest.mark.usefixtures("processes")

BORN = today() - dt.timedelta(days=500)


@pytest.fixture
def environ(environ: dict[str, str]) -> dict[str, str]:
    """The delivery test configuration without any alias table: only default names are known."""
    path = Path(environ["BRIDGE_CONFIG"])
    text = path.read_text(encoding="utf-8")
    text, count = re.subn(r"\[services\.[a-z-]+\.aliases\]\n(?:[^\[\n].*\n|\n)*", "", text)
    assert count == 1, "the shipped configuration has one alias table"
    path.write_text(text, encoding="utf-8")
    return environ


def _as_elements(fields: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Dotted form keys renamed to their default element names (and checked to be legal)."""
    out = [(element_name(key), value) for key, value in fields]
    assert all(ELEMENT_NAME.fullmatch(name) for name, _ in out)
    return out


def test_dog_form_with_default_names_only_is_delivered_nested(
    client: FlaskClient, store: Store, backoffice: DemoBackOffice, processes: Processes
) -> None:
    """`keeperFirstName`, `keeperAddressPostalCode`, `dogMainBreeds0` ... arrive as nested data."""
    assert (
        client.application.extensions["bridge"].settings.config.services["dog-registration"].aliases
        == {}
    )
    payload = dog(
        {
            "keeper.first_name": "Erika",
            "dog.is_mixed_breed": True,
            "dog.breed": DELETE,
            "dog.sex": "Hündin",
            "dog.birth_date": BORN.strftime("%d.%m.%Y"),  # as the date picker shows it
        }
    )
    fields = _as_elements(flatten(payload))
    # A list of values: one element per item, by index (a repeated element works as well).
    fields += [("dogMainBreeds0", "Labrador Retriever"), ("dogMainBreeds1", "Pudel")]
    assert ("keeperAddressPostalCode", "61267") in fields
    processes.worker()
    response = post(
        client, "dog-registration", urlencode([*fields, ("process_id", "p-1")]).encode(), FORM
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    answer = response.get_json()
    assert answer["municipality"]["name"] == "Neu-Anspach"
    wait_for(lambda: all_delivered(store, 1), what="the delivery")
    [case] = backoffice.cases("usingen-steueramt")
    assert case["reference"] == answer["reference"]
    data = backoffice.document("usingen-steueramt", answer["deliveries"][0]["id"])["data"]
    assert data["keeper"]["first_name"] == "Erika"
    assert data["keeper"]["address"] == {
        "street": payload["keeper"]["address"]["street"],
        "house_number": payload["keeper"]["address"]["house_number"],
        "postal_code": "61267",
        "town": payload["keeper"]["address"]["town"],
        "country": "DE",
    }
    assert data["keeper"]["contact"]["email"] == payload["keeper"]["contact"]["email"]
    assert data["dog"]["main_breeds"] == ["Labrador Retriever", "Pudel"]
    assert data["dog"]["is_mixed_breed"] is True
    assert data["dog"]["sex"] == "female"
    assert data["dog"]["birth_date"] == BORN.isoformat()
    assert data["previous_keeper"]["address"]["postal_code"] == "61389"
    assert data["liability_insurance"]["policy_number"] == "HV-123456"
    assert data["tax_relief"] == {"requested": False}
    assert data["privacy_consent"] is True


def test_traffic_order_with_uploads_by_default_names_is_delivered(
    client: FlaskClient, store: Store, backoffice: DemoBackOffice, processes: Processes
) -> None:
    """A construction site posted as multipart: `sitePlan` and `attachments0` are file elements."""
    payload = traffic({"site_plan": DELETE}, reason="construction")
    fields = _as_elements(flatten(payload))
    assert ("constructionResponsiblePersonPhone", "0170 1234567") in fields
    files = [
        FilePart("sitePlan", "plan.pdf", "application/pdf", PDF),
        FilePart("attachments0", "foto.png", "image/png", PNG),
    ]
    body, content_type = multipart_body([*fields, ("process_id", "p-2")], files)
    processes.worker()
    response = post(client, "traffic-order", body, content_type)
    assert response.status_code == 202, response.get_data(as_text=True)
    answer = response.get_json()
    wait_for(lambda: all_delivered(store, 1), what="the delivery")
    [delivery] = answer["deliveries"]
    data = backoffice.document(delivery["office"], delivery["id"])["data"]
    assert data["construction"]["responsible_person"] == {
        "name": "Max Mustermann",
        "phone": "0170 1234567",
    }
    assert (
        data["applicant"]["person"]["address"]["postal_code"]
        == (payload["applicant"]["person"]["address"]["postal_code"])
    )
    assert data["location"]["postal_code"] == "61250"
    assert data["site_plan"]["content_type"] == "application/pdf"
    assert data["site_plan"]["size"] == len(PDF)
    assert [a["content_type"] for a in data["attachments"]] == ["image/png"]
