"""The FIT-Connect stand-in itself: token, auth, the submission walk, SETs, routing, faults.

The sender side here is a few lines of jwcrypto (encrypt for the published key, verify the
published signatures), so what the bridge's channel meets is checked over real HTTP.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from jwcrypto import jwe, jwk, jws

from demo_fitconnect import FitConnectStandIn
from harness.ports import free_port
from tests.conftest import ROOT

CLIENT, SECRET = "bridge-test", "test-geheimnis"
LEIKA, ARS = "99102013104000", "064340011011"
SCHEMA = "urn:formcycle-bridge:schema:dog-registration@1"
SERVICE = {"name": "Hundesteuer Anmeldung", "identifier": f"urn:de:fim:leika:leistung:{LEIKA}"}
EVENTS = "https://schema.fitko.de/fit-connect/events/"


@pytest.fixture(scope="module")
def standin() -> Iterator[FitConnectStandIn]:
    """One stand-in for the module (key generation is the slow part)."""
    with FitConnectStandIn(clients={CLIENT: SECRET}) as server:
        yield server


@pytest.fixture
def fc(standin: FitConnectStandIn) -> Iterator[FitConnectStandIn]:
    """The stand-in with every fault off before and after the test."""
    standin.reset_faults()
    yield standin
    standin.reset_faults()


@pytest.fixture(scope="module")
def destination(standin: FitConnectStandIn) -> str:
    """A dog-registration destination for Usingen."""
    return standin.add_destination(
        leika=LEIKA, ars=ARS, schema_uri=SCHEMA, name="Steueramt Usingen"
    )


def get_token(fc: FitConnectStandIn) -> str:
    """An access token by client_secret_post."""
    answer = requests.post(
        fc.token_url,
        data={"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": SECRET},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


class Sender:
    """A minimal FIT-Connect sender over HTTP, for driving the stand-in."""

    def __init__(self, fc: FitConnectStandIn) -> None:
        """Take a token."""
        self.fc = fc
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {get_token(fc)}"

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One Submission API call."""
        return self.session.request(method, self.fc.submission_api_url + path, timeout=10, **kwargs)

    def key(self, destination_id: str) -> dict[str, Any]:
        """The destination's current encryption key, as published."""
        kid = self.call("GET", f"/destinations/{destination_id}").json()["encryptionKid"]
        answer = self.call("GET", f"/destinations/{destination_id}/keys/{kid}")
        assert answer.status_code == 200
        return dict(answer.json())

    def create(self, destination_id: str, attachments: list[str]) -> dict[str, Any]:
        """Announce a submission."""
        answer = self.call(
            "POST",
            "/submissions",
            json={
                "destinationId": destination_id,
                "announcedAttachments": attachments,
                "publicService": SERVICE,
                "region": ARS,
            },
        )
        assert answer.status_code == 201, answer.text
        return dict(answer.json())


def encrypt(key: dict[str, Any], payload: bytes, cty: str | None = "application/json") -> str:
    """A compact JWE (RSA-OAEP-256, A256GCM) for the published key."""
    header: dict[str, Any] = {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": key["kid"]}
    if cty is not None:
        header["cty"] = cty
    token = jwe.JWE(payload, protected=json.dumps(header))
    token.add_recipient(jwk.JWK(**key))
    return str(token.serialize(compact=True))


def metadata(data: bytes, attachments: dict[str, bytes], schema: str = SCHEMA) -> bytes:
    """Metadata naming the service, the schema and the SHA-512 of everything."""
    return json.dumps(
        {
            "publicServiceType": SERVICE,
            "contentStructure": {
                "data": {
                    "hash": {"type": "sha512", "content": hashlib.sha512(data).hexdigest()},
                    "submissionSchema": {"schemaUri": schema, "mimeType": "application/json"},
                },
                "attachments": [
                    {
                        "attachmentId": aid,
                        "hash": {"type": "sha512", "content": hashlib.sha512(body).hexdigest()},
                        "mimeType": "application/pdf",
                        "purpose": "attachment",
                    }
                    for aid, body in attachments.items()
                ],
            },
        }
    ).encode()


def send(
    sender: Sender,
    destination_id: str,
    data: bytes = b'{"dog": {"name": "Bello"}}',
    attachments: dict[str, bytes] | None = None,
    meta: bytes | None = None,
    key: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Create, upload, submit; (created ids, the compact JWEs sent by part)."""
    attachments = (
        attachments if attachments is not None else {str(uuid.uuid4()): b"%PDF-1.7 Impfpass"}
    )
    key = key or sender.key(destination_id)
    created = sender.create(destination_id, list(attachments))
    sent: dict[str, str] = {}
    for aid, body in attachments.items():
        sent[aid] = encrypt(key, body, cty="application/pdf")
        answer = sender.call(
            "PUT",
            f"/submissions/{created['submissionId']}/attachments/{aid}",
            data=sent[aid],
            headers={"Content-Type": "application/jose"},
        )
        assert answer.status_code == 204, answer.text
    sent["metadata"] = encrypt(key, meta or metadata(data, attachments))
    sent["data"] = encrypt(key, data)
    answer = sender.call(
        "PUT",
        f"/submissions/{created['submissionId']}",
        json={"encryptedMetadata": sent["metadata"], "encryptedData": sent["data"]},
    )
    assert answer.status_code == 200, answer.text
    return created, sent


def verify(token: str, keys: jwk.JWKSet) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of a PS512 JWS that verifies with a key of the set; raises otherwise."""
    parsed = jws.JWS()
    parsed.deserialize(token)
    header = dict(parsed.jose_header)
    assert header["alg"] == "PS512"
    parsed.verify(keys.get_key(header["kid"]), alg="PS512")
    return header, json.loads(parsed.payload)


def fetch_jwks(url: str) -> jwk.JWKSet:
    """A published JWK set."""
    return jwk.JWKSet.from_json(requests.get(url, timeout=10).text)


def destination_keys(sender: Sender, destination_id: str, kid: str) -> jwk.JWKSet:
    """The destination's signing key, fetched under its kid, as a set."""
    answer = sender.call("GET", f"/destinations/{destination_id}/keys/{kid}")
    assert answer.status_code == 200
    keys = jwk.JWKSet()
    keys.add(jwk.JWK(**answer.json()))
    return keys


def event_log(sender: Sender, case_id: str) -> list[str]:
    """One poll of the case's event log."""
    answer = sender.call("GET", f"/cases/{case_id}/events")
    assert answer.status_code == 200
    return list(answer.json()["eventLog"])


def decision(sender: Sender, destination_id: str, token: str) -> tuple[str, dict[str, Any]]:
    """(event name, event body) of a destination-signed SET, after verifying it."""
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    _, claims = verify(token, destination_keys(sender, destination_id, header["kid"]))
    assert claims["iss"] == destination_id
    ((uri, body),) = claims["events"].items()
    return uri.removeprefix(EVENTS), body


# --- token endpoint -----------------------------------------------------------------------------


def test_token_by_client_secret_post(fc: FitConnectStandIn) -> None:
    """client_credentials with id and secret in the form: a bearer token with lifetime and scope."""
    answer = requests.post(
        fc.token_url,
        data={"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": SECRET},
        timeout=10,
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 1800
    assert body["scope"] == "send:region:DE"


@pytest.mark.parametrize(
    ("form", "basic", "status", "error"),
    [
        ({"grant_type": "client_credentials"}, (CLIENT, SECRET), 400, "invalid_client"),
        (
            {"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": "falsch"},
            None,
            401,
            "invalid_client",
        ),
        (
            {"grant_type": "client_credentials", "client_id": "fremd", "client_secret": SECRET},
            None,
            401,
            "invalid_client",
        ),
        (
            {"grant_type": "password", "client_id": CLIENT, "client_secret": SECRET},
            None,
            400,
            "unsupported_grant_type",
        ),
        (
            {
                "grant_type": "client_credentials",
                "client_id": CLIENT,
                "client_secret": SECRET,
                "scope": "subscribe:destination",
            },
            None,
            400,
            "invalid_scope",
        ),
    ],
)
def test_token_refusals(
    fc: FitConnectStandIn,
    form: dict[str, str],
    basic: tuple[str, str] | None,
    status: int,
    error: str,
) -> None:
    """HTTP Basic, a wrong secret, an unknown client, another grant or scope are refused."""
    answer = requests.post(fc.token_url, data=form, auth=basic, timeout=10)
    assert (answer.status_code, answer.json()["error"]) == (status, error)


def test_submission_api_needs_a_valid_token(fc: FitConnectStandIn, destination: str) -> None:
    """No token, an unknown one and an expired one all get 401 problems."""
    url = f"{fc.submission_api_url}/destinations/{destination}"
    assert requests.get(url, timeout=10).status_code == 401
    unknown = requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=10)
    assert unknown.status_code == 401
    assert 'error="invalid_token"' in unknown.headers["WWW-Authenticate"]
    assert unknown.headers["Content-Type"] == "application/problem+json"
    with FitConnectStandIn(clients={CLIENT: SECRET}, token_lifetime_s=0) as short:
        token = get_token(short)
        expired = requests.get(
            f"{short.submission_api_url}/destinations/{uuid.uuid4()}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
    assert expired.status_code == 401
    assert expired.json()["detail"] == "Token abgelaufen."


# --- destination and keys -----------------------------------------------------------------------


def test_destination_and_its_keys_as_the_docs_require(
    fc: FitConnectStandIn, destination: str
) -> None:
    """active, encryptionKid, services; the key is RSA 4096 wrapKey RSA-OAEP-256 with an x5c chain."""
    sender = Sender(fc)
    document = sender.call("GET", f"/destinations/{destination}").json()
    assert document["status"] == "active"
    (service,) = document["publicServices"]
    assert service["identifier"] == SERVICE["identifier"]
    assert service["submissionSchemas"][0]["schemaUri"] == SCHEMA
    assert service["regions"] == [
        f"urn:de:bund:destatis:bevoelkerungsstatistik:schluessel:rs:{ARS}"
    ]
    key = sender.key(destination)
    assert key["kid"] == document["encryptionKid"]
    assert (key["kty"], key["key_ops"], key["alg"], key["e"]) == (
        "RSA",
        ["wrapKey"],
        "RSA-OAEP-256",
        "AQAB",
    )
    assert len(base64.urlsafe_b64decode(key["n"] + "==")) * 8 == 4096
    leaf, root = (x509.load_der_x509_certificate(base64.b64decode(c)) for c in key["x5c"])
    anchor = x509.load_pem_x509_certificate(fc.ca_pem.encode())
    assert root == anchor
    leaf.verify_directly_issued_by(anchor)
    signing = sender.call("GET", f"/destinations/{destination}/keys/{fc.signing_kid(destination)}")
    assert (signing.json()["key_ops"], signing.json()["alg"]) == (["verify"], "PS512")
    missing = sender.call("GET", f"/destinations/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.json()["type"].endswith("/problems/destination-not-found")
    listed = sender.call("GET", f"/destinations/{destination}/keys").json()["keys"]
    assert {k["kid"] for k in listed} == {key["kid"], fc.signing_kid(destination)}
    # v2 clients reach the destination endpoints under a destination API base of their own.
    split = sender.session.get(f"{fc.destination_api_url}/destinations/{destination}", timeout=10)
    assert split.json() == document


# --- the walk -----------------------------------------------------------------------------------


def test_submission_is_decrypted_checked_and_accepted(
    fc: FitConnectStandIn, destination: str
) -> None:
    """The destination finds data and attachment equal; submit and accept SETs verify."""
    sender = Sender(fc)
    aid = str(uuid.uuid4())
    created, sent = send(sender, destination, attachments={aid: b"%PDF-1.7 Impfpass"})
    (got,) = [r for r in fc.received(destination) if r["submission_id"] == created["submissionId"]]
    assert got["data"] == b'{"dog": {"name": "Bello"}}'
    assert got["attachments"] == {aid: b"%PDF-1.7 Impfpass"}
    assert got["hashes_ok"] is True
    assert got["decision"] == "accept"
    assert got["kid"] == fc.encryption_kid(destination)
    submitted, accepted = event_log(sender, created["caseId"])
    by_submission = sender.call("GET", f"/submissions/{created['submissionId']}/events")
    assert by_submission.json()["eventLog"] == [submitted, accepted]
    # The service's keys are published at the host's root and at the API's base, with and
    # without its version (where v2 clients look).
    base = fc.submission_api_url.rpartition("/")[0]
    for url in (f"{base}/.well-known/jwks.json", f"{fc.submission_api_url}/.well-known/jwks.json"):
        assert requests.get(url, timeout=10).json() == fetch_jwks(fc.service_jwks_url).export(
            private_keys=False, as_dict=True
        )
    _, claims = verify(submitted, fetch_jwks(fc.service_jwks_url))
    assert claims["iss"] == fc.submission_api_url
    assert claims["sub"] == f"submission:{created['submissionId']}"
    assert claims["txn"] == f"case:{created['caseId']}"
    assert claims["$schema"].endswith("/set-payload/1.2.2/set-payload.schema.json")
    assert list(claims["events"]) == [EVENTS + "submit-submission"]
    name, body = decision(sender, destination, accepted)
    assert name == "accept-submission"
    assert body["authenticationTags"] == {
        "metadata": sent["metadata"].rsplit(".", 1)[1],
        "data": sent["data"].rsplit(".", 1)[1],
        "attachments": {aid: sent[aid].rsplit(".", 1)[1]},
    }
    assert fc.submission_status(created["submissionId"]) == "accepted"


def test_a_forged_set_does_not_verify(fc: FitConnectStandIn, destination: str) -> None:
    """A SET signed by another key under the service's kid fails against the published keys."""
    sender = Sender(fc)
    created, _ = send(sender, destination)
    genuine = event_log(sender, created["caseId"])[0]
    header = json.loads(base64.urlsafe_b64decode(genuine.split(".")[0] + "=="))
    forged = jws.JWS(b'{"events": {}}')
    forged.add_signature(
        jwk.JWK.generate(kty="RSA", size=2048), alg="PS512", protected=json.dumps(header)
    )
    with pytest.raises(jws.InvalidJWSSignature):
        verify(forged.serialize(compact=True), fetch_jwks(fc.service_jwks_url))


def test_a_wrong_hash_is_rejected_with_the_problem(fc: FitConnectStandIn, destination: str) -> None:
    """Metadata naming another data hash: reject-submission, hash-mismatch on instance data."""
    sender = Sender(fc)
    meta = metadata(b"something else", {})
    created, _ = send(sender, destination, attachments={}, meta=meta)
    (got,) = [r for r in fc.received(destination) if r["submission_id"] == created["submissionId"]]
    assert got["hashes_ok"] is False
    name, body = decision(sender, destination, event_log(sender, created["caseId"])[-1])
    assert name == "reject-submission"
    (prob,) = body["problems"]
    assert prob["type"] == EVENTS + "problems/hash-mismatch"
    assert prob["instance"] == "data"
    assert {"title", "detail"} <= set(prob)


def test_unsupported_schema_is_rejected(fc: FitConnectStandIn, destination: str) -> None:
    """Metadata naming a data schema the destination does not take: unsupported-schema."""
    sender = Sender(fc)
    data = b"{}"
    created, _ = send(
        sender, destination, data=data, attachments={}, meta=metadata(data, {}, "urn:x")
    )
    name, body = decision(sender, destination, event_log(sender, created["caseId"])[-1])
    assert name == "reject-submission"
    assert body["problems"][0]["type"].endswith("/unsupported-schema")


def test_refusals_of_the_submission_api(fc: FitConnectStandIn, destination: str) -> None:
    """Unannounced attachment, wrong media type, missing cty, missing upload, duplicates."""
    sender = Sender(fc)
    key = sender.key(destination)
    aid = str(uuid.uuid4())
    created = sender.create(destination, [aid])
    sid = created["submissionId"]
    jose = {"Content-Type": "application/jose"}
    stranger = sender.call(
        "PUT",
        f"/submissions/{sid}/attachments/{uuid.uuid4()}",
        data=encrypt(key, b"x"),
        headers=jose,
    )
    assert stranger.status_code == 404
    as_json = sender.call(
        "PUT",
        f"/submissions/{sid}/attachments/{aid}",
        data=encrypt(key, b"x"),
        headers={"Content-Type": "application/json"},
    )
    assert as_json.status_code == 415
    not_jwe = sender.call("PUT", f"/submissions/{sid}/attachments/{aid}", data="a.b", headers=jose)
    assert not_jwe.status_code == 400
    body = {"encryptedMetadata": encrypt(key, b"{}"), "encryptedData": encrypt(key, b"{}")}
    missing = sender.call("PUT", f"/submissions/{sid}", json=body)
    assert missing.status_code == 422
    assert missing.json()["type"].endswith("/missing-attachments")
    assert (
        sender.call(
            "PUT", f"/submissions/{sid}/attachments/{aid}", data=encrypt(key, b"x"), headers=jose
        ).status_code
        == 204
    )
    no_cty = {
        "encryptedMetadata": encrypt(key, b"{}", cty=None),
        "encryptedData": encrypt(key, b"{}"),
    }
    assert sender.call("PUT", f"/submissions/{sid}", json=no_cty).status_code == 422
    assert fc.submission_status(sid) == "incomplete"
    assert fc.events(created["caseId"]) == []
    twice = sender.call(
        "POST",
        "/submissions",
        json={
            "destinationId": destination,
            "announcedAttachments": [aid, aid],
            "publicService": SERVICE,
        },
    )
    assert twice.status_code == 400
    unknown = sender.call(
        "POST", "/submissions", json={"destinationId": str(uuid.uuid4()), "publicService": SERVICE}
    )
    assert unknown.status_code == 404
    assert sender.call("GET", f"/cases/{uuid.uuid4()}/events").status_code == 404


def test_two_services_each_with_its_own_schema(fc: FitConnectStandIn) -> None:
    """LeiKa keys and schemas pair up: each service names its schema; the other is refused."""
    traffic, order_schema = "99108011153000", "urn:formcycle-bridge:schema:traffic-order@1"
    dest = fc.add_destination(leika=[LEIKA, traffic], ars=ARS, schema_uri=[SCHEMA, order_schema])
    sender = Sender(fc)
    services = sender.call("GET", f"/destinations/{dest}").json()["publicServices"]
    assert [[s["schemaUri"] for s in p["submissionSchemas"]] for p in services] == [
        [SCHEMA],
        [order_schema],
    ]
    data = b"{}"
    created, _ = send(
        sender, dest, data=data, attachments={}, meta=metadata(data, {}, order_schema)
    )
    name, body = decision(sender, dest, event_log(sender, created["caseId"])[-1])
    assert name == "reject-submission"
    assert body["problems"][0]["type"].endswith("/unsupported-schema")


def test_inactive_destination_refuses_new_submissions(fc: FitConnectStandIn) -> None:
    """destination-state-invalid (422) while the destination is not active."""
    other = fc.add_destination(leika=LEIKA, ars="064340007007", schema_uri=SCHEMA)
    fc.set_destination_status(other, "inactive")
    answer = Sender(fc).call(
        "POST", "/submissions", json={"destinationId": other, "publicService": SERVICE}
    )
    assert answer.status_code == 422
    assert answer.json()["type"].endswith("/destination-state-invalid")


# --- routing ------------------------------------------------------------------------------------


def test_route_by_leika_and_ars_with_a_verifiable_signature(
    fc: FitConnectStandIn, destination: str
) -> None:
    """The route names the destination; destinationSignature verifies with the routing JWKS."""
    answer = requests.get(
        f"{fc.routing_api_url}/routes", params={"leikaKey": LEIKA, "ars": ARS}, timeout=10
    )
    assert answer.status_code == 200
    assert "RateLimit-Remaining" in answer.headers
    body = answer.json()
    assert body["count"] == body["totalCount"] >= 1
    (route,) = [r for r in body["routes"] if r["destinationId"] == destination]
    _, claims = verify(route["destinationSignature"], fetch_jwks(fc.routing_jwks_url))
    assert claims["destinationId"] == destination
    assert claims["submissionHost"] == fc.submission_host
    assert claims["services"][0]["leistungIDs"] == [SERVICE["identifier"]]
    by_ags = requests.get(
        f"{fc.routing_api_url}/routes", params={"leikaKey": LEIKA, "ags": "06434011"}, timeout=10
    )
    assert destination in [r["destinationId"] for r in by_ags.json()["routes"]]
    elsewhere = requests.get(
        f"{fc.routing_api_url}/routes",
        params={"leikaKey": LEIKA, "ars": "064350014014"},
        timeout=10,
    )
    assert elsewhere.json()["count"] == 0


def test_routing_info(fc: FitConnectStandIn) -> None:
    """GET /info names the Routing API's version."""
    answer = requests.get(f"{fc.routing_api_url}/info", timeout=10)
    assert answer.json() == {"version": {"major": 2, "minor": 0, "patch": 0}}


@pytest.mark.parametrize(
    "params",
    [
        {"leikaKey": LEIKA},
        {"leikaKey": LEIKA, "ars": ARS, "ags": "06434011"},
        {"leikaKey": "12345", "ars": ARS},
        {"leikaKey": LEIKA, "ars": "0643"},
        {"leikaKey": LEIKA, "ars": ARS, "limit": "501"},
        {"leikaKey": LEIKA, "areaId": "Usingen"},
    ],
)
def test_routing_refuses_bad_parameters(fc: FitConnectStandIn, params: dict[str, str]) -> None:
    """Exactly one area parameter, a 14-digit LeiKa key, valid ARS and limits: 400 otherwise."""
    answer = requests.get(f"{fc.routing_api_url}/routes", params=params, timeout=10)
    assert answer.status_code == 400
    assert answer.headers["Content-Type"] == "application/problem+json"


# --- faults -------------------------------------------------------------------------------------


def test_token_endpoint_down_for_one_request(fc: FitConnectStandIn) -> None:
    """token_down(count=1): one 503, then tokens again."""
    fc.token_down(count=1)
    form = {"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": SECRET}
    assert requests.post(fc.token_url, data=form, timeout=10).status_code == 503
    assert requests.post(fc.token_url, data=form, timeout=10).status_code == 200


def test_submission_api_503_for_the_next_calls(fc: FitConnectStandIn, destination: str) -> None:
    """fail_submission_api(2): two 503 problems with Retry-After, then normal answers."""
    sender = Sender(fc)
    fc.fail_submission_api(count=2)
    first = sender.call("GET", f"/destinations/{destination}")
    assert (first.status_code, first.headers["Retry-After"]) == (503, "1")
    assert sender.call("GET", f"/destinations/{destination}").status_code == 503
    assert sender.call("GET", f"/destinations/{destination}").status_code == 200


def test_forced_reject_carries_the_chosen_problem(fc: FitConnectStandIn, destination: str) -> None:
    """reject_next: the next decision is a reject with that problem, though hashes are fine."""
    fc.reject_next(destination, "technical-error", "Fachverfahren nicht erreichbar.")
    assert fc.queued_rejects() == 1
    sender = Sender(fc)
    created, _ = send(sender, destination)
    (got,) = [r for r in fc.received(destination) if r["submission_id"] == created["submissionId"]]
    assert (got["hashes_ok"], got["decision"]) == (True, "reject")
    name, body = decision(sender, destination, event_log(sender, created["caseId"])[-1])
    assert name == "reject-submission"
    assert body["problems"][0]["detail"] == "Fachverfahren nicht erreichbar."
    assert fc.queued_rejects() == 0
    again, _ = send(sender, destination)
    assert fc.submission_status(again["submissionId"]) == "accepted"


def test_key_rotation_rejects_what_was_encrypted_for_the_old_key(
    fc: FitConnectStandIn,
) -> None:
    """A new encryptionKid; the old key is gone (404) and a submission for it is rejected."""
    dest = fc.add_destination(leika=LEIKA, ars=ARS, schema_uri=SCHEMA)
    sender = Sender(fc)
    old = sender.key(dest)
    new_kid = fc.rotate_key(dest)
    assert new_kid != old["kid"]
    assert sender.call("GET", f"/destinations/{dest}").json()["encryptionKid"] == new_kid
    assert sender.call("GET", f"/destinations/{dest}/keys/{old['kid']}").status_code == 404
    created, _ = send(sender, dest, key=old)
    name, body = decision(sender, dest, event_log(sender, created["caseId"])[-1])
    assert name == "reject-submission"
    assert body["problems"][0]["type"].endswith("/encryption-issue")
    fresh, _ = send(sender, dest)
    assert fc.submission_status(fresh["submissionId"]) == "accepted"


def test_rotation_that_keeps_the_old_key(fc: FitConnectStandIn) -> None:
    """keep_old: the old key stays published and still decrypts (as the docs ask of a receiver)."""
    dest = fc.add_destination(leika=LEIKA, ars=ARS, schema_uri=SCHEMA)
    sender = Sender(fc)
    old = sender.key(dest)
    fc.rotate_key(dest, keep_old=True)
    assert sender.call("GET", f"/destinations/{dest}/keys/{old['kid']}").json() == old
    created, _ = send(sender, dest, key=old)
    assert fc.submission_status(created["submissionId"]) == "accepted"
    assert fc.received(dest)[0]["kid"] == old["kid"]


def test_a_submitted_submission_takes_nothing_more(fc: FitConnectStandIn, destination: str) -> None:
    """Submitting again or uploading after the submit: 409, the decision unchanged."""
    sender = Sender(fc)
    created, sent = send(sender, destination, attachments={})
    sid = created["submissionId"]
    again = sender.call(
        "PUT",
        f"/submissions/{sid}",
        json={"encryptedMetadata": sent["metadata"], "encryptedData": sent["data"]},
    )
    assert again.status_code == 409
    assert again.json()["type"].endswith("/submission-state-invalid")
    late = sender.call(
        "PUT",
        f"/submissions/{sid}/attachments/{uuid.uuid4()}",
        data=sent["data"],
        headers={"Content-Type": "application/jose"},
    )
    assert late.status_code == 409
    assert len(fc.events(created["caseId"])) == 2
    assert sender.call("GET", f"/submissions/{sid}").json()["caseId"] == created["caseId"]


def test_event_log_lags_for_polls(fc: FitConnectStandIn, destination: str) -> None:
    """lag_events(polls=2): two polls see nothing, the third sees submit and accept."""
    fc.lag_events(polls=2)
    sender = Sender(fc)
    created, _ = send(sender, destination)
    assert event_log(sender, created["caseId"]) == []
    assert event_log(sender, created["caseId"]) == []
    assert len(event_log(sender, created["caseId"])) == 2


def test_event_log_lags_for_seconds(fc: FitConnectStandIn, destination: str) -> None:
    """lag_events(seconds=600): the decision is made but not shown yet."""
    fc.lag_events(seconds=600)
    sender = Sender(fc)
    created, _ = send(sender, destination)
    assert event_log(sender, created["caseId"]) == []
    assert len(fc.events(created["caseId"])) == 2


def test_http_controls(fc: FitConnectStandIn) -> None:
    """The /_control/ endpoints drive the same faults (for the chaos run) and list receipts."""
    control = f"{fc.base_url}/_control"
    added = requests.post(
        f"{control}/destinations",
        json={"leika": LEIKA, "ars": ARS, "schema_uri": SCHEMA},
        timeout=30,
    )
    dest = added.json()["destinationId"]
    assert requests.post(f"{control}/token-down", params={"count": 1}, timeout=10).ok
    form = {"grant_type": "client_credentials", "client_id": CLIENT, "client_secret": SECRET}
    assert requests.post(fc.token_url, data=form, timeout=10).status_code == 503
    assert requests.post(f"{control}/reject-next", params={"destination": dest}, timeout=10).ok
    assert (
        requests.post(f"{control}/reject-next", params={"problem": "nope"}, timeout=10).status_code
        == 400
    )
    rotated = requests.post(f"{control}/rotate-key", params={"destination": dest}, timeout=30)
    assert rotated.json()["encryptionKid"] == fc.encryption_kid(dest)
    sender = Sender(fc)
    send(sender, dest)
    (got,) = requests.get(f"{control}/received/{dest}", timeout=10).json()
    assert (got["decision"], got["hashes_ok"]) == ("reject", True)
    assert base64.b64decode(got["data"]) == b'{"dog": {"name": "Bello"}}'
    assert requests.post(f"{control}/submission-down", timeout=10).ok
    assert sender.call("GET", f"/destinations/{dest}").status_code == 503
    assert requests.post(f"{control}/reset-faults", timeout=10).ok
    assert sender.call("GET", f"/destinations/{dest}").status_code == 200


def test_command_line_serves_the_demo(tmp_path: Path) -> None:
    """`python -m demo_fitconnect --port N`: the demo client gets a token, routing finds Usingen."""
    port = free_port()
    ca_file = tmp_path / "ca.pem"
    process = subprocess.Popen(
        [sys.executable, "-m", "demo_fitconnect", "--port", str(port), "--ca-file", str(ca_file)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert f"http://127.0.0.1:{port}/token" in line
        anchor = x509.load_pem_x509_certificate(ca_file.read_bytes())
        routes_key = requests.get(
            f"http://127.0.0.1:{port}/routing-api/v1/.well-known/jwks.json", timeout=10
        ).json()["keys"][0]
        leaf = x509.load_der_x509_certificate(base64.b64decode(routes_key["x5c"][0]))
        leaf.verify_directly_issued_by(anchor)
        form = {
            "grant_type": "client_credentials",
            "client_id": "bridge-demo",
            "client_secret": "demo-fitconnect-geheim",
        }
        assert requests.post(f"http://127.0.0.1:{port}/token", data=form, timeout=10).ok
        routes = requests.get(
            f"http://127.0.0.1:{port}/routing-api/v1/routes",
            params={"leikaKey": LEIKA, "ars": ARS},
            timeout=10,
        ).json()
        assert [r["destinationName"] for r in routes["routes"]] == [
            "Steueramt Usingen (FIT-Connect)"
        ]
    finally:
        process.terminate()
        assert process.wait(10) == 0
