"""The published delivery contract: JSON Schemas (2020-12) of what the channels send to offices.

One document per registered service schema version (the case envelope of `envelope_json`, its
``data`` made by `schemas.jsonschema` from the marshmallow schema that validated it) and one for
the cash office's payment notice. The bridge serves them under ``/schemas/deliveries/`` and
carries them in ``/openapi.json``'s ``webhooks``; the demo back office checks every document it
receives against them. Each is exact: every key the bridge sends is listed and nothing else is
sent, so a key added without publishing it fails the suite. Only ``flags`` stays an open
object (its keys are each service's flagger's business).
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

from integrations.channels.base import ENVELOPE_VERSION, EVENT_TYPE, NOTICE_TYPE
from integrations.channels.xml import XSD_PATH
from schemas import SCHEMAS
from schemas.blocks import MIME_PATTERN, SHA256_PATTERN
from schemas.jsonschema import BASE64_PATTERN, JSON_SCHEMA_DIALECT, json_schema
from store.models import PaymentStatus

#: The name of the payment notice's document (``/schemas/deliveries/payment-notice.json``).
PAYMENT_NOTICE = "payment-notice"
#: The published XSDs, by file name (``/schemas/xml/<file>``): every one the channels ship.
XSD_FILES: dict[str, Path] = {path.name: path for path in sorted(XSD_PATH.parent.glob("*.xsd"))}
#: UTC with a Z, as `base.iso_utc` writes every moment of an envelope.
UTC_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?Z$"
REFERENCE_PATTERN = r"^[A-Z]+-[0-9]{4}-[0-9]+$"
AMOUNT_PATTERN = r"^[0-9]+\.[0-9]{2}$"


def _string(title: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "title": title, **extra}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "type": [schema["type"], "null"]}


def _object(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An object with exactly these keys, all of them present."""
    return {
        "type": "object",
        "properties": properties,
        "required": sorted(properties),
        "additionalProperties": False,
        **extra,
    }


def _moment(title: str) -> dict[str, Any]:
    return _string(title, format="date-time", pattern=UTC_PATTERN)


PAYMENT: dict[str, Any] = _object(
    {
        "status": _string(
            "Status der Zahlung",
            enum=[s.value for s in PaymentStatus],
            description="PAYED oder BOOKED: bezahlt; die übrigen: (noch) nicht bezahlt.",
        ),
        "amount": _string("Betrag in Euro", pattern=AMOUNT_PATTERN, examples=["25.00"]),
        "currency": _string("Währung", examples=["EUR"]),
        "purpose": _string("Verwendungszweck"),
        "provider": _string("Bezahldienst (Name in der Routing-Datei)"),
        "transaction_id": _nullable(_string("Vorgangsnummer beim Bezahldienst")),
        "transaction_reference": _nullable(_string("Referenz des Bezahldienstes")),
        "method": _nullable(_string("Zahlart")),
        "paid_at": _nullable(_moment("Bezahlt am (UTC)")),
    },
    title="Zahlung",
)

ATTACHMENT: dict[str, Any] = _object(
    {
        "field": _string("Feld des Antrags, zu dem die Datei gehört", examples=["attachments"]),
        "filename": _string("Dateiname (von der Brücke neu gebildet)", minLength=1),
        "content_type": _string("Dateityp (MIME)", pattern=MIME_PATTERN),
        "size": {"type": "integer", "title": "Größe in Byte", "minimum": 1},
        "sha256": _string("SHA-256 des Inhalts (hexadezimal)", pattern=SHA256_PATTERN),
        "content_base64": _nullable(
            _string(
                "Inhalt (Base64)",
                contentEncoding="base64",
                pattern=BASE64_PATTERN,
                description="Bis inline_limit_bytes mitgesendet, sonst null: dann fetch_url.",
            )
        ),
        "fetch_url": _nullable(
            _string(
                "Signierter Abruflink",
                format="uri",
                description=(
                    "GET ohne Token; gilt für diese Zustellung bis zum Ablauf "
                    "(BRIDGE_FETCH_LINK_HOURS), jede Zustellung bringt neue Links."
                ),
            )
        ),
    },
    title="Anlage",
)


def _envelope(
    *,
    title: str,
    description: str,
    document_id: str,
    event: str,
    kind: str,
    schema_key: dict[str, Any],
    data: dict[str, Any],
    flags: dict[str, Any],
    attachments: dict[str, Any],
    payment: dict[str, Any],
) -> dict[str, Any]:
    """The envelope of `envelope_json` with these parts."""
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"urn:formcycle-bridge:delivery:{document_id}",
        "title": title,
        "description": description,
        **_object(
            {
                "type": {"const": event, "title": "Art des Dokuments"},
                "version": {"const": ENVELOPE_VERSION, "title": "Version des Umschlags"},
                "kind": {"const": kind},
                "timestamp": _moment("Eingang des Antrags (UTC), wie received_at"),
                "delivery_id": _string(
                    "Zustellungs-ID",
                    description=(
                        "Gleich in jeder Wiederholung und erneuten Zustellung (auch webhook-id "
                        "und Idempotency-Key): Wiederholungen an ihr erkennen."
                    ),
                    minLength=1,
                    maxLength=64,
                ),
                "reference": _string("Aktenzeichen der Brücke", pattern=REFERENCE_PATTERN),
                "service": _object(
                    {
                        "id": _string("Online-Dienst"),
                        "title": _string("Name des Online-Dienstes"),
                        "leika": _string("LeiKa-Schlüssel"),
                        "schema": schema_key,
                    }
                ),
                "municipality": _object(
                    {
                        "ags": _string("Amtlicher Gemeindeschlüssel"),
                        "ars": _string("Amtlicher Regionalschlüssel"),
                        "name": _string("Gemeinde"),
                    }
                ),
                "office": _object(
                    {
                        "id": _string("Zustellpunkt"),
                        "name": _string("Name des Zustellpunkts"),
                        "task_area": _string("Aufgabenbereich"),
                    }
                ),
                "received_at": _moment("Eingang des Antrags (UTC)"),
                "data": data,
                "flags": flags,
                "attachments": attachments,
                "payment": payment,
            }
        ),
    }


def case_envelope_schema(key: str) -> dict[str, Any]:
    """The JSON Schema of a case envelope whose data has the schema ``key``; KeyError if unknown."""
    return copy.deepcopy(_case_envelope_schema(key))


@cache
def _case_envelope_schema(key: str) -> dict[str, Any]:
    service = SCHEMAS.get(key)
    data = json_schema(key, delivered=True)
    for name in ("$schema", "$id"):
        data.pop(name)
    return _envelope(
        title=f"Zustellung: {service.title_de} ({key})",
        description=(
            f"Der JSON-Umschlag eines Antrags {service.title_de} mit Daten nach Schema {key}, "
            "wie http-json ihn sendet und das Postfach ihn ausgibt."
        ),
        document_id=key,
        event=EVENT_TYPE,
        kind="case",
        schema_key={"const": key, "title": "Schema der Daten (Dienst@Version)"},
        data=data,
        flags={
            "type": "object",
            "title": "Abgeleitete Merkmale",
            "description": "Für die Weiterleitung bestimmt, z. B. dangerous_dog.",
        },
        attachments={"type": "array", "title": "Anlagen", "items": ATTACHMENT},
        payment=_nullable({**PAYMENT, "title": "Zahlung der Gebühr, falls eine fällig ist"}),
    )


def payment_notice_schema() -> dict[str, Any]:
    """The JSON Schema of the cash office's payment notice (``payment.received``)."""
    return copy.deepcopy(_payment_notice_schema())


@cache
def _payment_notice_schema() -> dict[str, Any]:
    return _envelope(
        title="Zahlungsmitteilung an die Kasse",
        description=(
            "Die Mitteilung über eine bezahlte Gebühr: die Zahlung, ohne die Angaben des Antrags."
        ),
        document_id=PAYMENT_NOTICE,
        event=NOTICE_TYPE,
        kind=PAYMENT_NOTICE,
        schema_key=_string("Schema des Antrags (Dienst@Version)"),
        data=_object({"payment": PAYMENT}),
        flags={"type": "object", "maxProperties": 0},
        attachments={"type": "array", "maxItems": 0},
        payment=PAYMENT,
    )


def delivery_schemas() -> dict[str, dict[str, Any]]:
    """Every published delivery schema by name: each registered schema key, and the notice."""
    published = {entry.key: case_envelope_schema(entry.key) for entry in SCHEMAS}
    published[PAYMENT_NOTICE] = payment_notice_schema()
    return published


def delivery_schema(name: str) -> dict[str, Any]:
    """The delivery schema ``name`` (a schema key or ``payment-notice``); KeyError if unknown."""
    if name == PAYMENT_NOTICE:
        return payment_notice_schema()
    return case_envelope_schema(name)


def schema_name_of(document: dict[str, Any]) -> str | None:
    """Which delivery schema a received JSON envelope claims to follow, or None if none."""
    if document.get("type") == NOTICE_TYPE:
        return PAYMENT_NOTICE
    service = document.get("service")
    key = service.get("schema") if isinstance(service, dict) else None
    return key if isinstance(key, str) else None
