"""FIT-Connect end to end against the stand-in (demo_fitconnect), on SQLite and PostgreSQL.

The stand-in is a real HTTP server on loopback speaking the Submission API v2, the Routing API
and the token endpoint; its destination decrypts with its private key, checks the hashes and
accepts or rejects with a signed event. Delivered means accepted (ADR 15).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from jwcrypto import jwk
from sqlalchemy import select

from demo_fitconnect import FitConnectStandIn
from demo_fitconnect.crypto import make_set
from domain.accounts.accounts import create_account
from domain.accounts.api_tokens import create_token
from domain.accounts.passwords import ScryptParams
from domain.delivery.deliveries import claim_due, record_outcomes, replay
from domain.delivery.fit_connect import DELETED, poll_soon, remember_progress
from domain.settings import Settings
from harness.waiting import wait_for
from integrations.channels.envelopes import build_envelopes
from store.engine import Store
from store.models import Delivery, DeliveryStatus, Event
from tests.bridge.admin.browser import chromium, served
from tests.bridge.admin.conftest import SETUP
from tests.factories import PDF, dog, flatten
from tests.webhook_support import FilePart, multipart_body, post
from tests.worker.conftest import Processes, deliveries, replace_office
from worker.fit_connect_poll import poll_cases
from worker.jobs import WorkerContext, attempt

OFFICE = "usingen-steueramt"
CLIENT_ID = "bridge-usingen"
CLIENT_SECRET = "fit-connect-client-secret-of-the-test-0123456789"
DOG_LEIKA = "99102013104000"
SCHEMA_URI = "https://schema.fitko.de/fim/s00000092_1.0.schema.json"
ARS = ["064340011011", "064340007007"]  # Usingen, Neu-Anspach
CONTRACT = PDF + b"% Kaufvertrag Hund Bello\n"


@pytest.fixture
def standin() -> Iterator[FitConnectStandIn]:
    """The FIT-Connect stand-in with our client and a destination for the dog registration."""
    service = FitConnectStandIn(clients={CLIENT_ID: CLIENT_SECRET}).start()
    service.add_destination(leika=DOG_LEIKA, ars=ARS, schema_uri=SCHEMA_URI, name="Steueramt")
    yield service
    service.stop()


@pytest.fixture
def destination(standin: FitConnectStandIn) -> str:
    """The id of the stand-in's destination for the dog registration."""
    [found] = standin.state.destinations
    return str(found)


@pytest.fixture(params=["destination_id"])
def addressing(request: pytest.FixtureRequest) -> str:
    """How the office finds its destination: a fixed id, or the Routing API (LeiKa + ARS)."""
    return str(request.param)


def office_block(standin: FitConnectStandIn, destination: str, addressing: str) -> str:
    """The tax office as a FIT-Connect office of the routing configuration."""
    where = (
        f'destination_id = "{destination}"'
        if addressing == "destination_id"
        else f'routing_api_url = "{standin.routing_api_url}", '
        f'routing_signature_jwks_url = "{standin.routing_jwks_url}"'
    )
    return (
        f'[offices.{OFFICE}]\nname = "Steueramt Usingen (FIT-Connect)"\nmunicipality = "usingen"\n'
        'task_area = "tax"\nchannel = "fit-connect"\n'
        f'options = {{ token_url = "{standin.token_url}", '
        f'submission_api_url = "{standin.submission_api_url}", client_id = "{CLIENT_ID}", '
        f'client_secret_env = "BRIDGE_SECRET_FITCONNECT", {where}, poll_interval_s = 1, '
        f'trust_anchor_file = "{{anchor}}", connect_timeout_s = 2, read_timeout_s = 5 }}\n'
    )


@pytest.fixture
def environ(
    environ: dict[str, str],
    standin: FitConnectStandIn,
    destination: str,
    addressing: str,
    tmp_path: Path,
) -> dict[str, str]:
    """The tax office delivers through FIT-Connect; the stand-in's CA is the trust anchor."""
    anchor = tmp_path / "fit-connect-ca.pem"
    anchor.write_text(standin.ca_pem, encoding="utf-8")
    block = office_block(standin, destination, addressing).replace("{anchor}", str(anchor))
    path = Path(environ["BRIDGE_CONFIG"])
    path.write_text(
        replace_office(path.read_text(encoding="utf-8"), OFFICE, block), encoding="utf-8"
    )
    environ["BRIDGE_SECRET_FITCONNECT"] = CLIENT_SECRET
    return environ


def submit_dog(client: FlaskClient) -> dict[str, Any]:
    """A dog registration from Neu-Anspach with the purchase contract attached."""
    body, content_type = multipart_body(
        flatten(dog()), [FilePart("attachments", "kaufvertrag.pdf", "application/pdf", CONTRACT)]
    )
    answer = post(client, "dog-registration", body, content_type)
    assert answer.status_code == 202, answer.get_data(as_text=True)
    result: dict[str, Any] = answer.get_json()
    return result


def fit_deliveries(store: Store) -> list[Delivery]:
    """The deliveries to the FIT-Connect office."""
    return [d for d in deliveries(store) if d.office_id == OFFICE]


def events_of(store: Store, delivery_id: str) -> list[Event]:
    """The journal of one delivery, in order."""
    with store.read() as session:
        return list(
            session.scalars(
                select(Event).where(Event.delivery_id == delivery_id).order_by(Event.id)
            )
        )


def check_received(standin: FitConnectStandIn, destination: str, reference: str) -> None:
    """The destination decrypted data and attachment and found both hashes equal."""
    [received] = standin.received(destination)
    assert received["hashes_ok"] is True
    assert received["decision"] == "accept"
    data = json.loads(received["data"])
    assert data["dog"]["name"] == "Bello"
    assert list(received["attachments"].values()) == [CONTRACT]
    metadata = received["metadata"]
    assert metadata["additionalReferenceInfo"]["senderReference"] == reference
    assert metadata["publicServiceType"]["identifier"] == f"urn:de:fim:leika:leistung:{DOG_LEIKA}"
    structure = metadata["contentStructure"]
    assert structure["data"]["submissionSchema"]["schemaUri"] == SCHEMA_URI
    assert structure["data"]["hash"]["content"] == hashlib.sha512(received["data"]).hexdigest()
    [entry] = structure["attachments"]
    assert entry["hash"]["content"] == hashlib.sha512(CONTRACT).hexdigest()


@pytest.mark.parametrize("addressing", ["destination_id", "routing"], indirect=True)
def test_a_dog_registration_reaches_the_destination_and_ends_delivered_when_accepted(
    client: FlaskClient,
    store: Store,
    standin: FitConnectStandIn,
    destination: str,
    processes: Processes,
    addressing: str,
) -> None:
    """Worker and sweeper as processes: submitted, decrypted, accepted, journalled, shown."""
    processes.worker()
    processes.sweeper()
    answer = submit_dog(client)

    [delivery] = wait_for(
        lambda: [d for d in fit_deliveries(store) if d.status == DeliveryStatus.DELIVERED] or None,
        what="the destination's accept",
    )
    check_received(standin, destination, answer["reference"])
    [submission] = standin.submissions(destination)
    assert submission["status"] == "accepted"
    assert (delivery.fit_submission_id, delivery.fit_case_id) == (
        submission["submission_id"],
        submission["case_id"],
    )
    kinds = [(e.kind, e.detail.get("event")) for e in events_of(store, delivery.id)]
    assert ("delivery.submitted", None) in kinds
    assert ("fit_connect.event", "submit-submission") in kinds
    assert ("fit_connect.event", "accept-submission") in kinds
    assert kinds[-1] == ("delivery.delivered", None)


def deliver_now(settings: Settings, store: Store) -> list[str]:
    """One round of the worker's drain for the FIT-Connect office, in this process."""
    context = WorkerContext(settings)
    office = settings.config.offices[OFFICE]
    ids, lease = claim_due(store, OFFICE, 10, 60)
    envelopes = build_envelopes(settings, store, context.vault, ids)
    outcomes = [attempt(context, context.channel(office), office, e, lease) for e in envelopes]
    record_outcomes(store, outcomes, settings.retry_schedule, 0)
    context.store.dispose()
    return [o.error or "ok" for o in outcomes]


def look_now(settings: Settings, store: Store) -> int:
    """The sweeper's look at every waiting case's event log, due now (as after a callback)."""
    for d in fit_deliveries(store):
        if d.fit_case_id:
            poll_soon(store, d.fit_case_id)
    with requests.Session() as http:
        return poll_cases(settings, store, http)


def test_a_rejected_submission_fails_with_the_reason_and_a_replay_submits_anew(
    client: FlaskClient,
    store: Store,
    settings: Settings,
    standin: FitConnectStandIn,
    destination: str,
) -> None:
    """reject-submission: failed, the problems in German words; replay: a new submission."""
    standin.reject_next(destination, problem_type="schema-violation", instance="data")
    submit_dog(client)

    assert deliver_now(settings, store) == ["ok"]
    [waiting] = fit_deliveries(store)
    assert waiting.status == DeliveryStatus.AWAITING_ACCEPT
    assert look_now(settings, store) == 1

    [failed] = fit_deliveries(store)
    assert failed.status == DeliveryStatus.FAILED
    assert failed.last_error == (
        "Vom Zustellpunkt abgelehnt: Daten entsprechen nicht dem Schema (Fachdaten)"
    )
    assert (failed.fit_state or {})["outcome"] == "rejected"

    replay(store, [failed.id], "cli:test", "Schema korrigiert")
    assert deliver_now(settings, store) == ["ok"]
    look_now(settings, store)
    [delivered] = fit_deliveries(store)
    assert delivered.status == DeliveryStatus.DELIVERED
    statuses = [s["status"] for s in standin.submissions(destination)]
    assert statuses == ["rejected", "accepted"]


def test_a_forged_accept_is_refused_journalled_once_and_changes_nothing(
    client: FlaskClient,
    store: Store,
    settings: Settings,
    standin: FitConnectStandIn,
    destination: str,
) -> None:
    """An accept signed by another key, under the destination's kid: the case keeps waiting."""
    standin.lag_events(polls=1000)  # the real events stay hidden
    submit_dog(client)
    assert deliver_now(settings, store) == ["ok"]
    [waiting] = fit_deliveries(store)
    standin.lag_events()
    forger = jwk.JWK.generate(kty="RSA", size=2048)
    claims = {
        "jti": "forged-accept-1",
        "iss": destination,
        "iat": 1_700_000_000,
        "sub": f"submission:{waiting.fit_submission_id}",
        "txn": f"case:{waiting.fit_case_id}",
        "events": {"https://schema.fitko.de/fit-connect/events/accept-submission": {}},
    }
    header = {"alg": "PS512", "typ": "secevent+jwt", "kid": standin.signing_kid(destination)}
    from jwcrypto import jws

    token = jws.JWS(json.dumps(claims).encode())
    token.add_signature(forger, alg="PS512", protected=json.dumps(header))
    with standin.state.lock:
        standin.state.cases[str(waiting.fit_case_id)].clear()
    standin.state.append_event(str(waiting.fit_case_id), token.serialize(compact=True))

    for _ in range(2):
        look_now(settings, store)

    [still] = fit_deliveries(store)
    assert still.status == DeliveryStatus.AWAITING_ACCEPT
    refused = [
        e.detail for e in events_of(store, still.id) if e.kind == "fit_connect.event_refused"
    ]
    assert refused == [
        {
            "office": OFFICE,
            "key": "forged-accept-1",
            "event": "accept-submission",
            "issued_at": "2023-11-14T22:13:20+00:00",
            "reason": "Signatur ungültig",
        }
    ]


def test_a_submission_created_but_not_submitted_is_resumed_not_duplicated(
    client: FlaskClient,
    store: Store,
    settings: Settings,
    standin: FitConnectStandIn,
    destination: str,
) -> None:
    """The worker dies right after the submission id is committed: the next attempt resumes."""
    submit_dog(client)
    context = WorkerContext(settings)
    office = settings.config.offices[OFFICE]
    ids, lease = claim_due(store, OFFICE, 10, 60)
    [envelope] = build_envelopes(settings, store, context.vault, ids)

    class Crash(Exception):
        """The worker process dies here."""

    def crash_after_commit(state: Any) -> bool:
        remember_progress(store, envelope.delivery_id, lease, state)
        raise Crash

    with pytest.raises(Crash):
        context.channel(office).deliver_tracked(envelope, context.http, crash_after_commit)
    context.store.dispose()
    [created] = standin.submissions(destination)
    assert created["status"] == "incomplete"
    # The lease runs out (a crashed worker's does); the sweeper would wake the office.
    with store.session() as session:
        session.get(Delivery, envelope.delivery_id).lease_until = None  # type: ignore[union-attr]  # the row exists

    assert deliver_now(settings, store) == ["ok"]
    [resumed] = standin.submissions(destination)
    assert resumed["submission_id"] == created["submission_id"]
    assert resumed["status"] == "accepted"
    assert resumed["uploaded"] == resumed["announced"]


def test_the_token_is_renewed_after_a_401_and_a_503_is_retried(
    client: FlaskClient,
    store: Store,
    settings: Settings,
    standin: FitConnectStandIn,
    destination: str,
) -> None:
    """The service forgets our token: one 401, a new token, on. A 503: retried later."""
    submit_dog(client)
    assert deliver_now(settings, store) == ["ok"]
    with standin.state.lock:
        standin.state.tokens.clear()  # e.g. the token service restarted
    submit_dog(client)
    assert deliver_now(settings, store) == ["ok"]
    assert len(standin.state.tokens) == 1

    standin.fail_submission_api(count=1, status=503)
    submit_dog(client)
    assert deliver_now(settings, store) == [
        "Zustellpunkt: HTTP 503 Service Unavailable (service-unavailable)"
    ]
    wait_for(lambda: deliver_now(settings, store) == ["ok"], what="the retry after the 503")
    assert [s["status"] for s in standin.submissions(destination)] == ["accepted"] * 3


def test_the_case_page_and_the_status_api_show_the_fit_connect_case_and_its_event_log(
    app: Flask,
    client: FlaskClient,
    store: Store,
    settings: Settings,
    standin: FitConnectStandIn,
    destination: str,
) -> None:
    """A rejected case in Chromium: the FIT-Connect case id, the verified events in German,
    the problem in words; the status API names the case id and the events."""
    standin.reject_next(destination, problem_type="schema-violation", instance="data")
    reference = submit_dog(client)["reference"]
    assert deliver_now(settings, store) == ["ok"]
    look_now(settings, store)
    [failed] = fit_deliveries(store)
    create_account(
        store,
        "olga",
        "Sachbearbeitung-Steueramt-7",
        "operator",
        actor=SETUP,
        kdf=ScryptParams(n=2**14),
    )
    _, token = create_token(store, "status-reader", "viewer", expires_at=None, actor=SETUP)

    status = client.get(
        f"/api/v1/submissions/{reference}", headers={"Authorization": f"Bearer {token}"}
    ).get_json()
    [view] = [d for d in status["deliveries"] if d["office"] == OFFICE]
    assert view["fit_connect_case_id"] == failed.fit_case_id
    assert view["status"] == "failed"
    logged = [h["detail"]["event"] for h in status["history"] if h["kind"] == "fit_connect.event"]
    assert logged == ["submit-submission", "reject-submission"]

    with served(app) as base, chromium() as browser:
        page = browser.new_context(locale="de-DE").new_page()
        page.goto(base + "/admin/login")
        page.get_by_label("Benutzername").fill("olga")
        page.get_by_label("Passwort").fill("Sachbearbeitung-Steueramt-7")
        page.get_by_label("Passwort").press("Enter")
        page.wait_for_url(base + "/admin/")
        page.goto(f"{base}/admin/antraege/{reference}")
        deliveries = page.locator("section[aria-labelledby=h-deliveries] tbody").inner_text()
        timeline = page.locator("ol.timeline").inner_text()
    assert f"FIT-Connect-Vorgang {failed.fit_case_id}" in deliveries
    assert "Vom Zustellpunkt abgelehnt: Daten entsprechen nicht dem Schema" in deliveries
    assert "Über FIT-Connect eingereicht, wartet auf Annahme durch die Stelle" in timeline
    assert "Meldung: Einreichung vollständig übermittelt" in timeline
    assert "Meldung: Von der Stelle abgelehnt" in timeline
    assert "Problem: Daten entsprechen nicht dem Schema (Fachdaten)" in timeline
    assert "reject-submission" not in timeline


def test_a_submission_the_service_deleted_fails_and_a_replay_submits_anew(
    client: FlaskClient,
    store: Store,
    settings: Settings,
    standin: FitConnectStandIn,
    destination: str,
) -> None:
    """A verified delete-submission (signed by the Submission API) ends the wait as failed."""
    standin.lag_events(polls=1000)  # the destination's accept stays hidden
    submit_dog(client)
    assert deliver_now(settings, store) == ["ok"]
    [waiting] = fit_deliveries(store)
    standin.lag_events()
    with standin.state.lock:
        standin.state.cases[str(waiting.fit_case_id)].clear()
    standin.state.append_event(
        str(waiting.fit_case_id),
        make_set(
            standin.service_key,
            standin.submission_api_url,
            "delete-submission",
            str(waiting.fit_submission_id),
            str(waiting.fit_case_id),
            {},
        ),
    )

    look_now(settings, store)

    [failed] = fit_deliveries(store)
    assert failed.status == DeliveryStatus.FAILED
    assert failed.last_error == DELETED
    replay(store, [failed.id], "cli:test", "erneut")
    assert deliver_now(settings, store) == ["ok"]
    assert len(standin.submissions(destination)) == 2
