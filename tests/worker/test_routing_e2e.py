"""End to end: a submission reaches every responsible office through real workers (IKZ routing)."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from demo_backoffice import DemoBackOffice
from harness.waiting import wait_for
from store.engine import Store
from tests.conftest import MakeToken, bearer
from tests.factories import dog, traffic
from tests.worker.conftest import Processes, all_delivered, deliveries, submit

pytestmark = pytest.mark.usefixtures("processes")


def test_neu_anspach_dog_reaches_usingen_tax_office(
    client: FlaskClient, store: Store, backoffice: DemoBackOffice, processes: Processes
) -> None:
    """A dog from Neu-Anspach goes to the joint tax office in Usingen, once, signed."""
    processes.worker()
    answer = submit(client, "dog-registration", dog())
    assert answer["municipality"] == {"name": "Neu-Anspach", "ags": "06434007"}
    assert [d["office"] for d in answer["deliveries"]] == ["usingen-steueramt"]
    wait_for(lambda: all_delivered(store, 1), what="the delivery")
    cases = backoffice.cases("usingen-steueramt")
    assert [c["reference"] for c in cases] == [answer["reference"]]
    assert cases[0]["signature_valid"] is True
    assert backoffice.cases("neu-anspach-ordnungsamt") == []
    document = backoffice.document("usingen-steueramt", answer["deliveries"][0]["id"])
    assert document["service"]["leika"] == "99102013104000"
    assert document["municipality"]["ags"] == "06434007"
    assert document["data"]["dog"]["microchip_number"] == "276098100123456"
    [delivery] = deliveries(store)
    assert delivery.case_number == cases[0]["case_number"]


def test_usingen_traffic_order_reaches_neu_anspach_public_order_office(
    client: FlaskClient, store: Store, backoffice: DemoBackOffice, processes: Processes
) -> None:
    """A no-parking zone in Usingen goes to the joint public-order office in Neu-Anspach."""
    processes.worker()
    answer = submit(client, "traffic-order", traffic())
    assert answer["municipality"]["name"] == "Usingen"
    assert answer["reference"].startswith("US-")
    wait_for(lambda: all_delivered(store, 1), what="the delivery")
    assert [c["reference"] for c in backoffice.cases("neu-anspach-ordnungsamt")] == [
        answer["reference"]
    ]
    assert backoffice.cases("usingen-steueramt") == []


def test_rottweiler_reaches_tax_and_public_order_offices(
    client: FlaskClient,
    store: Store,
    backoffice: DemoBackOffice,
    processes: Processes,
    api_token: MakeToken,
) -> None:
    """A dangerous breed (HundeVO §2) also needs the keeping permit: two offices, one submission."""
    processes.worker()
    answer = submit(client, "dog-registration", dog({"dog.breed": "Rottweiler-Mischling"}))
    assert sorted(d["office"] for d in answer["deliveries"]) == [
        "neu-anspach-ordnungsamt",
        "usingen-steueramt",
    ]
    wait_for(lambda: all_delivered(store, 2), what="both deliveries")
    for office in ("usingen-steueramt", "neu-anspach-ordnungsamt"):
        [case] = backoffice.cases(office)
        assert case["reference"] == answer["reference"]
    status = client.get(
        answer["links"]["status"],
        headers=bearer(api_token("viewer")),
    ).get_json()
    assert status["status"] == "delivered"
    assert status["flags"]["dangerous_dog"] is True


def test_metrics_count_submissions_deliveries_and_attempts(
    client: FlaskClient, store: Store, processes: Processes
) -> None:
    """/metrics shows webhook outcomes, deliveries by office and status, and attempt durations."""
    processes.worker()
    submit(client, "dog-registration", dog())
    rejected = client.post(
        "/webhooks/formcycle/dog-registration",
        json=dog({"dog.microchip_number": "123"}),
        headers={"X-Bridge-Secret": "formcycle-test-secret-0123456789abcdef"},
    )
    assert rejected.status_code == 422
    wait_for(lambda: all_delivered(store, 1), what="the delivery")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'bridge_submissions_total{outcome="accepted",service="dog-registration"} 1.0' in text
    assert 'bridge_submissions_total{outcome="422",service="dog-registration"} 1.0' in text
    assert 'bridge_deliveries{office="usingen-steueramt",status="delivered"} 1.0' in text
    assert (
        'bridge_delivery_attempts_total{office="usingen-steueramt",outcome="delivered"} 1.0' in text
    )
    assert 'bridge_delivery_attempt_duration_seconds_count{office="usingen-steueramt"} 1.0' in text
    assert "bridge_failed_deliveries 0.0" in text
    assert "bridge_queue_depth " in text
