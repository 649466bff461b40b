"""The admin API's part of /openapi.json (kept apart so the main document's module stays small)."""

from __future__ import annotations

from typing import Any

from apispec import APISpec

from bridge.api.openapi_parts import BEARER, json_body, path_param, problem
from domain.admin.search import FILTER_KEYS, MAX_PER_PAGE, SUBMISSION_STATUSES

_FILTER_DOC = {
    "service": "Dienst, z. B. dog-registration",
    "municipality": "Kommune: Kennung (usingen) oder AGS (06434011)",
    "office": "Dienststelle, z. B. usingen-steueramt",
    "status": "Status des Antrags",
    "from": "Eingang ab diesem Tag (JJJJ-MM-TT, Europe/Berlin)",
    "to": "Eingang bis einschließlich diesem Tag (JJJJ-MM-TT, Europe/Berlin)",
    "reference": "Aktenzeichen, z. B. NA-2026-000123",
}


def _filter_schema() -> dict[str, Any]:
    props: dict[str, Any] = {
        k: {"type": "string", "maxLength": 100, "description": _FILTER_DOC[k]} for k in FILTER_KEYS
    }
    props["status"] = {**props["status"], "enum": list(SUBMISSION_STATUSES)}
    return {"type": "object", "properties": props, "additionalProperties": False}


def _query() -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": k, "in": "query", "schema": s} for k, s in _filter_schema()["properties"].items()
    ]
    params += [
        {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
        {
            "name": "per_page",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE},
        },
    ]
    return params


_REASON = {"type": "string", "maxLength": 500, "description": "Grund (wird protokolliert)"}


def add_admin_paths(spec: APISpec) -> None:
    """Describe every admin operation in `spec`."""
    refused = {
        "401": problem("Fehlendes oder falsches Token"),
        "403": problem("Die Rolle erlaubt das nicht"),
    }
    listing = {
        "200": {"description": "Eine Seite der Liste mit Gesamtzahl"},
        "400": problem("Ungültiger Filter; jeder fehlerhafte Wert wird genannt"),
        **refused,
    }
    action = {
        "200": {"description": "Erledigt, oder nichts zu tun (changed = false)"},
        "400": problem("Ungültiger Inhalt"),
        **refused,
        "404": problem("Unbekannt"),
        "409": problem("Nicht im passenden Zustand"),
        "413": problem("Zu groß"),
        "415": problem("Kein JSON"),
        "422": problem("Fehlende oder ungültige Angabe (z. B. Grund)"),
    }
    spec.path(
        path="/api/v1/submissions",
        operations={
            "get": {
                "summary": "Anträge suchen (neueste zuerst)",
                "security": BEARER,
                "parameters": _query(),
                "responses": listing,
            }
        },
    )
    spec.path(
        path="/api/v1/submissions/{reference}/detail",
        operations={
            "get": {
                "summary": "Ein Antrag für die Verwaltung: Zustellungen, Zahlung, Verlauf, "
                "Nachrichten der Bezahldienste",
                "security": BEARER,
                "parameters": [path_param("reference")],
                "responses": {
                    "200": {
                        "description": "Der Antrag",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/SubmissionDetail"}
                            }
                        },
                    },
                    **refused,
                    "404": problem("Unbekannt"),
                },
            }
        },
    )
    spec.path(
        path="/api/v1/deliveries/failed",
        operations={
            "get": {
                "summary": "Fehlgeschlagene Zustellungen mit letztem Fehler",
                "security": BEARER,
                "parameters": _query(),
                "responses": listing,
            }
        },
    )
    spec.path(
        path="/api/v1/overview",
        operations={
            "get": {
                "summary": "Übersicht: Zählungen, Fehler je Dienststelle und Tag, Warteschlange",
                "security": BEARER,
                "responses": {"200": {"description": "Die Übersicht"}, **refused},
            }
        },
    )
    spec.path(
        path="/api/v1/deliveries/{delivery_id}/replay",
        operations={
            "post": {
                "summary": "Eine fehlgeschlagene Zustellung erneut senden",
                "security": BEARER,
                "parameters": [path_param("delivery_id")],
                "requestBody": json_body({"reason": _REASON}, []),
                "responses": action,
            }
        },
    )
    spec.path(
        path="/api/v1/deliveries/{delivery_id}/reroute",
        operations={
            "post": {
                "summary": "An eine andere Dienststelle desselben Aufgabengebiets umleiten",
                "security": BEARER,
                "parameters": [path_param("delivery_id")],
                "requestBody": json_body(
                    {"office": {"type": "string", "maxLength": 64}, "reason": _REASON},
                    ["office", "reason"],
                ),
                "responses": action,
            }
        },
    )
    spec.path(
        path="/api/v1/submissions/{reference}/cancel",
        operations={
            "post": {
                "summary": "Alle offenen Zustellungen eines Antrags abbrechen",
                "security": BEARER,
                "parameters": [path_param("reference")],
                "requestBody": json_body({"reason": _REASON}, ["reason"]),
                "responses": action,
            }
        },
    )
    spec.path(
        path="/api/v1/replays",
        operations={
            "post": {
                "summary": "Sammel-Wiederholung nach Filter (mit Probelauf: genaue Anzahl)",
                "security": BEARER,
                "requestBody": json_body(
                    {"filter": _filter_schema(), "reason": _REASON, "dry_run": {"type": "boolean"}},
                    ["filter"],
                ),
                "responses": {
                    **action,
                    "200": {"description": "Probelauf: die genaue Anzahl"},
                    "202": {
                        "description": "Gestartet; Location zeigt auf den Lauf",
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    },
                },
            }
        },
    )
    spec.path(
        path="/api/v1/replays/{job_id}",
        operations={
            "get": {
                "summary": "Fortschritt einer Sammel-Wiederholung",
                "security": BEARER,
                "parameters": [path_param("job_id", "integer")],
                "responses": {
                    "200": {"description": "Der Lauf"},
                    **refused,
                    "404": problem("Unbekannt"),
                },
            }
        },
    )
    spec.path(
        path="/api/v1/replays/{job_id}/cancel",
        operations={
            "post": {
                "summary": "Sammel-Wiederholung abbrechen (noch nicht Gesendetes bleibt fehlgeschlagen)",
                "security": BEARER,
                "parameters": [path_param("job_id", "integer")],
                "requestBody": json_body({"reason": _REASON}, ["reason"]),
                "responses": action,
            }
        },
    )
