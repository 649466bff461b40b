"""End to end through the other channels: XML, e-mail and the pull inbox, chosen by configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from demo_backoffice import DemoBackOffice
from harness.waiting import wait_for
from infra.safexml import parse_xml
from store.engine import Store
from store.models import DeliveryStatus
from tests.factories import traffic
from tests.worker.conftest import Processes, deliveries, replace_office, submit

OFFICE = "neu-anspach-ordnungsamt"
INBOX_TOKEN = "inbox-token-of-the-ordnungsamt-0123456789"


@pytest.fixture(params=["xml", "email", "inbox"])
def channel(request: pytest.FixtureRequest) -> str:
    """Which channel the public-order office uses in this run."""
    return str(request.param)


@pytest.fixture
def environ(environ: dict[str, str], backoffice: DemoBackOffice, channel: str) -> dict[str, str]:
    """Point the public-order office at the demo back office through the chosen channel."""
    options = {
        "xml": f'channel = "xml"\noptions = {{ url = "{backoffice.case_url(OFFICE)}", '
        'signing_secret_env = "BRIDGE_SECRET_OFFICE_SIGNING", read_timeout_s = 2 }',
        # The demo's SMTP server on loopback speaks no TLS: plain SMTP by name.
        "email": f'channel = "email"\noptions = {{ host = "127.0.0.1", port = {backoffice.smtp_port}, '
        f'tls = "insecure", sender = "bruecke@usinger-land.test", to = "{OFFICE}@backoffice.test", timeout_s = 5 }}',
        "inbox": 'channel = "inbox"\noptions = { token_env = "BRIDGE_SECRET_ORDNUNGSAMT_INBOX" }',
    }[channel]
    block = (
        f'[offices.{OFFICE}]\nname = "Ordnungsamt Neu-Anspach"\nmunicipality = "neu-anspach"\n'
        f'task_area = "public-order"\n{options}\n'
    )
    path = Path(environ["BRIDGE_CONFIG"])
    path.write_text(
        replace_office(path.read_text(encoding="utf-8"), OFFICE, block), encoding="utf-8"
    )
    environ["BRIDGE_SECRET_ORDNUNGSAMT_INBOX"] = INBOX_TOKEN
    return environ


def test_traffic_order_through_channel(
    client: FlaskClient,
    store: Store,
    backoffice: DemoBackOffice,
    processes: Processes,
    channel: str,
) -> None:
    """The same case arrives in the office's chosen format, once."""
    processes.worker()
    processes.sweeper()
    answer = submit(client, "traffic-order", traffic())
    delivery_id = answer["deliveries"][0]["id"]
    if channel == "inbox":
        _pull_and_acknowledge(client, answer["reference"], delivery_id)
    wait_for(
        lambda: [d.status for d in deliveries(store)] == [DeliveryStatus.DELIVERED],
        what=f"delivery by {channel}",
    )
    if channel == "inbox":
        return
    [case] = backoffice.cases(OFFICE)
    assert (case["reference"], case["delivery_id"]) == (answer["reference"], delivery_id)
    assert case["format"] == channel
    if channel == "xml":
        document = parse_xml(backoffice.document(OFFICE, delivery_id).encode())
        assert answer["reference"] in document.itertext()


def _pull_and_acknowledge(client: FlaskClient, reference: str, delivery_id: str) -> None:
    """An office behind a firewall lists its cases with its own token and acknowledges one."""
    url = f"/api/v1/inbox/{OFFICE}/cases"
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
    auth = {"Authorization": f"Bearer {INBOX_TOKEN}"}
    cases = client.get(url, headers=auth).get_json()["cases"]
    assert [(c["reference"], c["delivery_id"]) for c in cases] == [(reference, delivery_id)]
    assert cases[0]["data"]["reason"] == "move"
    # Not acknowledged: still pending, still listed.
    assert len(client.get(url, headers=auth).get_json()["cases"]) == 1
    ack = client.post(f"{url}/{delivery_id}/ack", json={"case_number": "OA-7"}, headers=auth)
    assert ack.status_code == 200
    assert client.get(url, headers=auth).get_json()["cases"] == []
    again = client.post(f"{url}/{delivery_id}/ack", json={}, headers=auth)
    assert again.status_code == 200
    assert client.post(f"{url}/nonexistent/ack", headers=auth).status_code == 404
