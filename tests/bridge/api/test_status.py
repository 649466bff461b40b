"""The read API: submission status behind a token, the OpenAPI document, the published JSON Schemas."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import MakeToken, bearer
from tests.factories import dog
from tests.webhook_support import assert_problem, form_body, post


@pytest.fixture
def reader(api_token: MakeToken) -> dict[str, str]:
    """The Authorization header of a viewer's token."""
    return bearer(api_token("viewer"))


def _submit_dangerous_dog(client: FlaskClient) -> dict[str, Any]:
    response = post(client, "dog-registration", form_body(dog({"dog.breed": "Rottweiler"})))
    assert response.status_code == 202, response.get_data(as_text=True)
    body = response.get_json()
    assert isinstance(body, dict)
    return body


INVALID = "Das Zugangstoken ist ungültig, abgelaufen oder widerrufen."


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        pytest.param(lambda t: {}, "Es fehlt ein Zugangstoken.", id="no-token"),
        pytest.param(
            lambda t: {"Authorization": "Bearer not-a-token-0123456789abcdef0123"},
            INVALID,
            id="wrong-token",
        ),
        pytest.param(
            lambda t: {"Authorization": f"Basic {t}"}, "Es fehlt ein Zugangstoken.", id="not-bearer"
        ),
        pytest.param(
            lambda t: {"Authorization": "Bearer "}, "Es fehlt ein Zugangstoken.", id="empty-bearer"
        ),
        pytest.param(lambda t: bearer(t[:-1]), INVALID, id="token-prefix"),
        pytest.param(lambda t: bearer(t + "x" * 300), INVALID, id="oversized"),
    ],
)
def test_status_needs_a_valid_token(
    client: FlaskClient,
    api_token: MakeToken,
    headers: Callable[[str], dict[str, str]],
    detail: str,
) -> None:
    """Without a valid bearer token the status is refused with 401, not even a 404."""
    reference = _submit_dangerous_dog(client)["reference"]
    token = api_token("viewer")
    response = client.get(f"/api/v1/submissions/{reference}", headers=headers(token))
    assert_problem(response, 401, "unauthorized", detail=detail, title="Nicht angemeldet.")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="formcycle-bridge"'


def test_status_unauthorized_in_english(client: FlaskClient) -> None:
    """The 401 speaks English on request."""
    response = client.get("/api/v1/submissions/NA-2026-000001", headers={"Accept-Language": "en"})
    assert_problem(response, 401, "unauthorized", detail="A bearer token is missing.", lang="en")


@pytest.mark.parametrize(
    "reference",
    [
        pytest.param("NA-2026-999999", id="unknown-number"),
        pytest.param("kaputt", id="malformed"),
        pytest.param("na-2026-000001", id="lower-case-prefix"),
        pytest.param("NA-26-000001", id="short-year"),
        pytest.param("NA-2026-", id="no-number"),
        pytest.param("NA-2026-0000000000000000001", id="number-too-long"),
        # str.isdigit() takes these, int() refuses the first and reads the second as 1.
        pytest.param("NA-2026-00000\u00b9", id="superscript-digit"),
        pytest.param("NA-2026-\u0660\u0660\u0660\u0660\u0660\u0661", id="arabic-indic-digits"),
        pytest.param("N\u00c4-2026-000001", id="non-ascii-prefix"),
    ],
)
def test_unknown_or_malformed_reference_is_404(
    client: FlaskClient, reference: str, reader: dict[str, str]
) -> None:
    """A reference that names no submission is a 404 problem in German."""
    _submit_dangerous_dog(client)
    response = client.get(f"/api/v1/submissions/{reference}", headers=reader)
    assert_problem(
        response,
        404,
        "unknown-submission",
        title="Diesen Antrag gibt es nicht.",
        detail=f"Kein Antrag mit dem Aktenzeichen {reference!r}.",
    )


def test_reference_of_another_town_or_year_is_404(
    client: FlaskClient, reader: dict[str, str]
) -> None:
    """The number alone does not find a submission: prefix and year must match too."""
    reference = _submit_dangerous_dog(client)["reference"]
    prefix, year, number = reference.split("-")
    for wrong in (f"US-{year}-{number}", f"{prefix}-{int(year) - 1}-{number}"):
        response = client.get(f"/api/v1/submissions/{wrong}", headers=reader)
        assert_problem(response, 404, "unknown-submission")


def test_status_with_deliveries_and_history(client: FlaskClient, reader: dict[str, str]) -> None:
    """The status shows the municipality, both deliveries and the history of the submission."""
    answer = _submit_dangerous_dog(client)
    response = client.get(answer["links"]["status"], headers=reader)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["reference"] == answer["reference"]
    assert body["status"] == "routed"
    assert body["service"] == "dog-registration"
    assert body["schema"] == "dog-registration@1"
    assert body["municipality"] == {"name": "Neu-Anspach", "ags": "06434007"}
    assert body["flags"]["dangerous_dog"] is True
    assert body["flags"]["dangerous_breeds"] == ["Rottweiler"]
    assert body["attachments"] == []
    offices = {d["office"]: d for d in body["deliveries"]}
    assert set(offices) == {"usingen-steueramt", "neu-anspach-ordnungsamt"}
    assert {d["status"] for d in body["deliveries"]} == {"pending"}
    assert {d["id"] for d in body["deliveries"]} == {d["id"] for d in answer["deliveries"]}
    history = body["history"]
    assert [e["kind"] for e in history] == [
        "submission.received",
        "delivery.routed",
        "delivery.routed",
    ]
    assert history[0]["actor"] == "sender:formcycle"
    assert history[0]["detail"]["municipality_ags"] == "06434007"
    assert history[0]["detail"]["flags"] == ["dangerous_dog"]
    routed = {e["delivery_id"]: e["detail"]["office"] for e in history[1:]}
    assert routed == {d["id"]: d["office"] for d in body["deliveries"]}


@pytest.mark.parametrize("role", ["operator", "admin"])
def test_stronger_roles_read_status_too(
    client: FlaskClient, api_token: MakeToken, role: str
) -> None:
    """Operator and admin include reading."""
    reference = _submit_dangerous_dog(client)["reference"]
    response = client.get(f"/api/v1/submissions/{reference}", headers=bearer(api_token(role)))
    assert response.status_code == 200
    assert response.get_json()["reference"] == reference


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_openapi_document(client: FlaskClient) -> None:
    """/openapi.json is an OpenAPI 3.1 document with the webhook paths and resolvable $refs."""
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    doc = response.get_json()
    assert doc["openapi"].startswith("3.1")
    assert doc["info"]["title"]
    assert doc["info"]["version"]
    for service in ("dog-registration", "traffic-order"):
        operation = doc["paths"][f"/webhooks/formcycle/{service}"]["post"]
        content = operation["requestBody"]["content"]
        assert set(content) >= {
            "application/json",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        }
        responses = operation["responses"]
        assert {"202", "401", "404", "413", "415", "422", "503"} <= set(responses)
        for status in ("401", "413", "415", "422", "503"):
            assert "application/problem+json" in responses[status]["content"]
        assert "text/html" in responses["202"]["content"]
    assert "/api/v1/submissions/{reference}" in doc["paths"]
    schemas = doc["components"]["schemas"]
    assert {"Problem", "SubmissionAnswer", "SubmissionStatus"} <= set(schemas)
    refs = _refs(doc)
    assert refs
    for ref in refs:
        assert ref.startswith("#/components/schemas/")
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    answer = schemas["SubmissionAnswer"]["properties"]
    assert {"reference", "status", "municipality", "deliveries"} <= set(answer)


def test_dog_registration_json_schema(client: FlaskClient) -> None:
    """/schemas/dog-registration is a JSON Schema (2020-12) of the submission."""
    response = client.get("/schemas/dog-registration")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    schema = response.get_json()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["type"] == "object"
    assert {"keeper", "dog", "privacy_consent", "dogs_in_household"} <= set(schema["required"])
    assert "properties" in schema
    assert {"keeper", "dog", "attachments"} <= set(schema["properties"])
    assert "public" in response.headers["Cache-Control"]


def test_unknown_schema_is_404(client: FlaskClient) -> None:
    """An unknown service has no schema: a German 404 problem."""
    response = client.get("/schemas/cat-registration")
    assert_problem(
        response,
        404,
        "unknown-service",
        title="Unbekannter Online-Dienst.",
        detail="Den Dienst 'cat-registration' gibt es hier nicht.",
    )


def test_openapi_request_bodies_are_the_published_json_schemas(client: FlaskClient) -> None:
    """For every service, /openapi.json carries exactly what /schemas/<service> publishes."""
    doc = client.get("/openapi.json").get_json()
    services = client.application.extensions["bridge"].settings.config.services
    assert set(services) == {"dog-registration", "traffic-order"}
    for service in services:
        published = client.get(f"/schemas/{service}").get_json()
        operation = doc["paths"][f"/webhooks/formcycle/{service}"]["post"]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        component = doc["components"]["schemas"][ref.removeprefix("#/components/schemas/")]
        assert component == published
    # e.g. the start of a traffic order: date-time, date or local time, and its lead time.
    start = published["properties"]["period"]["properties"]["start"]
    assert len(start["anyOf"]) == 3
    assert "72 Stunden" in start["description"]
