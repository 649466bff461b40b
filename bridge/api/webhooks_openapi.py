"""The deliveries part of /openapi.json: OpenAPI 3.1 ``webhooks``, the calls the bridge makes.

A back office's endpoint receives the case envelope (``case.created``) or the cash office's
payment notice (``payment.received``) as http-json or xml. The bodies are the published delivery
schemas (`integrations.channels.contract`, also at ``/schemas/deliveries/``) carried unchanged
as components; headers, the signature scheme and the answers are what
`integrations.channels.webhook.post_signed` sends and understands. apispec has no webhooks, so
they are added to its finished document.
"""

from __future__ import annotations

from typing import Any

from integrations.channels.base import EVENT_TYPE, NOTICE_TYPE
from integrations.channels.contract import PAYMENT_NOTICE, delivery_schemas
from integrations.channels.webhook import USER_AGENT
from integrations.channels.xml import XSD_PATH

SIGNATURE = (
    "Standard Webhooks v1, wenn der Zustellpunkt `signing_secret_env` hat: "
    "`webhook-signature: v1,<Base64>` (Leerzeichen-getrennte Liste), HMAC-SHA256 mit dem "
    "Base64-Teil des `whsec_...`-Geheimnisses als Schlüssel über "
    "`<webhook-id>.<webhook-timestamp>.<Rohdaten des Körpers>`. Vor dem Parsen prüfen, "
    "Zeitstempel auf ±5 Minuten. Anleitung mit geprüftem Python-Beispiel: docs/back-office.md."
)
_TEXT = {"type": "string"}


def _header(description: str, required: bool = True, **schema: Any) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": {**_TEXT, **schema}}


HEADERS: list[dict[str, Any]] = [
    {"name": "webhook-id", "in": "header"}
    | _header("Die Zustellungs-ID (= delivery_id): gleich bei jeder Wiederholung"),
    {"name": "Idempotency-Key", "in": "header"} | _header("Wie webhook-id"),
    {"name": "webhook-timestamp", "in": "header"}
    | _header("Zeitpunkt dieses Versuchs, Unix-Sekunden", pattern="^[0-9]+$"),
    {"name": "webhook-signature", "in": "header"}
    | _header(SIGNATURE, required=False, pattern="^v1,[A-Za-z0-9+/=]+( v1,[A-Za-z0-9+/=]+)*$"),
    {"name": "User-Agent", "in": "header"} | _header(f"`{USER_AGENT}`", required=False),
]
RETRIED = {
    "description": (
        "Wird wiederholt: nach Retry-After (Sekunden oder HTTP-Datum, höchstens 24 Stunden), "
        "sonst nach BRIDGE_RETRY_SCHEDULE; jeder Versuch zählt, nach dem letzten gilt die "
        "Zustellung als fehlgeschlagen."
    ),
    "headers": {"Retry-After": {"schema": _TEXT}},
}
RESPONSES: dict[str, Any] = {
    "2XX": {
        "description": (
            "Zugestellt. Eine JSON-Antwort darf das Aktenzeichen der Stelle nennen "
            "(`case_number`, bei http-json das Feld aus `case_number_field`). Auch eine "
            "Wiederholung (gleiche webhook-id) mit 2xx beantworten."
        ),
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"case_number": {"type": ["string", "integer"]}},
                }
            }
        },
    },
    "3XX": {"description": "Wird nicht verfolgt: die Zustellung schlägt sofort fehl."},
    "408": RETRIED,
    "429": RETRIED,
    "4XX": {
        "description": (
            "Jede andere 4xx (auch 409 und 410): die Zustellung schlägt sofort fehl und "
            "wartet auf erneutes Senden durch den Betrieb."
        )
    },
    "5XX": RETRIED,
}


def component_name(name: str) -> str:
    """The component of a published delivery schema (``delivery-dog-registration-v1``)."""
    return "delivery-" + name.replace("@", "-v")


def add_delivery_webhooks(document: dict[str, Any]) -> None:
    """Add the delivery schemas as components and the two calls as ``webhooks``."""
    published = delivery_schemas()
    document["components"]["schemas"].update(
        {component_name(name): schema for name, schema in published.items()}
    )
    document["components"].setdefault("securitySchemes", {})["webhookSignature"] = {
        "type": "apiKey",
        "in": "header",
        "name": "webhook-signature",
        "description": SIGNATURE,
    }
    cases = [name for name in published if name != PAYMENT_NOTICE]
    document["webhooks"] = {
        EVENT_TYPE: _call(
            "Ein Antrag an einen Zustellpunkt (http-json oder xml)",
            {"oneOf": [{"$ref": f"#/components/schemas/{component_name(n)}"} for n in cases]},
        ),
        NOTICE_TYPE: _call(
            "Mitteilung einer bezahlten Gebühr an die Kasse (http-json oder xml)",
            {"$ref": f"#/components/schemas/{component_name(PAYMENT_NOTICE)}"},
        ),
    }


def _call(summary: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "description": (
                "An die `url` des Zustellpunkts. Das JSON-Schema je Dienst und Version steht "
                "auch unter /schemas/deliveries/<schema>.json (service.schema des Umschlags), "
                f"das XML entspricht /schemas/xml/{XSD_PATH.name}."
            ),
            "security": [{"webhookSignature": []}, {}],
            "parameters": HEADERS,
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": schema},
                    "application/xml": {
                        "schema": {
                            **_TEXT,
                            "description": f"Gültig gegen /schemas/xml/{XSD_PATH.name}",
                        }
                    },
                },
            },
            "responses": RESPONSES,
        }
    }
