"""The payment part of /openapi.json: the citizen's pay link and return, the providers'
callbacks, and the callback journal of the administrators' case detail.

The pay routes answer German HTML pages (the citizen's browser), the callback JSON or
problem+json (the provider). Described here so that a fuzzer or a reviewer sees every public
route, and that a provider's refused call is an answer, not stored application data.
"""

from __future__ import annotations

from typing import Any

from apispec import APISpec

from bridge.api.openapi_parts import path_param, problem

_PAGE = {"text/html": {"schema": {"type": "string"}}}
_TOKEN = {
    "type": "string",
    "pattern": "^[0-9]{1,12}-[0-9a-f]{64}$",
    "description": "Signierter Zahlungslink: Ablauf (Unix-Sekunden) und HMAC-SHA256",
}


def _page(description: str, **headers: str) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": _PAGE}
    if headers:
        answer["headers"] = {name: {"schema": {"type": "string"}} for name in headers}
    return answer


#: One entry of the payment callback journal (`GET /api/v1/submissions/{reference}/detail`).
JOURNAL_ENTRY: dict[str, Any] = {
    "type": "object",
    "description": (
        "Ein eingegangener Aufruf zu einer Zahlung des Antrags: Nachricht des Bezahldienstes "
        "(notify) oder Rückkehr der Bürgerin/des Bürgers (return), mit dem Ergebnis. Ohne "
        "Absenderadresse und Inhalt; nach BRIDGE_PAYMENT_JOURNAL_DAYS gelöscht."
    ),
    "properties": {
        "at": {"type": "string", "format": "date-time"},
        "provider": {"type": "string", "description": "Bezahldienst aus der Routing-Datei"},
        "kind": {"type": "string", "enum": ["notify", "return"]},
        "verdict": {
            "type": "string",
            "description": (
                "applied, open, duplicate, final, amount_mismatch, unknown, not_confirmable, "
                "not_confirmed, rate_limited, too_large, unreadable, provider_unconfigured, "
                "unknown_payment, transaction_mismatch; received: noch in Bearbeitung"
            ),
        },
        "payment_id": {"type": ["string", "null"]},
        "detail": {"type": ["string", "null"], "description": "Grund einer Ablehnung"},
    },
    "required": ["at", "provider", "kind", "verdict", "payment_id", "detail"],
}

#: The administrators' view of one case (`domain.admin.case_view.SubmissionDetail`).
SUBMISSION_DETAIL: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "reference": {"type": "string"},
        "service": {"type": "string"},
        "service_title": {"type": "string"},
        "municipality_ags": {"type": "string"},
        "municipality": {"type": "string"},
        "status": {"type": "string"},
        "received_at": {"type": "string", "format": "date-time"},
        "personal_data_kept": {"type": "boolean"},
        "deliveries": {"type": "array", "items": {"type": "object"}},
        "payment": {"type": ["object", "null"]},
        "timeline": {"type": "array", "items": {"type": "object"}},
        "payment_journal": {
            "type": "array",
            "description": "Die letzten 100 Aufrufe zu den Zahlungen des Antrags, älteste zuerst",
            "items": {"$ref": "#/components/schemas/PaymentJournalEntry"},
        },
    },
    "required": [
        "id",
        "reference",
        "service",
        "status",
        "received_at",
        "deliveries",
        "payment",
        "timeline",
        "payment_journal",
    ],
}


def add_payment_paths(spec: APISpec) -> None:
    """Describe the pay link, the return and the providers' callback in `spec`."""
    spec.components.schema("PaymentJournalEntry", component=JOURNAL_ENTRY)
    spec.components.schema("SubmissionDetail", component=SUBMISSION_DETAIL)
    reference = path_param("reference")
    refused_link = {
        "403": _page("Token ungültig oder verändert"),
        "404": _page("Ohne Token (alter Link): Hinweis, wo der neue Link steht; oder keine Gebühr"),
        "410": _page("Token abgelaufen"),
        "429": _page("Zu viele Anfragen", **{"Retry-After": ""}),
    }
    spec.path(
        path="/pay/{reference}",
        operations={
            "get": {
                "summary": "Bezahlseite: Betrag, Verwendungszweck, „Jetzt bezahlen“ (ändert nichts)",
                "parameters": [reference, {"name": "token", "in": "query", "schema": _TOKEN}],
                "responses": {
                    "200": _page(
                        "Die Bezahlseite (setzt das Cookie bridge_pay für den CSRF-Schutz), "
                        "oder: bezahlt, zurückgezogen"
                    ),
                    **refused_link,
                },
            },
            "post": {
                "summary": "„Jetzt bezahlen“: Transaktion anlegen (oder die offene nutzen), "
                "weiter zum Bezahldienst",
                "parameters": [reference],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "token": _TOKEN,
                                    "csrf_token": {
                                        "type": "string",
                                        "description": "Wert aus dem Formular der Bezahlseite "
                                        "(passend zum Cookie bridge_pay)",
                                    },
                                },
                                "required": ["token", "csrf_token"],
                            }
                        }
                    },
                },
                "responses": {
                    "303": {
                        "description": "Weiter zur Bezahlseite des Bezahldienstes",
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    },
                    "200": _page("Schon bezahlt, zurückgezogen, oder noch in Prüfung"),
                    **refused_link,
                    "403": _page("Token ungültig, oder CSRF-Token/Cookie fehlt oder passt nicht"),
                    "503": _page(
                        "Bezahldienst nicht erreichbar; der Link bleibt gültig",
                        **{"Retry-After": ""},
                    ),
                },
            },
        },
    )
    spec.path(
        path="/pay/{reference}/return",
        operations={
            "get": {
                "summary": "Rückkehr vom Bezahldienst: Status erfragen und anzeigen",
                "description": "Das Kassenzeichen und der Link zum erneuten Bezahlen nur mit Token.",
                "parameters": [
                    reference,
                    {
                        "name": "payment",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                    {"name": "token", "in": "query", "schema": _TOKEN},
                ],
                "responses": {
                    "200": _page("Bezahlt, noch offen oder nicht abgeschlossen"),
                    "404": _page("Keine Zahlung unter diesem Link"),
                    "429": _page("Zu viele Anfragen", **{"Retry-After": ""}),
                },
            }
        },
    )
    spec.path(
        path="/webhooks/payments/{provider_id}",
        operations={
            "post": {
                "summary": "Nachricht eines Bezahldienstes (nur Anlass, den Status zu erfragen)",
                "description": (
                    "Jeder Aufruf eines eingerichteten Bezahldienstes wird im Journal vermerkt "
                    "(auch abgelehnte); übernommen wird nur, was der Statusabruf beim "
                    "Bezahldienst bestätigt."
                ),
                "parameters": [
                    path_param("provider_id"),
                    {"name": "payment", "in": "query", "schema": {"type": "string"}},
                ],
                "requestBody": {
                    "content": {
                        "application/json": {"schema": {"type": "object"}},
                        "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
                    }
                },
                "responses": {
                    "200": {
                        "description": "Verarbeitet: payment, status, result (das Ergebnis)",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "payment": {"type": "string"},
                                        "status": {"type": ["string", "null"]},
                                        "result": {"type": "string"},
                                    },
                                }
                            }
                        },
                    },
                    "400": problem("Nachricht nicht lesbar"),
                    "404": problem("Unbekannter Bezahldienst oder unbekannte Zahlung"),
                    "409": problem("Transaktion passt nicht zur Zahlung"),
                    "413": problem("Größer als 64 KB"),
                    "422": problem("Betrag weicht ab oder Zahlung nicht bestätigt"),
                    "429": problem("Zu viele Nachrichten (Retry-After)"),
                    "503": problem("Nicht bestätigbar oder nicht gespeichert (Retry-After)"),
                },
            }
        },
    )
