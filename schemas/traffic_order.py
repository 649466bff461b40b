"""Schema ``traffic-order@1``: "Verkehrsrechtliche Anordnung" (LeiKa 99108011153000).

Covers temporary no-parking zones (moves, deliveries, containers, cranes, scaffolds, events)
and construction sites, which need construction details and a site plan.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, ClassVar

from marshmallow import ValidationError, validate, validates_schema

from schemas.blocks import (
    END_OF_DAY,
    MIDNIGHT,
    AttachmentSchema,
    BridgeSchema,
    Choice,
    CompanySchema,
    DateTime,
    Int,
    Nested,
    PersonSchema,
    ServiceBaseSchema,
    Str,
    is_given,
    phone_field,
    postal_code_field,
    title,
)
from schemas.messages import Msg
from schemas.options import LOCAL_TZ

#: The choices with their German labels (what clerks read; forms may send the labels too).
APPLICANT_KINDS = {"person": "Privatperson", "company": "Firma"}
REASONS = {
    "move": "Umzug",
    "delivery": "Lieferung",
    "construction": "Baustelle",
    "container": "Container",
    "crane": "Kran",
    "scaffold": "Gerüst",
    "event": "Veranstaltung",
}
SIDES = {
    "left": "links",
    "right": "rechts",
    "both": "beide Straßenseiten",
    "even": "gerade Hausnummern",
    "odd": "ungerade Hausnummern",
}
CLOSURE_TYPES = {
    "carriageway": "Fahrbahn",
    "footpath": "Gehweg",
    "cycle_path": "Radweg",
    "partial": "Teilsperrung",
}

APPLICANT_KIND_ALIASES = {
    "Privatperson": "person",
    "privat": "person",
    "Firma": "company",
    "Unternehmen": "company",
}
REASON_ALIASES = {
    "Umzug": "move",
    "Einzug": "move",
    "Auszug": "move",
    "Lieferung": "delivery",
    "Anlieferung": "delivery",
    "Baustelle": "construction",
    "Kran": "crane",
    "Autokran": "crane",
    "Gerüst": "scaffold",
    "Veranstaltung": "event",
}
SIDE_ALIASES = {
    "links": "left",
    "rechts": "right",
    "beide": "both",
    "beidseitig": "both",
    "gerade": "even",
    "ungerade": "odd",
}
CLOSURE_ALIASES = {
    "Fahrbahn": "carriageway",
    "Gehweg": "footpath",
    "Radweg": "cycle_path",
    "teilweise": "partial",
}

PERSON_REQUIRED = Msg(
    "Bitte machen Sie die Angaben zur antragstellenden Person.",
    "Please provide the details of the applying person.",
)
COMPANY_REQUIRED = Msg(
    "Bitte machen Sie die Angaben zur antragstellenden Firma.",
    "Please provide the details of the applying company.",
)
PERSON_NOT_ALLOWED = Msg(
    "Wenn eine Firma den Antrag stellt, bitte keine Angaben zu einer Privatperson machen.",
    "When a company applies, please leave out the details of a private person.",
)
COMPANY_NOT_ALLOWED = Msg(
    "Wenn eine Privatperson den Antrag stellt, bitte keine Firmenangaben machen.",
    "When a private person applies, please leave out the company details.",
)
# The earliest start is local time in Hesse; the English text says so.
START_IN_PAST = Msg(
    "Der Beginn liegt in der Vergangenheit. "
    "Frühestmöglicher Beginn: {earliest:%d.%m.%Y, %H:%M} Uhr.",
    "The start lies in the past. "
    "Earliest possible start: {earliest:%d.%m.%Y, %H:%M} (German time).",
)
START_TOO_SOON = Msg(
    "Der Beginn muss mindestens {hours} Stunden nach dem Eingang des Antrags liegen, damit "
    "die Schilder rechtzeitig stehen. Frühestmöglicher Beginn: {earliest:%d.%m.%Y, %H:%M} Uhr.",
    "The start must be at least {hours} hours after the application arrives, so that the "
    "signs can be put up in time. "
    "Earliest possible start: {earliest:%d.%m.%Y, %H:%M} (German time).",
)
END_NOT_AFTER_START = Msg(
    "Das Ende muss nach dem Beginn liegen.", "The end must be after the start."
)
ZONE_LENGTH_INVALID = Msg(
    "Die Länge der Zone muss zwischen {min} und {max} Metern liegen.",
    "The zone must be between {min} and {max} metres long.",
)
VEHICLES_INVALID = Msg(
    "Die Anzahl der Fahrzeuge muss mindestens 1 sein.", "The number of vehicles must be at least 1."
)
CONSTRUCTION_REQUIRED = Msg(
    "Bei einer Baustelle sind Angaben zur Baustelle erforderlich "
    "(Art der Sperrung, Firma, verantwortliche Person).",
    "For a construction site, the construction details are required "
    "(type of closure, firm, responsible person).",
)
CONSTRUCTION_NOT_ALLOWED = Msg(
    "Angaben zur Baustelle sind nur beim Anlass „Baustelle“ möglich.",
    "Construction details are only possible when the reason is a construction site.",
)
SITE_PLAN_REQUIRED = Msg(
    "Für eine Baustelle ist ein Lageplan (Verkehrszeichenplan) als Anlage erforderlich.",
    "For a construction site, a site plan (traffic sign plan) must be attached.",
)


# Per applicant kind: the other block, the message if the own block is missing, and the
# message if the other block is present.
_APPLICANT_BLOCKS = {
    "person": ("company", PERSON_REQUIRED, COMPANY_NOT_ALLOWED),
    "company": ("person", COMPANY_REQUIRED, PERSON_NOT_ALLOWED),
}


def _only_with(kind: str, other: str) -> dict[str, Any]:
    """JSON Schema: when ``kind`` is chosen, its block is required and the other one absent."""
    return {
        "properties": {"kind": {"const": kind}, other: False},
        "required": ["kind", kind],
    }


class ApplicantSchema(BridgeSchema):
    """Who applies: a private person or a company, with exactly the matching block."""

    json_schema_extra: ClassVar[dict[str, Any]] = {
        "anyOf": [_only_with("person", "company"), _only_with("company", "person")]
    }

    kind = Choice(
        APPLICANT_KINDS,
        aliases=APPLICANT_KIND_ALIASES,
        required=True,
        metadata=title("Antragsteller ist"),
    )
    person = Nested(
        PersonSchema,
        metadata=title("Privatperson", required_when="der Antragsteller eine Privatperson ist"),
    )
    company = Nested(
        CompanySchema, metadata=title("Firma", required_when="der Antragsteller eine Firma ist")
    )

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _check_kind(
        self, data: dict[str, Any], original_data: Mapping[str, Any], **kwargs: Any
    ) -> None:
        kind = data.get("kind")
        if kind is None:
            return  # missing or invalid: reported on the field itself
        other, missing, extra = _APPLICANT_BLOCKS[kind]
        errors: dict[str, list[Msg]] = {}
        if not is_given(original_data, kind):
            errors[kind] = [missing]
        if is_given(original_data, other):
            errors[other] = [extra]
        if errors:
            raise ValidationError(errors)


class LocationSchema(BridgeSchema):
    """Where the zone is: one address (a move needs one order per address) and the side."""

    street = Str(required=True, max_length=100, metadata=title("Straße"))
    house_number = Str(required=True, max_length=10, metadata=title("Hausnummer"))
    postal_code = postal_code_field(required=True)
    town = Str(required=True, max_length=100, metadata=title("Ort"))
    side = Choice(SIDES, aliases=SIDE_ALIASES, required=True, metadata=title("Straßenseite"))


def earliest_start(now: dt.datetime, lead_hours: int) -> dt.datetime:
    """The earliest allowed start: ``lead_hours`` real hours after ``now``, in local time.

    Counted on the time line (UTC), so a DST change in between does not gain or lose an
    hour, and rounded up to the full minute, the precision the message shows.
    """
    instant = now.astimezone(dt.UTC) + dt.timedelta(hours=lead_hours)
    if instant.second or instant.microsecond:
        instant = instant.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    return instant.astimezone(LOCAL_TZ)


class PeriodSchema(BridgeSchema):
    """When the zone applies; a bare date means from 00:00 / until 23:59 local time."""

    start = DateTime(
        required=True,
        date_only_time=MIDNIGHT,
        metadata=title(
            "Beginn",
            "Frühestens {lead_hours} Stunden nach dem Eingang des Antrags; ein Datum allein "
            "bedeutet 00:00 Uhr, eine Zeit ohne Zeitzone Ortszeit (Europe/Berlin).",
        ),
    )
    end = DateTime(
        required=True,
        date_only_time=END_OF_DAY,
        metadata=title(
            "Ende",
            "Nach dem Beginn; ein Datum allein bedeutet 23:59 Uhr, eine Zeit ohne Zeitzone "
            "Ortszeit (Europe/Berlin).",
        ),
    )

    @validates_schema(skip_on_field_errors=False)
    def _check_period(self, data: dict[str, Any], **kwargs: Any) -> None:
        # One schema-level check instead of a field validator, so that a start failing the
        # lead time is still compared with the end and both problems are reported.
        errors: dict[str, list[Msg]] = {}
        start, end = data.get("start"), data.get("end")
        if start is not None:
            options = self.options
            earliest = earliest_start(options.now, options.lead_hours)
            if start < options.now:
                errors["start"] = [START_IN_PAST.format(earliest=earliest)]
            elif start < earliest:
                errors["start"] = [
                    START_TOO_SOON.format(hours=options.lead_hours, earliest=earliest)
                ]
        if start is not None and end is not None and end <= start:
            errors["end"] = [END_NOT_AFTER_START]
        if errors:
            raise ValidationError(errors)


class ResponsiblePersonSchema(BridgeSchema):
    """The person responsible on site, reachable by phone."""

    name = Str(required=True, max_length=200, metadata=title("Name"))
    phone = phone_field(required=True)


class ConstructionSchema(BridgeSchema):
    """Details of a construction site (Arbeitsstelle)."""

    closure_type = Choice(
        CLOSURE_TYPES, aliases=CLOSURE_ALIASES, required=True, metadata=title("Art der Sperrung")
    )
    firm = Str(required=True, max_length=200, metadata=title("Ausführende Firma"))
    responsible_person = Nested(
        ResponsiblePersonSchema, required=True, metadata=title("Verantwortliche Person")
    )


class TrafficOrderSchema(ServiceBaseSchema):
    """Version 1 of "Verkehrsrechtliche Anordnung"."""

    json_schema_extra: ClassVar[dict[str, Any]] = {
        "anyOf": [
            {
                "properties": {"reason": {"const": "construction"}},
                "required": ["reason", "construction", "site_plan"],
            },
            {
                "properties": {
                    "reason": {"enum": [r for r in REASONS if r != "construction"]},
                    "construction": False,
                }
            },
        ]
    }

    applicant = Nested(ApplicantSchema, required=True, metadata=title("Antragsteller"))
    reason = Choice(REASONS, aliases=REASON_ALIASES, required=True, metadata=title("Anlass"))
    location = Nested(LocationSchema, required=True, metadata=title("Ort der Zone"))
    period = Nested(PeriodSchema, required=True, metadata=title("Zeitraum"))
    # The bounds are configured per service; the JSON Schema shows the configured ones.
    zone_length_m = Int(
        required=True,
        option_bounds=("min_zone_m", "max_zone_m"),
        bounds_error=ZONE_LENGTH_INVALID,
        metadata=title("Länge der Zone in Metern", "{min_zone_m} bis {max_zone_m} m."),
    )
    vehicles = Int(
        validate=validate.Range(min=1, error=VEHICLES_INVALID),
        metadata=title("Anzahl der Fahrzeuge"),
    )
    construction = Nested(
        ConstructionSchema,
        metadata=title(
            "Angaben zur Baustelle", required_when="der Anlass „Baustelle“ ist (sonst leer lassen)"
        ),
    )
    site_plan = Nested(
        AttachmentSchema,
        metadata=title(
            "Lageplan / Verkehrszeichenplan (bei Baustellen)",
            required_when="der Anlass „Baustelle“ ist",
        ),
    )

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _check_construction(
        self, data: dict[str, Any], original_data: Mapping[str, Any], **kwargs: Any
    ) -> None:
        reason = data.get("reason")
        if reason is None:
            return  # missing or invalid: reported on the field itself
        errors: dict[str, list[Msg]] = {}
        if reason == "construction":
            if not is_given(original_data, "construction"):
                errors["construction"] = [CONSTRUCTION_REQUIRED]
            if not is_given(original_data, "site_plan"):
                errors["site_plan"] = [SITE_PLAN_REQUIRED]
        elif is_given(original_data, "construction"):
            errors["construction"] = [CONSTRUCTION_NOT_ALLOWED]
        if errors:
            raise ValidationError(errors)
