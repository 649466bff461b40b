"""The OpenAPI 3.1 document, generated from the marshmallow schemas the code itself uses."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from bridge import views
from domain.config import Config
from schemas import SCHEMAS

_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": _PROBLEM}


def openapi_document(config: Config) -> dict[str, Any]:
    """The OpenAPI document for the services configured here."""
    return _document(tuple(sorted((s.id, s.schema, s.title) for s in config.services.values())))


@lru_cache(maxsize=4)
def _document(services: tuple[tuple[str, str, str], ...]) -> dict[str, Any]:
    spec = APISpec(
        title="Formcycle/Civento-Brücke",
        version="1",
        openapi_version="3.1.0",
        plugins=[MarshmallowPlugin()],
        info={"description": "Nimmt Online-Anträge aus Formcycle an und leitet sie weiter."},
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme(
        "senderSecret", {"type": "apiKey", "in": "header", "name": "X-Bridge-Secret"}
    )
    spec.components.schema("Problem", schema=views.ProblemView)
    spec.components.schema("SubmissionAnswer", schema=views.SubmissionAnswer)
    spec.components.schema("SubmissionStatus", schema=views.SubmissionStatusView)
    for service_id, schema_key, title in services:
        name = schema_key.replace("@", "_v").replace("-", "_")
        spec.components.schema(name, schema=SCHEMAS.get(schema_key).schema_class)
        ref = {"$ref": f"#/components/schemas/{name}"}
        spec.path(
            path=f"/webhooks/formcycle/{service_id}",
            operations={
                "post": {
                    "summary": f"{title}: einen Antrag einreichen",
                    "security": [{"senderSecret": []}],
                    "parameters": [
                        {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}},
                        {"name": "webhook-id", "in": "header", "schema": {"type": "string"}},
                        {"name": "webhook-timestamp", "in": "header", "schema": {"type": "string"}},
                        {"name": "webhook-signature", "in": "header", "schema": {"type": "string"}},
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": ref},
                            "application/x-www-form-urlencoded": {
                                "schema": {"type": "object", "description": "dotted keys"}
                            },
                            "multipart/form-data": {
                                "schema": {"type": "object", "description": "dotted keys, files"}
                            },
                        },
                    },
                    "responses": {
                        "202": {
                            "description": "Angenommen und gespeichert",
                            "headers": {"Location": {"schema": {"type": "string"}}},
                            "content": {
                                "application/json": {"schema": "SubmissionAnswer"},
                                "text/html": {"schema": {"type": "string"}},
                            },
                        },
                        "400": _problem("Fehlerhafter Aufbau der Anfrage"),
                        "401": _problem("Fehlende oder falsche Zugangsdaten"),
                        "404": _problem("Unbekannter Dienst"),
                        "413": _problem("Zu groß"),
                        "415": _problem("Nicht unterstütztes Datenformat"),
                        "422": _problem("Ungültige Angaben; jedes fehlerhafte Feld wird genannt"),
                        "503": _problem("Nicht gespeichert; bitte erneut senden"),
                    },
                }
            },
        )
    spec.path(
        path="/api/v1/submissions/{reference}",
        operations={
            "get": {
                "summary": "Status, Zustellungen und Verlauf eines Antrags",
                "security": [{"bearer": []}],
                "parameters": [
                    {
                        "name": "reference",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "Der Antrag",
                        "content": {"application/json": {"schema": "SubmissionStatus"}},
                    },
                    "401": _problem("Fehlendes oder falsches Token"),
                    "404": _problem("Unbekannter Antrag"),
                },
            }
        },
    )
    for path, summary in (
        ("/healthz", "Lebt der Dienst?"),
        ("/readyz", "Datenbank und Redis erreichbar?"),
    ):
        spec.path(
            path=path,
            operations={"get": {"summary": summary, "responses": {"200": {"description": "ok"}}}},
        )
    result: dict[str, Any] = spec.to_dict()
    return result
