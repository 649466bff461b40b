"""The OpenAPI 3.1 document, generated from the marshmallow schemas the code itself uses.

The request body of each service is the service's published JSON Schema (`service_json_schema`,
also served at ``/schemas/<service>``), carried unchanged as a component: one generator
describes the data in both places. What the bridge sends to back offices is under ``webhooks``
(`bridge.api.webhooks_openapi`).
"""

from __future__ import annotations

import copy
from functools import lru_cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from bridge.api import views
from bridge.api.admin_openapi import add_admin_paths
from bridge.api.openapi_parts import BEARER, json_body, path_param, problem
from bridge.api.payment_openapi import add_payment_paths
from bridge.api.webhooks_openapi import add_delivery_webhooks
from domain.config import Config, Service
from schemas import Limits, json_schema


def service_limits(service: Service) -> Limits:
    """The limits the service is configured with (what intake validates with)."""
    return service.limits()


def service_json_schema(service: Service) -> dict[str, Any]:
    """The JSON Schema of a configured service's submissions, with its configured limits."""
    return _json_schema(service.schema, service_limits(service))


@lru_cache(maxsize=16)
def _json_schema(key: str, limits: Limits) -> dict[str, Any]:
    return json_schema(key, limits)


def component_name(service_id: str) -> str:
    """The name of a service's request body among the OpenAPI components."""
    return f"{service_id}-submission"


def openapi_document(config: Config) -> dict[str, Any]:
    """The OpenAPI document for the services configured here."""
    return _document(
        tuple(
            sorted((s.id, s.schema, s.title, service_limits(s)) for s in config.services.values())
        )
    )


@lru_cache(maxsize=4)
def _document(services: tuple[tuple[str, str, str, Limits], ...]) -> dict[str, Any]:
    spec = APISpec(
        title="Formcycle/Civento-Brücke",
        version="1",
        openapi_version="3.1.0",
        plugins=[MarshmallowPlugin()],
        info={"description": "Nimmt Online-Anträge aus Formcycle an und leitet sie weiter."},
    )
    spec.components.security_scheme(
        "bearer",
        {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "API-Token aus `python -m bridge tokens create` (in der Datenbank nur als "
                "SHA-256 gespeichert, mit Ablaufdatum). Rollen: viewer liest, operator "
                "sendet außerdem erneut, storniert und leitet um, admin verwaltet außerdem "
                "Konten und Tokens. Ein Token einer Stelle (--office) ruft nur die Anlagen "
                "der an diese Stelle zugestellten Anträge ab. Postfach-Abrufe "
                "(/api/v1/inbox) nutzen das Token der Stelle aus der Routing-Datei oder ihr "
                "eigenes API-Token."
            ),
        },
    )
    spec.components.security_scheme(
        "senderSecret", {"type": "apiKey", "in": "header", "name": "X-Bridge-Secret"}
    )
    spec.components.schema("Problem", schema=views.ProblemView)
    spec.components.schema("SubmissionAnswer", schema=views.SubmissionAnswer)
    spec.components.schema("SubmissionStatus", schema=views.SubmissionStatusView)
    bodies: dict[str, dict[str, Any]] = {}
    for service_id, schema_key, title, limits in services:
        name = component_name(service_id)
        bodies[name] = _json_schema(schema_key, limits)
        ref = {"$ref": f"#/components/schemas/{name}"}
        form = {
            "type": "object",
            "description": (
                f"Die Felder von {name} als Text, verschachtelte Felder mit Punkt "
                "(keeper.address.postal_code); Ja/Nein als true/false, on/off, ja/nein, 1/0; "
                "Daten auch als TT.MM.JJJJ."
            ),
        }
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
                            "application/x-www-form-urlencoded": {"schema": form},
                            "multipart/form-data": {
                                "schema": {
                                    **form,
                                    "description": f"{form['description']} Dateien als Teile.",
                                }
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
                        "400": problem("Fehlerhafter Aufbau der Anfrage"),
                        "401": problem("Fehlende oder falsche Zugangsdaten"),
                        "404": problem("Unbekannter Dienst"),
                        "413": problem("Zu groß"),
                        "415": problem("Nicht unterstütztes Datenformat"),
                        "422": problem("Ungültige Angaben; jedes fehlerhafte Feld wird genannt"),
                        "503": problem("Nicht gespeichert; bitte erneut senden"),
                    },
                }
            },
        )
    spec.path(
        path="/api/v1/submissions/{reference}",
        operations={
            "get": {
                "summary": "Status, Zustellungen und Verlauf eines Antrags",
                "security": BEARER,
                "parameters": [path_param("reference")],
                "responses": {
                    "200": {
                        "description": "Der Antrag",
                        "content": {"application/json": {"schema": "SubmissionStatus"}},
                    },
                    "401": problem("Fehlendes, falsches, abgelaufenes oder widerrufenes Token"),
                    "403": problem("Rolle reicht nicht (viewer nötig) oder Token einer Stelle"),
                    "404": problem("Unbekannter Antrag"),
                },
            }
        },
    )
    spec.path(
        path="/api/v1/submissions/{reference}/attachments/{sha256}",
        operations={
            "get": {
                "summary": "Eine Anlage abrufen (Abruflink einer Zustellung)",
                "description": (
                    "Mit dem signierten Abruflink aus der Zustellung (delivery, expires, "
                    "signature) nur für die Stelle dieser Zustellung und bis zum Ablauf; "
                    "sonst mit einem Token (viewer) oder dem Token einer Stelle, an die der "
                    "Antrag zugestellt wurde."
                ),
                "security": [{}, *BEARER],
                "parameters": [
                    path_param("reference"),
                    path_param("sha256", pattern="^[0-9a-f]{64}$"),
                    {"name": "delivery", "in": "query", "schema": {"type": "string"}},
                    {"name": "expires", "in": "query", "schema": {"type": "integer"}},
                    {"name": "signature", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {
                        "description": "Der Inhalt der Anlage",
                        "content": {"application/octet-stream": {}},
                    },
                    "401": problem("Weder gültiger Abruflink noch gültiges Token"),
                    "403": problem(
                        "Abruflink ungültig oder abgelaufen, oder Antrag einer anderen Stelle"
                    ),
                    "404": problem("Unbekannter Antrag oder unbekannte Anlage"),
                },
            }
        },
    )
    _token_paths(spec)
    office = path_param("office_id")
    spec.path(
        path="/api/v1/inbox/{office_id}/cases",
        operations={
            "get": {
                "summary": "Offene Fälle einer Stelle mit Abholung (älteste zuerst)",
                "security": BEARER,
                "parameters": [
                    office,
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                    },
                ],
                "responses": {
                    "200": {"description": "Die offenen Fälle, je mit ihrer Zustellungs-ID"},
                    "401": problem("Unbekannte Stelle oder falsches Token der Stelle"),
                },
            }
        },
    )
    spec.path(
        path="/api/v1/inbox/{office_id}/cases/{delivery_id}/ack",
        operations={
            "post": {
                "summary": "Abholung eines Falls bestätigen",
                "security": BEARER,
                "parameters": [
                    office,
                    path_param("delivery_id"),
                ],
                "requestBody": json_body({"case_number": {"type": "string", "maxLength": 200}}),
                "responses": {
                    "200": {"description": "Bestätigt; der Fall ist zugestellt"},
                    "401": problem("Unbekannte Stelle oder falsches Token der Stelle"),
                    "404": problem("Unbekannter Fall"),
                    "409": problem("Der Fall ist nicht offen"),
                    "422": problem("Ungültiges Aktenzeichen der Stelle"),
                },
            }
        },
    )
    add_payment_paths(spec)
    add_admin_paths(spec)
    for path, summary in (
        ("/healthz", "Lebt der Dienst?"),
        ("/readyz", "Datenbank und Redis erreichbar?"),
    ):
        spec.path(
            path=path,
            operations={"get": {"summary": summary, "responses": {"200": {"description": "ok"}}}},
        )
    result: dict[str, Any] = spec.to_dict()
    # Added after apispec, which would read a JSON Schema "false" (a property that must be
    # absent) as a component name; a copy, so the cached published schema stays as it is.
    result["components"]["schemas"].update(copy.deepcopy(bodies))
    add_delivery_webhooks(result)
    return result


def _token_paths(spec: APISpec) -> None:
    """The caller's own token and the admin's list and revocation of tokens."""
    spec.path(
        path="/api/v1/me",
        operations={
            "get": {
                "summary": "Wer bin ich: Name, Rolle und Stelle des Tokens",
                "security": BEARER,
                "responses": {
                    "200": {"description": "Name, Rolle, Zugang, Stelle"},
                    "401": problem("Fehlendes, falsches, abgelaufenes oder widerrufenes Token"),
                },
            }
        },
    )
    spec.path(
        path="/api/v1/tokens",
        operations={
            "get": {
                "summary": "Alle API-Tokens mit Rolle, Stelle, Ablauf und letzter Nutzung (admin)",
                "security": BEARER,
                "responses": {
                    "200": {"description": "Die Tokens (nie ihr Geheimnis)"},
                    "401": problem("Fehlendes, falsches, abgelaufenes oder widerrufenes Token"),
                    "403": problem("Dafür ist die Rolle admin nötig"),
                },
            }
        },
    )
    spec.path(
        path="/api/v1/tokens/{name}/revoke",
        operations={
            "post": {
                "summary": "Ein Token sofort widerrufen (admin, protokolliert)",
                "security": BEARER,
                "parameters": [path_param("name")],
                "requestBody": json_body({"reason": {"type": "string", "maxLength": 500}}),
                "responses": {
                    "200": {"description": "Widerrufen"},
                    "401": problem("Fehlendes, falsches, abgelaufenes oder widerrufenes Token"),
                    "403": problem("Dafür ist die Rolle admin nötig"),
                    "404": problem("Unbekanntes Token"),
                    "422": problem("Ungültige Begründung"),
                },
            }
        },
    )
