"""Every channel says which schema version it sends: the XML document, the mail and the inbox.

As in test_schema_versions_e2e, the dog registration runs on the test-only dog-registration@2
(`dog.tattoo_number` added) and the tax office is pinned to version 1; here the tax office
takes XML or pulls from its inbox, and the public-order office (on @2) gets mail.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from lxml import etree

from demo_backoffice import DemoBackOffice
from harness.waiting import wait_for
from integrations.channels.xml import NS
from schemas import SCHEMAS, ServiceSchema, ValidationOptions
from store.engine import Store
from store.models import DeliveryStatus
from tests.factories import dog
from tests.schema_versions import dog_v2_registered  # noqa: F401 - the fixture, found by name
from tests.worker.conftest import Processes, deliveries, replace_office, submit

TAX = "usingen-steueramt"
PUBLIC_ORDER = "neu-anspach-ordnungsamt"
TATTOO = "T-4711"
INBOX_TOKEN = "inbox-token-of-the-steueramt-0123456789"
PIN = "schema_versions = { dog-registration = 1 }\n"


@pytest.fixture
def tax_channel() -> str:
    """The tax office's channel and options (tests parametrize it)."""
    return "xml"


@pytest.fixture
def environ(
    environ: dict[str, str],
    backoffice: DemoBackOffice,
    tax_channel: str,
    dog_v2_registered: ServiceSchema,  # noqa: F811 - the imported fixture, requested by name
) -> dict[str, str]:
    """Service on @2; the tax office on @1 through `tax_channel`; public order by mail on @2."""
    path = Path(environ["BRIDGE_CONFIG"])
    text = path.read_text(encoding="utf-8")
    text = text.replace('schema = "dog-registration@1"', 'schema = "dog-registration@2"')
    options = (
        'options = { token_env = "BRIDGE_SECRET_STEUERAMT_INBOX" }'
        if tax_channel == "inbox"
        else f'options = {{ url = "{backoffice.case_url(TAX)}", '
        'signing_secret_env = "BRIDGE_SECRET_OFFICE_SIGNING", read_timeout_s = 2 }'
    )
    text = replace_office(
        text,
        TAX,
        f'[offices.{TAX}]\nname = "Steueramt Usingen"\nmunicipality = "usingen"\n'
        f'task_area = "tax"\nchannel = "{tax_channel}"\n{PIN}{options}\n',
    )
    text = replace_office(
        text,
        PUBLIC_ORDER,
        f'[offices.{PUBLIC_ORDER}]\nname = "Ordnungsamt Neu-Anspach"\n'
        'municipality = "neu-anspach"\ntask_area = "public-order"\nchannel = "email"\n'
        f'options = {{ host = "127.0.0.1", port = {backoffice.smtp_port}, tls = "insecure", '
        f'sender = "antraege@bridge.test", to = "{PUBLIC_ORDER}@backoffice.test" }}\n',
    )
    path.write_text(text, encoding="utf-8")
    environ["BRIDGE_SECRET_STEUERAMT_INBOX"] = INBOX_TOKEN
    return environ


def _dangerous_dog(client: FlaskClient) -> dict[str, str]:
    """Submit a Rottweiler with a tattoo number; the delivery id per office."""
    answer = submit(
        client, "dog-registration", dog({"dog.breed": "Rottweiler", "dog.tattoo_number": TATTOO})
    )
    return {d["office"]: d["id"] for d in answer["deliveries"]}


def test_xml_names_version_1_and_mail_version_2(
    client: FlaskClient, store: Store, backoffice: DemoBackOffice, processes: Processes
) -> None:
    """The pinned office's XML (valid against the XSD, or the demo had refused it) says @1 and
    has no tattoo number; the mail says @2 in a header and the summary, and shows it."""
    processes.python("worker-v2", ["tests.schema_versions", "worker", "work"])
    ids = _dangerous_dog(client)
    wait_for(
        lambda: [d.status for d in deliveries(store)] == [DeliveryStatus.DELIVERED] * 2,
        what="both deliveries",
    )

    [case] = backoffice.cases(TAX)
    assert case["format"] == "xml"
    root = etree.fromstring(backoffice.document(TAX, ids[TAX]).encode())
    ns = {"bc": NS}
    assert root.findtext("bc:metadata/bc:service/bc:schema", namespaces=ns) == (
        "dog-registration@1"
    )
    dog_element = root.find("bc:data/dog", namespaces=ns)
    assert dog_element is not None
    assert dog_element.findtext("breed") == "Rottweiler"
    assert dog_element.find("tattoo_number") is None

    mail = backoffice.document(PUBLIC_ORDER, ids[PUBLIC_ORDER])
    assert mail["schema"] == "dog-registration@2"
    assert "Datenschema:    dog-registration@2\n" in mail["text"]
    assert f"Tätowiernummer: {TATTOO}" in mail["text"]


@pytest.mark.parametrize("tax_channel", ["inbox"])
def test_inbox_hands_out_the_pinned_version(client: FlaskClient, tax_channel: str) -> None:
    """The pull API builds the same envelope: version 1, valid against version 1's schema."""
    ids = _dangerous_dog(client)
    response = client.get(
        f"/api/v1/inbox/{TAX}/cases", headers={"Authorization": f"Bearer {INBOX_TOKEN}"}
    )
    assert response.status_code == 200
    [case] = response.get_json()["cases"]
    assert case["delivery_id"] == ids[TAX]
    assert case["service"]["schema"] == "dog-registration@1"
    assert "tattoo_number" not in case["data"]["dog"]
    options = ValidationOptions(now=dt.datetime.now(dt.UTC), unknown="reject")
    SCHEMAS.get("dog-registration@1").validate(case["data"], options)
