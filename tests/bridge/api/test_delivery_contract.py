"""The published delivery contract: /schemas/deliveries/, the XSD, and /openapi.json's webhooks.

The defect of issue 20: a delivery's data carries each file as `{filename, content_type, size,
sha256}` (the bytes travel beside it, inline or by signed link), while /schemas/<service>
describes what a sender posts (`content_base64`), so an office validating a case with files
against it refused the case. The delivery schemas describe what an office receives.
"""

from __future__ import annotations

import base64
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from infra.safexml import parse_xml
from integrations.channels import envelope_json
from integrations.channels.contract import delivery_schema
from integrations.channels.envelopes import build_envelopes
from integrations.channels.xml import XSD_PATH
from schemas import SCHEMAS
from tests.factories import PDF, PNG, as_json, dog
from tests.schemas.agreement import schema_validator
from tests.webhook_support import JSON, assert_problem, post

SCHEMA_MEDIA_TYPE = "application/schema+json"


def _case_with_files(client: FlaskClient, app: Flask, inline_limit: int) -> dict[str, Any]:
    """A dog registration posted with two files, as the http-json channel would send it."""
    files = [
        {"filename": "Kaufvertrag.pdf", "content_base64": base64.b64encode(PDF).decode()},
        {"filename": "Foto.png", "content_base64": base64.b64encode(PNG).decode()},
    ]
    answer = post(client, "dog-registration", as_json(dog(attachments=files)), JSON)
    assert answer.status_code == 202, answer.get_data(as_text=True)
    [delivery] = answer.get_json()["deliveries"]
    bridge = app.extensions["bridge"]
    [envelope] = build_envelopes(bridge.settings, bridge.store, bridge.vault, [delivery["id"]])
    return envelope_json(envelope, inline_limit)


def test_a_case_with_files_fits_the_published_delivery_schema(
    client: FlaskClient, app: Flask
) -> None:
    """What an office receives validates against /schemas/deliveries/<service.schema>.json,
    with a file inline and one by link; the request schema still describes what senders post."""
    document = _case_with_files(client, app, inline_limit=len(PNG))
    [pdf, png] = document["attachments"]
    assert (pdf["content_base64"], png["content_base64"]) == (None, base64.b64encode(PNG).decode())
    assert set(document["data"]["attachments"][0]) == {"filename", "content_type", "size", "sha256"}

    published = client.get(f"/schemas/deliveries/{document['service']['schema']}.json")
    assert published.status_code == 200
    errors = list(schema_validator(published.get_json()).iter_errors(document))
    assert errors == []
    # Which is why there are two: the request schema wants the bytes in the data.
    request_schema = schema_validator(client.get("/schemas/dog-registration").get_json())
    assert not request_schema.is_valid(document["data"])


def test_a_changed_delivery_does_not_fit() -> None:
    """The schemas are exact: the sender's shape of a file, an unpublished key, a wrong type."""
    valid = {
        "filename": "a.pdf",
        "content_type": "application/pdf",
        "size": 3,
        "sha256": "0" * 64,
        "content_base64": None,
        "fetch_url": None,
        "field": "attachments",
    }
    schema = delivery_schema("dog-registration@1")
    attachment = schema_validator(schema["properties"]["attachments"]["items"])
    assert attachment.is_valid(valid)
    assert not attachment.is_valid({**valid, "extra": 1})
    assert not attachment.is_valid({**valid, "size": "3"})
    data_files = schema_validator(schema["properties"]["data"]["properties"]["attachments"])
    assert data_files.is_valid(
        [{k: valid[k] for k in ("filename", "content_type", "size", "sha256")}]
    )
    assert not data_files.is_valid([{"filename": "a.pdf", "content_base64": "JVBERg=="}])


def test_every_registered_schema_version_and_the_notice_are_published(
    client: FlaskClient,
) -> None:
    """/schemas/deliveries lists one envelope per registered schema key (a new version is
    published by registering it) and the payment notice; each is the generator's document,
    a valid 2020-12 schema, cacheable with an ETag."""
    index = client.get("/schemas/deliveries")
    assert index.status_code == 200
    listed = index.get_json()
    names = [entry["name"] for entry in listed["json"]]
    assert names == [*(entry.key for entry in SCHEMAS), "payment-notice"]
    assert listed["xml"] == [{"name": XSD_PATH.name, "url": f"/schemas/xml/{XSD_PATH.name}"}]
    for entry in listed["json"]:
        response = client.get(entry["url"])
        assert response.status_code == 200
        assert response.mimetype == SCHEMA_MEDIA_TYPE
        assert response.headers["Cache-Control"] == "public, max-age=86400"
        schema = response.get_json()
        assert schema == delivery_schema(entry["name"])
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        schema_validator(schema)  # checks the schema itself
        again = client.get(entry["url"], headers={"If-None-Match": response.headers["ETag"]})
        assert again.status_code == 304
    case = client.get("/schemas/deliveries/traffic-order@1.json").get_json()
    assert case["properties"]["service"]["properties"]["schema"] == {
        "const": "traffic-order@1",
        "title": "Schema der Daten (Dienst@Version)",
    }
    notice = client.get("/schemas/deliveries/payment-notice.json").get_json()
    assert notice["properties"]["type"]["const"] == "payment.received"


def test_the_xsd_is_served_as_shipped(client: FlaskClient) -> None:
    """/schemas/xml/bridge-case-1.xsd is the file the xml channel validates against."""
    response = client.get(f"/schemas/xml/{XSD_PATH.name}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/xml; charset=utf-8"
    assert response.data == XSD_PATH.read_bytes()
    assert "public" in response.headers["Cache-Control"]
    assert parse_xml(response.data).tag == "{http://www.w3.org/2001/XMLSchema}schema"


def test_unknown_contract_documents_are_german_404s(client: FlaskClient) -> None:
    """An unknown schema key or XSD is a problem, never a file from elsewhere."""
    for path, detail in (
        ("/schemas/deliveries/cat-registration@1.json", "Kein Zustellschema 'cat-registration@1'"),
        ("/schemas/xml/routing.toml", "Keine XSD 'routing.toml'"),
    ):
        assert_problem(
            client.get(path),
            404,
            "unknown-schema",
            title="Dieses Schema gibt es nicht.",
            detail=f"{detail}; die Liste steht unter /schemas/deliveries.",
        )
    # Only names in the schema directory's listing: no way out of it.
    assert_problem(client.get("/schemas/xml/..%2fxml.py"), 404, "not-found")


def test_openapi_describes_the_deliveries_as_webhooks(client: FlaskClient) -> None:
    """/openapi.json's `webhooks` carry the published schemas unchanged, the headers the
    channels send, the signature scheme and the answers the bridge understands."""
    doc = client.get("/openapi.json").get_json()
    components = doc["components"]["schemas"]
    case = doc["webhooks"]["case.created"]["post"]
    refs = case["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    published = [
        client.get(f"/schemas/deliveries/{entry.key}.json").get_json() for entry in SCHEMAS
    ]
    carried = [components[r["$ref"].removeprefix("#/components/schemas/")] for r in refs]
    assert carried == published
    notice = doc["webhooks"]["payment.received"]["post"]
    ref = notice["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert (
        components[ref.removeprefix("#/components/schemas/")]
        == client.get("/schemas/deliveries/payment-notice.json").get_json()
    )
    headers = {p["name"]: p for p in case["parameters"]}
    assert set(headers) == {
        "webhook-id",
        "Idempotency-Key",
        "webhook-timestamp",
        "webhook-signature",
        "User-Agent",
    }
    assert headers["webhook-signature"]["required"] is False  # only with signing_secret_env
    scheme = doc["components"]["securitySchemes"]["webhookSignature"]
    assert "HMAC-SHA256" in scheme["description"]
    assert set(case["responses"]) == {"2XX", "3XX", "408", "429", "4XX", "5XX"}
    assert "Retry-After" in case["responses"]["429"]["headers"]
    assert "409 und 410" in case["responses"]["4XX"]["description"]
    xml = case["requestBody"]["content"]["application/xml"]["schema"]
    assert XSD_PATH.name in xml["description"]
