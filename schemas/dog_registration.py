"""Schema ``dog-registration@1``: "Hund anmelden" (dog tax registration, LeiKa 99102013104000)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from marshmallow import ValidationError, validate, validates_schema

from schemas.blocks import (
    AddressSchema,
    Bool,
    BridgeSchema,
    Choice,
    Date,
    Int,
    List,
    Nested,
    Pattern,
    PersonSchema,
    ServiceBaseSchema,
    Str,
    is_given,
    title,
)
from schemas.breeds import DANGEROUS_BREEDS, dangerous_breeds
from schemas.messages import Msg

MICROCHIP_PATTERN = r"^[0-9]{15}$"

MICROCHIP_INVALID = Msg(
    "Die Transpondernummer muss aus genau 15 Ziffern bestehen.",
    "The microchip number must consist of exactly 15 digits.",
)
SEX_INVALID = Msg(
    "Bitte geben Sie das Geschlecht an: männlich (Rüde) oder weiblich (Hündin).",
    "Please state the sex: male or female.",
)
BREED_REQUIRED = Msg("Bitte geben Sie die Rasse an.", "Please state the breed.")
MAIN_BREEDS_REQUIRED = Msg(
    "Bitte geben Sie bei einem Mischling mindestens eine Hauptrasse an.",
    "For a mixed breed, please state at least one main breed.",
)
ACQUIRED_BEFORE_BIRTH = Msg(
    "Das Datum der Anschaffung darf nicht vor dem Geburtsdatum des Hundes liegen.",
    "The acquisition date must not be before the dog's date of birth.",
)
DOGS_IN_HOUSEHOLD_INVALID = Msg(
    "Die Anzahl der Hunde im Haushalt muss mindestens 1 sein (dieser Hund zählt mit).",
    "The number of dogs in the household must be at least 1 (including this dog).",
)
TAX_RELIEF_REASON_REQUIRED = Msg(
    "Bitte geben Sie den Grund für die Steuerbefreiung oder -ermäßigung an.",
    "Please state the reason for the tax exemption or reduction.",
)
TAX_RELIEF_TEXT_REQUIRED = Msg(
    "Bitte beschreiben Sie den sonstigen Grund.", "Please describe the other reason."
)

SEX_ALIASES = {
    "männlich": "male",
    "mannlich": "male",
    "m": "male",
    "Rüde": "male",
    "Rude": "male",
    "weiblich": "female",
    "w": "female",
    "f": "female",
    "Hündin": "female",
    "Hundin": "female",
}
#: The choices with their German labels (what clerks read; forms may send the labels too).
SEXES = {"male": "männlich (Rüde)", "female": "weiblich (Hündin)"}
ACQUISITION_REASONS = {
    "purchase": "Kauf",
    "own_litter": "eigener Wurf",
    "moved_in": "Zuzug mit dem Hund",
    "foster": "Pflegehund",
    "gift": "Geschenk",
    "other": "Sonstiges",
}
ACQUISITION_ALIASES = {
    "Kauf": "purchase",
    "gekauft": "purchase",
    "eigener Wurf": "own_litter",
    "Zuzug": "moved_in",
    "zugezogen": "moved_in",
    "Pflege": "foster",
    "Geschenk": "gift",
    "Schenkung": "gift",
    "Sonstiges": "other",
    "sonstige": "other",
}
TAX_RELIEF_KINDS = {"exemption": "Steuerbefreiung", "reduction": "Steuerermäßigung"}
TAX_RELIEF_KIND_ALIASES = {"Befreiung": "exemption", "Ermäßigung": "reduction"}
TAX_RELIEF_REASONS = {
    "guide_dog": "Blindenführhund",
    "assistance_dog": "Assistenzhund",
    "shelter": "Hund aus dem Tierheim",
    "service_dog": "Diensthund",
    "other": "sonstiger Grund",
}
TAX_RELIEF_REASON_ALIASES = {
    "Blindenhund": "guide_dog",
    "Tierheim": "shelter",
    "Tierheimhund": "shelter",
    "Sonstiges": "other",
}


def _remove_spaces(text: str) -> str:
    """Drop whitespace, as in printed chip numbers ("276 09 8100 123456")."""
    return "".join(text.split())


class KeeperSchema(PersonSchema):
    """The dog's keeper; unlike a general person, the birth date is required here."""

    birth_date = Date(required=True, not_in_future=True, metadata=title("Geburtsdatum"))


class DogSchema(BridgeSchema):
    """The dog being registered."""

    # A missing is_mixed_breed means False (the default), as in the second alternative.
    json_schema_extra: ClassVar[dict[str, Any]] = {
        "anyOf": [
            {
                "properties": {"is_mixed_breed": {"const": True}, "main_breeds": {"minItems": 1}},
                "required": ["is_mixed_breed", "main_breeds"],
            },
            {"properties": {"is_mixed_breed": {"const": False}}, "required": ["breed"]},
        ]
    }

    name = Str(required=True, max_length=100, metadata=title("Name des Hundes"))
    # Required unless is_mixed_breed (checked in _check_dog, to report it at this path).
    breed = Str(
        max_length=100,
        metadata=title("Rasse", required_when="„Mischling“ nicht gewählt ist"),
    )
    is_mixed_breed = Bool(load_default=False, metadata=title("Mischling"))
    main_breeds = List(
        Str(max_length=100),
        max_items=5,
        metadata=title(
            "Hauptrassen (bei Mischlingen)",
            required_when="„Mischling“ gewählt ist (mindestens eine)",
        ),
    )
    sex = Choice(
        SEXES,
        aliases=SEX_ALIASES,
        required=True,
        error_messages={"required": SEX_INVALID},
        metadata=title("Geschlecht"),
    )
    colour = Str(required=True, max_length=100, metadata=title("Farbe"))
    birth_date = Date(required=True, not_in_future=True, metadata=title("Geburtsdatum"))
    microchip_number = Str(
        required=True,
        max_length=40,
        normalize=_remove_spaces,
        validate=Pattern(MICROCHIP_PATTERN, error=MICROCHIP_INVALID),
        metadata=title("Transpondernummer (Chip)", "15 Ziffern", examples=["276098100123456"]),
    )
    acquisition_date = Date(
        required=True, not_in_future=True, metadata=title("Datum der Anschaffung oder Aufnahme")
    )
    acquisition_reason = Choice(
        ACQUISITION_REASONS,
        aliases=ACQUISITION_ALIASES,
        required=True,
        metadata=title("Grund der Anschaffung oder Aufnahme"),
    )

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _check_dog(
        self, data: dict[str, Any], original_data: Mapping[str, Any], **kwargs: Any
    ) -> None:
        errors: dict[str, list[Msg]] = {}
        # A value that was sent but is invalid already has its own error; do not add
        # "required" on top, hence the checks against the original input.
        mixed = data.get("is_mixed_breed")  # absent only if sent but invalid
        if mixed is True and (
            not is_given(original_data, "main_breeds") or data.get("main_breeds") == []
        ):
            errors["main_breeds"] = [MAIN_BREEDS_REQUIRED]
        if mixed is False and not is_given(original_data, "breed"):
            errors["breed"] = [BREED_REQUIRED]
        born, acquired = data.get("birth_date"), data.get("acquisition_date")
        if born is not None and acquired is not None and acquired < born:
            errors["acquisition_date"] = [ACQUIRED_BEFORE_BIRTH]
        if errors:
            raise ValidationError(errors)


class PreviousKeeperSchema(BridgeSchema):
    """Who kept the dog before."""

    name = Str(required=True, max_length=200, metadata=title("Name"))
    address = Nested(AddressSchema, metadata=title("Anschrift"))


class LiabilityInsuranceSchema(BridgeSchema):
    """The dog's third-party liability insurance."""

    insurer = Str(required=True, max_length=200, metadata=title("Versicherung"))
    policy_number = Str(required=True, max_length=100, metadata=title("Versicherungsnummer"))


class TaxReliefSchema(BridgeSchema):
    """A request for exemption from or reduction of the dog tax."""

    json_schema_extra: ClassVar[dict[str, Any]] = {
        "allOf": [
            # A requested relief needs a reason ...
            {"anyOf": [{"properties": {"requested": {"const": False}}}, {"required": ["reason"]}]},
            # ... and the reason "other" a text.
            {
                "anyOf": [
                    {
                        "properties": {
                            "reason": {"enum": [r for r in TAX_RELIEF_REASONS if r != "other"]}
                        }
                    },
                    {"required": ["reason_text"]},
                ]
            },
        ]
    }

    requested = Bool(required=True, metadata=title("Steuerbefreiung oder -ermäßigung beantragt"))
    kind = Choice(TAX_RELIEF_KINDS, aliases=TAX_RELIEF_KIND_ALIASES, metadata=title("Art"))
    reason = Choice(
        TAX_RELIEF_REASONS,
        aliases=TAX_RELIEF_REASON_ALIASES,
        metadata=title("Grund", required_when="eine Befreiung oder Ermäßigung beantragt ist"),
    )
    reason_text = Str(
        max_length=1000,
        metadata=title("Begründung", required_when="der Grund „sonstiger Grund“ ist"),
    )

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _check_reason(
        self, data: dict[str, Any], original_data: Mapping[str, Any], **kwargs: Any
    ) -> None:
        errors: dict[str, list[Msg]] = {}
        # Only complain about a missing reason if none was given at all (not an invalid one).
        if data.get("requested") is True and not is_given(original_data, "reason"):
            errors["reason"] = [TAX_RELIEF_REASON_REQUIRED]
        if data.get("reason") == "other" and not is_given(original_data, "reason_text"):
            errors["reason_text"] = [TAX_RELIEF_TEXT_REQUIRED]
        if errors:
            raise ValidationError(errors)


class DogRegistrationSchema(ServiceBaseSchema):
    """Version 1 of "Hund anmelden"."""

    keeper = Nested(KeeperSchema, required=True, metadata=title("Halterin oder Halter"))
    dog = Nested(DogSchema, required=True, metadata=title("Hund"))
    previous_keeper = Nested(PreviousKeeperSchema, metadata=title("Vorbesitzerin oder Vorbesitzer"))
    dogs_in_household = Int(
        required=True,
        validate=validate.Range(min=1, error=DOGS_IN_HOUSEHOLD_INVALID),
        metadata=title("Anzahl der Hunde im Haushalt (einschließlich dieses Hundes)"),
    )
    liability_insurance = Nested(
        LiabilityInsuranceSchema, metadata=title("Haftpflichtversicherung")
    )
    tax_relief = Nested(TaxReliefSchema, metadata=title("Steuerbefreiung oder -ermäßigung"))


def dog_flag_notes(flags: Mapping[str, Any]) -> list[str]:
    """The flags in German, as a clerk reads them."""
    if not flags.get("dangerous_dog"):
        return []
    breeds = ", ".join(str(breed) for breed in flags.get("dangerous_breeds") or [])
    return [
        f"Rasse nach § 2 HundeVO gelistet ({breeds}): "
        "Erlaubnis zum Halten eines gefährlichen Hundes nötig (Ordnungsamt)."
    ]


def dog_flags(data: Mapping[str, Any]) -> dict[str, Any]:
    """Flags for routing: a dog of a HundeVO §2 breed also needs a keeping permit."""
    dog = data.get("dog") or {}
    found: set[str] = set()
    for text in (dog.get("breed") or "", *(dog.get("main_breeds") or [])):
        found.update(dangerous_breeds(text))
    if not found:
        return {}
    return {
        "dangerous_dog": True,
        "dangerous_breeds": [breed for breed in DANGEROUS_BREEDS if breed in found],
    }
