"""The fit-connect channel against the stand-in: each failure ends as it must, and every event
of a case's log is verified (signature by the right key, iss, sub, txn, iat, the tags).

The stand-in is a real HTTP server on loopback; the channel talks to it as to FIT-Connect.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from demo_fitconnect import FitConnectStandIn
from demo_fitconnect.crypto import sign_jwt
from integrations.channels import DeliveryError, PermanentDeliveryError, Receipt
from integrations.channels.fit_connect import EVENTS, FitConnectChannel

from .factories import envelope

CLIENT_ID = "bridge-usingen"
SECRET = "fit-connect-secret-0123456789abcdef"
SCHEMA_URI = "https://schema.fitko.de/fim/s00000092_1.0.schema.json"


@pytest.fixture(scope="module")
def standin() -> Iterator[FitConnectStandIn]:
    """One stand-in for the module (its keys take a while to make); faults reset per test."""
    service = FitConnectStandIn(clients={CLIENT_ID: SECRET}).start()
    service.add_destination(
        leika="99102013104000", ars="064340011011", schema_uri=SCHEMA_URI, name="Steueramt"
    )
    yield service
    service.stop()


@pytest.fixture
def destination(standin: FitConnectStandIn) -> Iterator[str]:
    """The dog registration's destination; every fault is lifted afterwards."""
    [found] = standin.state.destinations
    yield str(found)
    standin.reset_faults()
    standin.token_up()
    standin.submission_api_up()


def channel(standin: FitConnectStandIn, secret: str = SECRET, **options: Any) -> FitConnectChannel:
    """A fit-connect channel of the tax office, pointed at the stand-in."""
    return FitConnectChannel(
        "usingen-steueramt",
        {
            "token_url": standin.token_url,
            "submission_api_url": standin.submission_api_url,
            "client_id": CLIENT_ID,
            "client_secret_env": "FIT_SECRET",
            "connect_timeout_s": 2,
            "read_timeout_s": 5,
            **options,
        },
        {"FIT_SECRET": secret},
    )


def submitted(standin: FitConnectStandIn, destination: str) -> tuple[Receipt, dict[str, Any]]:
    """Deliver one case; returns the receipt and the progress the channel recorded last."""
    kept: dict[str, Any] = {}

    def progress(state: Any) -> bool:
        kept.clear()
        kept.update(state)
        return True

    with requests.Session() as http:
        receipt = channel(standin, destination_id=destination).deliver_tracked(
            envelope(), http, progress
        )
    return receipt, kept


def test_an_unknown_destination_fails_for_good(
    standin: FitConnectStandIn, destination: str
) -> None:
    with requests.Session() as http, pytest.raises(PermanentDeliveryError) as failed:
        channel(standin, destination_id="00000000-0000-4000-8000-000000000000").deliver(
            envelope(), http
        )
    assert failed.value.message == (
        "Zustellpunkt: HTTP 404 Not Found (destination-not-found): nicht gefunden."
    )


def test_refused_credentials_fail_for_good_and_an_unreachable_token_service_is_retried(
    standin: FitConnectStandIn, destination: str
) -> None:
    with requests.Session() as http:
        with pytest.raises(PermanentDeliveryError, match="hat die Zugangsdaten abgelehnt"):
            channel(standin, secret="falsch", destination_id=destination).deliver(envelope(), http)
        standin.token_down(count=1)
        with pytest.raises(DeliveryError) as later:
            channel(standin, destination_id=destination)._token(http, renew=True)
    assert not isinstance(later.value, PermanentDeliveryError)
    assert later.value.status_code == 503


def test_an_inactive_destination_and_a_422_fail_for_good_a_429_is_retried_when_told(
    standin: FitConnectStandIn, destination: str
) -> None:
    standin.set_destination_status(destination, "inactive")
    with requests.Session() as http:
        with pytest.raises(PermanentDeliveryError, match="Der Zustellpunkt ist nicht aktiv"):
            channel(standin, destination_id=destination).deliver(envelope(), http)
        standin.set_destination_status(destination, "active")
        standin.fail_submission_api(count=1, status=422)
        with pytest.raises(PermanentDeliveryError) as invalid:
            channel(standin, destination_id=destination).deliver(envelope(), http)
        assert "weist die Einreichung als ungültig zurück" in invalid.value.message
        standin.fail_submission_api(count=1, status=429)
        with pytest.raises(DeliveryError) as busy:
            channel(standin, destination_id=destination).deliver(envelope(), http)
    assert not isinstance(busy.value, PermanentDeliveryError)
    assert (busy.value.status_code, busy.value.retry_after) == (429, 1.0)


def test_after_a_key_rotation_the_new_key_is_used(
    standin: FitConnectStandIn, destination: str
) -> None:
    old = standin.encryption_kid(destination)
    new = standin.rotate_key(destination)
    receipt, state = submitted(standin, destination)

    assert new != old
    assert receipt.awaiting_poll_s == 60.0
    assert standin.received(destination)[-1]["decision"] == "accept"
    assert standin.received(destination)[-1]["submission_id"] == state["submission_id"]


def test_a_key_removed_between_reading_the_destination_and_its_key_is_read_again(
    standin: FitConnectStandIn, destination: str
) -> None:
    """The destination rotates its key (the old one removed) just after the channel read the
    destination: the old kid answers 404, and the channel reads the destination again instead
    of failing the case for good (seen in the FIT-Connect chaos run)."""
    rotated: list[str] = []

    def rotate_once(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if (
            not rotated
            and response.request.method == "GET"
            and response.url.endswith(f"/destinations/{destination}")
        ):
            rotated.append(standin.rotate_key(destination, keep_old=False))

    with requests.Session() as http:
        http.hooks["response"].append(rotate_once)
        receipt = channel(standin, destination_id=destination).deliver(envelope(), http)

    assert rotated
    assert receipt.awaiting_poll_s == 60.0
    last = standin.received(destination)[-1]
    assert last["decision"] == "accept"
    assert last["hashes_ok"]


def test_the_genuine_event_log_verifies(standin: FitConnectStandIn, destination: str) -> None:
    _, state = submitted(standin, destination)
    with requests.Session() as http:
        events, gone = channel(standin, destination_id=destination).case_events(state, http)

    assert gone is None
    assert [(e.event, e.verified, e.reason) for e in events] == [
        ("submit-submission", True, None),
        ("accept-submission", True, None),
    ]


def test_the_service_keys_are_read_where_the_operator_says(
    standin: FitConnectStandIn, destination: str
) -> None:
    """`service_jwks_url` names where the Submission API publishes its event keys (v2 clients
    look under the API's base without its version); keys from elsewhere verify nothing."""
    _, state = submitted(standin, destination)
    base = standin.submission_api_url.rsplit("/", 1)[0]
    with requests.Session() as http:
        right = channel(
            standin, destination_id=destination, service_jwks_url=f"{base}/.well-known/jwks.json"
        ).case_events(state, http)[0]
        wrong = channel(
            standin, destination_id=destination, service_jwks_url=standin.routing_jwks_url
        ).case_events(state, http)[0]

    assert [(e.event, e.verified) for e in right] == [
        ("submit-submission", True),
        ("accept-submission", True),
    ]
    assert [(e.event, e.verified) for e in wrong] == [
        ("submit-submission", False),
        ("accept-submission", True),
    ]


def forged(
    standin: FitConnectStandIn, destination: str, state: dict[str, Any], **changes: Any
) -> str:
    """An accept signed with the destination's real key, with claims changed as given."""
    tags = {
        "metadata": state["tags"]["metadata"],
        "data": state["tags"]["data"],
        "attachments": state["tags"]["attachments"],
    }
    claims: dict[str, Any] = {
        "jti": "test-jti",
        "iss": destination,
        "iat": int(time.time()),
        "sub": f"submission:{state['submission_id']}",
        "txn": f"case:{state['case_id']}",
        "events": {EVENTS + "accept-submission": {"authenticationTags": tags}},
    }
    signer = standin.state.destinations[destination].signing
    for key, value in changes.items():
        if value is None:
            claims.pop(key)
        else:
            claims[key] = value
    return sign_jwt(signer, claims, typ="secevent+jwt")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({}, None),
        ({"iss": "https://anderer-zustelldienst.example.test"}, "Aussteller (iss) passt nicht"),
        ({"sub": "submission:00000000-0000-4000-8000-000000000000"}, "Betreff (sub) passt nicht"),
        ({"txn": "case:00000000-0000-4000-8000-000000000000"}, "Vorgang (txn) passt nicht"),
        (
            {"iat": int(time.time()) + 3600},
            "Ausstellungszeit (iat) fehlt oder liegt in der Zukunft",
        ),
        ({"iat": None}, "Ausstellungszeit (iat) fehlt oder liegt in der Zukunft"),
        (
            {"events": {EVENTS + "accept-submission": {"authenticationTags": {"data": "x"}}}},
            "Authentifizierungs-Tags passen nicht zur Einreichung",
        ),
        ({"events": {"https://example.test/events/accept": {}}}, "unbekanntes Ereignis"),
    ],
)
def test_events_whose_claims_do_not_fit_are_refused(
    standin: FitConnectStandIn,
    destination: str,
    changes: dict[str, Any],
    reason: str | None,
) -> None:
    _, state = submitted(standin, destination)
    token = forged(standin, destination, state, **changes)

    with requests.Session() as http:
        verdict = channel(standin, destination_id=destination).verify_event(token, state, http)

    assert (verdict.verified, verdict.reason) == (reason is None, reason)


def test_a_service_event_signed_by_the_destination_and_garbage_are_refused(
    standin: FitConnectStandIn, destination: str
) -> None:
    _, state = submitted(standin, destination)
    as_service = forged(
        standin,
        destination,
        state,
        iss=standin.submission_api_url,
        events={EVENTS + "submit-submission": {}},
    )
    fitconnect = channel(standin, destination_id=destination)

    with requests.Session() as http:
        service = fitconnect.verify_event(as_service, state, http)
        garbage = fitconnect.verify_event("not.a.token", state, http)
        unsigned = fitconnect.verify_event(
            as_service.rsplit(".", 1)[0] + ".c2lnbmF0dXJl", state, http
        )

    assert (service.verified, service.reason) == (False, "Signaturschlüssel unbekannt")
    assert (garbage.verified, garbage.reason) == (False, "kein lesbares Token")
    assert (unsigned.verified, unsigned.reason) == (False, "Signaturschlüssel unbekannt")


@pytest.mark.parametrize("status", [401, 403])
def test_access_refused_after_a_fresh_token_fails_for_good(
    standin: FitConnectStandIn, destination: str, status: int
) -> None:
    """A 401 gets one new token; a 401 again, or a 403, is no matter of retrying."""
    standin.fail_submission_api(count=2, status=status)
    with requests.Session() as http, pytest.raises(PermanentDeliveryError) as refused:
        channel(standin, destination_id=destination).deliver(envelope(), http)

    assert refused.value.status_code == status
    assert "FIT-Connect verweigert den Zugriff" in refused.value.message
    if status == 401:
        # Both the first try and the one with the renewed token reached the API.
        assert [r for r in standin.requests() if r[0] == "GET"][-2:] == [
            ("GET", f"{standin.submission_path}/destinations/{destination}")
        ] * 2
