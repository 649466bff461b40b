"""Behaviour of the ``dog-registration@1`` schema."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from schemas import SCHEMAS, ValidationOptions
from tests.schemas.samples import (
    DELETE,
    SAMPLE_NOW,
    SAMPLE_TODAY,
    dog_registration_payload,
    validation_errors,
)

KEY = "dog-registration@1"
OPTIONS = ValidationOptions(now=SAMPLE_NOW)
FORM = ValidationOptions(now=SAMPLE_NOW, form_input=True)


def validate(changes: dict[str, Any] | None = None, /, **overrides: Any) -> dict[str, Any]:
    """Validate the changed sample as a JSON body and return the data (must be valid)."""
    payload = dog_registration_payload(changes, **overrides)
    return SCHEMAS.get(KEY).validate(payload, OPTIONS).data


def validate_form(changes: dict[str, Any] | None = None, /, **overrides: Any) -> dict[str, Any]:
    """Validate the changed sample as a form body and return the data (must be valid)."""
    payload = dog_registration_payload(changes, **overrides)
    return SCHEMAS.get(KEY).validate(payload, FORM).data


def errors(
    changes: dict[str, Any] | None = None, /, form: bool = False, **overrides: Any
) -> dict[str, list[tuple[str, str]]]:
    """The errors for the changed sample, as {path: [(German, English)]}."""
    payload = dog_registration_payload(changes, **overrides)
    found = validation_errors(KEY, payload, form_input=form)
    return {path: [(m.de, m.en) for m in messages] for path, messages in found.items()}


def test_valid_registration_passes_and_is_json_serialisable() -> None:
    """The sample passes, without flags, and its data survives JSON."""
    result = SCHEMAS.get(KEY).validate(dog_registration_payload(), OPTIONS)
    assert result.flags == {}
    assert json.loads(json.dumps(result.data)) == result.data
    assert result.data["dog"]["birth_date"] == (SAMPLE_TODAY - dt.timedelta(days=400)).isoformat()
    assert result.data["keeper"]["address"]["country"] == "DE"  # the default is filled in
    assert result.data["attachments"][0]["size"] == len(b"%PDF-1.7 sample")


def test_form_input_is_converted_and_normalised() -> None:
    """From forms: German spellings, spaced chip numbers and strings of every type."""
    data = validate_form(
        {
            "dog.sex": "Hündin",
            "dog.microchip_number": "276 09 8100 123456",
            "dog.birth_date": "01.02.2025",
            "dog.acquisition_reason": "Kauf",
            "dog.name": "  Bella ",
            "dogs_in_household": "2",
            "privacy_consent": "ja",
        }
    )
    assert data["dog"]["sex"] == "female"
    assert data["dog"]["microchip_number"] == "276098100123456"
    assert data["dog"]["birth_date"] == "2025-02-01"
    assert data["dog"]["acquisition_reason"] == "purchase"
    assert data["dog"]["name"] == "Bella"
    assert data["dogs_in_household"] == 2
    assert data["privacy_consent"] is True


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"privacy_consent": 1}, "privacy_consent"),
        ({"privacy_consent": "true"}, "privacy_consent"),
        ({"privacy_consent": "ja"}, "privacy_consent"),
        ({"dogs_in_household": "2"}, "dogs_in_household"),
        ({"dogs_in_household": True}, "dogs_in_household"),
        ({"keeper.address.postal_code": "61267\n"}, "keeper.address.postal_code"),
        ({"keeper.address.postal_code": " 61267"}, "keeper.address.postal_code"),
        ({"keeper.address.country": "de"}, "keeper.address.country"),
        ({"dog.sex": "Hündin"}, "dog.sex"),
        ({"dog.sex": "Male"}, "dog.sex"),
        ({"dog.microchip_number": "276 09 8100 123456"}, "dog.microchip_number"),
        ({"dog.birth_date": "01.02.2025"}, "dog.birth_date"),
        ({"dog.is_mixed_breed": "nein"}, "dog.is_mixed_breed"),
        ({"dog.name": ""}, "dog.name"),
        ({"dog.name": None}, "dog.name"),
        ({"liability_insurance": None}, "liability_insurance"),
        ({"tax_relief": {}}, "tax_relief.requested"),
        ({"tax_relief.kind": "Befreiung"}, "tax_relief.kind"),
        ({"attachments.0.sha256": "A" * 64}, "attachments.0.sha256"),
    ],
)
def test_json_is_typed_exactly_as_the_published_schema(changes: dict[str, Any], path: str) -> None:
    """JSON bodies get no form leniency: the JSON Schema refuses these, so does the validator."""
    assert set(errors(changes)) == {path}


@pytest.mark.parametrize(
    ("spelling", "sex"),
    [("male", "male"), ("MÄNNLICH", "male"), ("ruede", "male"), ("Rüde", "male"),
     ("female", "female"), ("Weiblich", "female"), ("hündin", "female"), ("Huendin", "female")],
)  # fmt: skip
def test_sex_accepts_german_spellings_from_forms(spelling: str, sex: str) -> None:
    """Rüde/Hündin and männlich/weiblich map to male/female in form posts."""
    assert validate_form({"dog.sex": spelling})["dog"]["sex"] == sex


def test_blank_optional_sections_are_ignored() -> None:
    """Blank optional sections from form posts are treated as absent."""
    # Form posts send every field; untouched optional sections arrive blank.
    data = validate_form(
        previous_keeper={"name": "", "address": {"street": " ", "postal_code": ""}},
        liability_insurance=None,
        tax_relief={"requested": "", "reason": ""},
        **{"keeper.contact.phone": ""},
    )
    assert "previous_keeper" not in data
    assert "liability_insurance" not in data
    assert "tax_relief" not in data
    assert "phone" not in data["keeper"]["contact"]


def test_dangerous_breed_is_flagged() -> None:
    """A listed breed yields the routing flags."""
    result = SCHEMAS.get(KEY).validate(
        dog_registration_payload({"dog.breed": "Rotti-Mischling"}), OPTIONS
    )
    assert result.flags == {"dangerous_dog": True, "dangerous_breeds": ["Rottweiler"]}


def test_main_breeds_of_a_mixed_breed_are_checked_too() -> None:
    """The main breeds of a mixed breed are searched for listed breeds."""
    payload = dog_registration_payload(
        {
            "dog.breed": DELETE,
            "dog.is_mixed_breed": True,
            "dog.main_breeds": ["Rottweiler", "Labrador", "Am. Staff"],
        }
    )
    result = SCHEMAS.get(KEY).validate(payload, OPTIONS)
    assert result.flags == {
        "dangerous_dog": True,
        "dangerous_breeds": ["American Staffordshire Terrier", "Rottweiler"],
    }
    assert "breed" not in result.data["dog"]


def test_microchip_number_must_have_15_digits() -> None:
    """Chip numbers need exactly 15 digits."""
    expected = [
        (
            "Die Transpondernummer muss aus genau 15 Ziffern bestehen.",
            "The microchip number must consist of exactly 15 digits.",
        )
    ]
    assert errors({"dog.microchip_number": "27609810012345"}) == {"dog.microchip_number": expected}
    assert errors({"dog.microchip_number": "27609810012345X"}) == {"dog.microchip_number": expected}


def test_sex_must_be_male_or_female() -> None:
    """Other values, and a missing sex, are rejected."""
    found = errors({"dog.sex": "unbekannt"})
    assert list(found) == ["dog.sex"]
    assert found["dog.sex"][0][0].startswith("Ungültige Auswahl. Erlaubt sind: male, female")
    assert found["dog.sex"][0][1].startswith("Invalid choice. Allowed values: male, female")
    assert errors({"dog.sex": DELETE}) == {
        "dog.sex": [
            (
                "Bitte geben Sie das Geschlecht an: männlich (Rüde) oder weiblich (Hündin).",
                "Please state the sex: male or female.",
            )
        ]
    }


def test_dates_must_not_be_in_the_future() -> None:
    """Birth and acquisition dates may be today but not later."""
    tomorrow = (SAMPLE_TODAY + dt.timedelta(days=1)).isoformat()
    future = [
        ("Das Datum darf nicht in der Zukunft liegen.", "The date must not be in the future.")
    ]
    assert errors({"dog.birth_date": tomorrow, "dog.acquisition_date": tomorrow}) == {
        "dog.birth_date": future,
        "dog.acquisition_date": future,
    }
    assert errors({"keeper.birth_date": tomorrow}) == {"keeper.birth_date": future}
    # Today itself is fine.
    today = SAMPLE_TODAY.isoformat()
    assert errors({"dog.birth_date": today, "dog.acquisition_date": today}) == {}


def test_acquisition_not_before_birth() -> None:
    """A dog cannot be acquired before it was born."""
    assert errors({"dog.acquisition_date": "2020-01-01"}) == {
        "dog.acquisition_date": [
            (
                "Das Datum der Anschaffung darf nicht vor dem Geburtsdatum des Hundes liegen.",
                "The acquisition date must not be before the dog's date of birth.",
            )
        ]
    }


def test_invalid_date_is_reported() -> None:
    """An impossible calendar date is rejected."""
    assert errors({"dog.birth_date": "31.02.2024"}) == {
        "dog.birth_date": [
            (
                "Bitte geben Sie ein gültiges Datum ein (TT.MM.JJJJ oder JJJJ-MM-TT).",
                "Please enter a valid date (DD.MM.YYYY or YYYY-MM-DD).",
            )
        ]
    }


def test_keeper_birth_date_is_required() -> None:
    """The keeper's birth date is required for this service."""
    assert errors({"keeper.birth_date": DELETE}) == {
        "keeper.birth_date": [("Dieses Feld ist erforderlich.", "This field is required.")]
    }


def test_breed_required_unless_mixed_and_main_breeds_when_mixed() -> None:
    """A breed, or for a mixed breed at least one main breed."""
    assert errors({"dog.breed": ""}, form=True) == {
        "dog.breed": [("Bitte geben Sie die Rasse an.", "Please state the breed.")]
    }
    assert errors({"dog.breed": DELETE}) == {
        "dog.breed": [("Bitte geben Sie die Rasse an.", "Please state the breed.")]
    }
    assert errors({"dog.breed": DELETE, "dog.is_mixed_breed": True, "dog.main_breeds": []}) == {
        "dog.main_breeds": [
            (
                "Bitte geben Sie bei einem Mischling mindestens eine Hauptrasse an.",
                "For a mixed breed, please state at least one main breed.",
            )
        ]
    }


def test_dogs_in_household_at_least_one() -> None:
    """The count includes this dog and must be a whole number."""
    expected = [
        (
            "Die Anzahl der Hunde im Haushalt muss mindestens 1 sein (dieser Hund zählt mit).",
            "The number of dogs in the household must be at least 1 (including this dog).",
        )
    ]
    assert errors(dogs_in_household=0) == {"dogs_in_household": expected}
    invalid = [("Bitte geben Sie eine ganze Zahl ein.", "Please enter a whole number.")]
    assert errors(dogs_in_household="zwei") == {"dogs_in_household": invalid}
    assert errors(dogs_in_household=1.5) == {"dogs_in_household": invalid}
    assert errors(dogs_in_household=True) == {"dogs_in_household": invalid}
    assert errors(dogs_in_household=10**20) == {
        "dogs_in_household": [("Die Zahl ist zu groß.", "The number is too large.")]
    }


def test_tax_relief_needs_a_reason_when_requested() -> None:
    """A relief request needs a reason, 'other' a text."""
    assert errors(tax_relief={"requested": True, "kind": "exemption"}) == {
        "tax_relief.reason": [
            (
                "Bitte geben Sie den Grund für die Steuerbefreiung oder -ermäßigung an.",
                "Please state the reason for the tax exemption or reduction.",
            )
        ]
    }
    assert errors(tax_relief={"requested": True, "reason": "other"}) == {
        "tax_relief.reason_text": [
            ("Bitte beschreiben Sie den sonstigen Grund.", "Please describe the other reason.")
        ]
    }
    data = validate_form(tax_relief={"requested": "ja", "kind": "Ermäßigung", "reason": "Tierheim"})
    assert data["tax_relief"] == {"requested": True, "kind": "reduction", "reason": "shelter"}


def test_optional_blocks_need_their_own_required_fields() -> None:
    """Optional blocks, once given, are checked completely."""
    required = [("Dieses Feld ist erforderlich.", "This field is required.")]
    assert errors(previous_keeper={"address": {"town": "Usingen"}}) == {
        "previous_keeper.name": required,
        "previous_keeper.address.street": required,
        "previous_keeper.address.house_number": required,
        "previous_keeper.address.postal_code": required,
    }
    assert errors(liability_insurance={"insurer": "X"}) == {
        "liability_insurance.policy_number": required
    }


def test_many_errors_are_reported_at_once() -> None:
    """Validation does not stop at the first failing field."""
    found = errors(
        {
            "privacy_consent": False,
            "keeper.address.postal_code": "6126",
            "keeper.contact.email": "keine-adresse",
            "dog.microchip_number": "123",
            "dog.sex": "x",
            "dog.name": DELETE,
            "dogs_in_household": 0,
            "attachments.0.size": 0,
        }
    )
    assert set(found) == {
        "privacy_consent",
        "keeper.address.postal_code",
        "keeper.contact.email",
        "dog.microchip_number",
        "dog.sex",
        "dog.name",
        "dogs_in_household",
        "attachments.0.size",
    }
    assert found["keeper.address.postal_code"] == [
        (
            "Postleitzahl muss aus fünf Ziffern bestehen.",
            "The postal code must consist of five digits.",
        )
    ]
