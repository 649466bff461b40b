"""Valid sample payloads for the service schemas, as plain JSON-like dicts, for any test.

Dates are ISO strings relative to ``today`` (default `SAMPLE_TODAY`), so a payload stays
valid for ``ValidationOptions(now=...)`` on that day. The payloads are typed as JSON bodies. Changes are applied last: a mapping of dotted
paths as the first argument, and/or keyword overrides of top-level keys; the value `DELETE`
removes a key::

    dog_registration_payload({"dog.breed": "Rottweiler"}, tax_relief=DELETE)

(Dotted keys also work as ``**{...}`` at run time, but mypy rejects that unpacking because of
the keyword parameters, hence the positional mapping.)
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any, Final

from marshmallow import ValidationError

from schemas import SCHEMAS, Msg, ValidationOptions
from schemas.options import LOCAL_TZ


class _Delete:
    """Type of the `DELETE` marker."""

    def __repr__(self) -> str:
        """Readable in assertion output."""
        return "DELETE"


#: Use as an override value to remove the key from the payload.
DELETE: Final = _Delete()

#: The default "now" of the samples: a Monday at noon in Hesse.
SAMPLE_NOW: Final = dt.datetime(2026, 6, 1, 12, 0, tzinfo=LOCAL_TZ)
SAMPLE_TODAY: Final = SAMPLE_NOW.date()
#: The options the samples are valid with (JSON input).
SAMPLE_OPTIONS: Final = ValidationOptions(now=SAMPLE_NOW)


def apply_overrides(payload: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``payload`` with dotted-path ``overrides`` applied."""
    result = copy.deepcopy(payload)
    for path, value in overrides.items():
        *parents, last = path.split(".")
        node: Any = result
        for part in parents:
            key: Any = int(part) if isinstance(node, list) else part
            if isinstance(node, dict) and key not in node:
                node[key] = {}
            node = node[key]
        last_key: Any = int(last) if isinstance(node, list) else last
        if value is DELETE:
            del node[last_key]
        else:
            node[last_key] = copy.deepcopy(value)
    return result


def address(**overrides: Any) -> dict[str, Any]:
    """A German address in Neu-Anspach."""
    base = {
        "street": "Bahnhofstraße",
        "house_number": "26a",
        "postal_code": "61267",
        "town": "Neu-Anspach",
    }
    return apply_overrides(base, overrides)


def contact(**overrides: Any) -> dict[str, Any]:
    """E-mail and phone."""
    return apply_overrides(
        {"email": "erika.musterfrau@example.org", "phone": "+49 6081 1234-0"}, overrides
    )


def person(
    changes: Mapping[str, Any] | None = None, /, *, today: dt.date = SAMPLE_TODAY, **overrides: Any
) -> dict[str, Any]:
    """A private person, about 40 years old."""
    base = {
        "first_name": "Erika",
        "last_name": "Musterfrau",
        "birth_date": dt.date(today.year - 40, 3, 15).isoformat(),
        "address": address(),
        "contact": contact(),
    }
    return apply_overrides(base, {**(changes or {}), **overrides})


def company(**overrides: Any) -> dict[str, Any]:
    """A company with a contact person."""
    base = {
        "name": "Taunus Tiefbau GmbH",
        "contact_person": "Max Mustermann",
        "address": address(street="Industriestraße", house_number="7", postal_code="61250"),
        "contact": contact(email="info@taunus-tiefbau.example", phone="06081/12340"),
    }
    return apply_overrides(base, overrides)


def attachment(
    filename: str = "nachweis.pdf", content: bytes = b"%PDF-1.7 sample", **overrides: Any
) -> dict[str, Any]:
    """Attachment metadata as the intake layer extracts it from an upload."""
    base = {
        "filename": filename,
        "content_type": "application/pdf",
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
    }
    return apply_overrides(base, overrides)


def dog_registration_payload(
    changes: Mapping[str, Any] | None = None,
    /,
    *,
    today: dt.date = SAMPLE_TODAY,
    **overrides: Any,
) -> dict[str, Any]:
    """A valid ``dog-registration@1`` payload (a Labrador, no flags)."""
    base = {
        "municipality_ags": "06434007",
        "privacy_consent": True,
        "keeper": person(today=today),
        "dog": {
            "name": "Bello",
            "breed": "Labrador Retriever",
            "is_mixed_breed": False,
            "sex": "male",
            "colour": "schwarz",
            "birth_date": (today - dt.timedelta(days=400)).isoformat(),
            "microchip_number": "276098100123456",
            "acquisition_date": (today - dt.timedelta(days=300)).isoformat(),
            "acquisition_reason": "purchase",
        },
        "previous_keeper": {
            "name": "Zucht vom Feldberg",
            "address": address(street="Feldbergstraße", house_number="3", postal_code="61389"),
        },
        "dogs_in_household": 1,
        "liability_insurance": {"insurer": "Taunus Versicherung AG", "policy_number": "HV-123456"},
        "tax_relief": {"requested": False},
        "attachments": [attachment("kaufvertrag.pdf")],
    }
    return apply_overrides(base, {**(changes or {}), **overrides})


def traffic_order_payload(
    changes: Mapping[str, Any] | None = None,
    /,
    *,
    today: dt.date = SAMPLE_TODAY,
    applicant_kind: str = "person",
    reason: str = "move",
    **overrides: Any,
) -> dict[str, Any]:
    """A valid ``traffic-order@1`` payload.

    ``applicant_kind`` picks the person or company block; ``reason="construction"`` adds the
    construction details and the site plan it requires.
    """
    start = dt.datetime.combine(today + dt.timedelta(days=7), dt.time(7, 0))
    end = start.replace(hour=18)
    applicant: dict[str, Any] = {"kind": applicant_kind}
    applicant[applicant_kind] = person(today=today) if applicant_kind == "person" else company()
    base: dict[str, Any] = {
        "municipality_ags": "06434007",
        "privacy_consent": True,
        "applicant": applicant,
        "reason": reason,
        "location": {
            "street": "Bahnhofstraße",
            "house_number": "26a",
            "postal_code": "61267",
            "town": "Neu-Anspach",
            "side": "even",
        },
        "period": {"start": start.isoformat(), "end": end.isoformat()},
        "zone_length_m": 15,
        "vehicles": 1,
    }
    if reason == "construction":
        base["period"] = {
            "start": (today + dt.timedelta(days=14)).isoformat(),
            "end": (today + dt.timedelta(days=28)).isoformat(),
        }
        base["zone_length_m"] = 40
        base["construction"] = {
            "closure_type": "footpath",
            "firm": "Taunus Tiefbau GmbH",
            "responsible_person": {"name": "Max Mustermann", "phone": "0170 1234567"},
        }
        base["site_plan"] = attachment("verkehrszeichenplan.pdf", b"%PDF-1.7 plan")
    return apply_overrides(base, {**(changes or {}), **overrides})


def validation_errors(key: str, payload: Mapping[str, Any], **options: Any) -> dict[str, list[Msg]]:
    """Validate ``payload`` with schema ``key``; the errors by dotted path ({} if valid).

    ``options`` are `ValidationOptions` fields (``now`` defaults to `SAMPLE_NOW`). Fails
    if any message is not a bilingual `Msg`.
    """
    try:
        SCHEMAS.get(key).validate(payload, ValidationOptions(**{"now": SAMPLE_NOW, **options}))
    except ValidationError as error:
        found: dict[str, list[Msg]] = {}
        _collect(error.messages, (), found)
        return found
    return {}


def _collect(node: Any, path: tuple[str, ...], found: dict[str, list[Msg]]) -> None:
    """Walk an error tree like schemas.flatten_messages, keeping the Msg objects."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            _collect(value, path if key == "_schema" else (*path, str(key)), found)
    elif isinstance(node, list):
        for value in node:
            _collect(value, path, found)
    else:
        assert isinstance(node, Msg), f"not a bilingual message at {path}: {node!r}"
        found.setdefault(".".join(path) or "_schema", []).append(node)
