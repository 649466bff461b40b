"""The shared blocks and field types: messages, unknown keys, blanks, options."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from marshmallow import Schema, ValidationError, fields

from schemas import SCHEMAS, Msg, ValidationOptions, flatten_messages
from schemas.blocks import Nested
from schemas.dog_registration import DogRegistrationSchema
from tests.schemas.samples import (
    DELETE,
    SAMPLE_NOW,
    SAMPLE_TODAY,
    attachment,
    dog_registration_payload,
    traffic_order_payload,
    validation_errors,
)

DOG = "dog-registration@1"
TRAFFIC = "traffic-order@1"
REQUIRED = [("Dieses Feld ist erforderlich.", "This field is required.")]
UNKNOWN = [("Unbekanntes Feld.", "Unknown field.")]


def dog_errors(
    changes: dict[str, Any] | None = None, /, form: bool = False, **overrides: Any
) -> dict[str, list[tuple[str, str]]]:
    """Errors of the changed dog sample (a JSON body, or a form), as {path: [(German, English)]}."""
    payload = dog_registration_payload(changes, **overrides)
    found = validation_errors(DOG, payload, form_input=form)
    return {path: [(m.de, m.en) for m in messages] for path, messages in found.items()}


def _all_schemas(schema: Schema, seen: set[type[Schema]]) -> Iterator[Schema]:
    """The schema and every schema nested in it."""
    if type(schema) in seen:
        return
    seen.add(type(schema))
    yield schema
    for field in schema.fields.values():
        inner = field.inner if isinstance(field, fields.List) else field
        if isinstance(inner, fields.Nested):
            yield from _all_schemas(inner.schema, seen)


def _all_fields(schema: Schema) -> Iterator[tuple[str, fields.Field[Any]]]:
    for name, field in schema.fields.items():
        yield name, field
        if isinstance(field, fields.List):
            yield f"{name}[]", field.inner


@pytest.mark.parametrize("key", SCHEMAS.keys())
def test_every_message_a_citizen_can_see_is_bilingual(key: str) -> None:
    """Field, validator and schema messages of every block are German Msg with English."""
    for schema in _all_schemas(SCHEMAS.get(key).schema_class(), set()):
        where = type(schema).__name__
        for kind, message in schema.error_messages.items():
            assert isinstance(message, Msg), f"{where} schema message {kind!r}"
        for name, field in _all_fields(schema):
            for kind, field_message in field.error_messages.items():
                assert isinstance(field_message, Msg), f"{where}.{name} message {kind!r}"
            for validator in field.validators:
                error = getattr(validator, "error", None)
                assert isinstance(error, Msg), f"{where}.{name} validator {validator!r}"


def test_unknown_keys_are_ignored_by_default_at_every_level() -> None:
    """With unknown 'ignore', unknown keys are dropped, nested ones too."""
    payload = dog_registration_payload(
        {"keeper.address.floor": "2", "dog.nickname": "Bello", "attachments.0.x": 1}, extra="x"
    )
    data = SCHEMAS.get(DOG).validate(payload, ValidationOptions(now=SAMPLE_NOW)).data
    assert "extra" not in data
    assert "floor" not in data["keeper"]["address"]
    assert "nickname" not in data["dog"]
    assert "x" not in data["attachments"][0]


def test_unknown_keys_are_rejected_on_request_at_every_level() -> None:
    """With unknown 'reject', each unknown key gets 'Unbekanntes Feld.' at its path."""
    payload = dog_registration_payload(
        {"keeper.address.floor": "2", "dog.nickname": "Bello", "attachments.0.x": 1}, extra="x"
    )
    found = validation_errors(DOG, payload, unknown="reject")
    assert {path: [(m.de, m.en) for m in ms] for path, ms in found.items()} == {
        "extra": UNKNOWN,
        "keeper.address.floor": UNKNOWN,
        "dog.nickname": UNKNOWN,
        "attachments.0.x": UNKNOWN,
    }


def test_policies_do_not_leak_between_calls() -> None:
    """One call's options must not stick to the shared schema classes."""
    service = SCHEMAS.get(TRAFFIC)
    payload = traffic_order_payload({"location.extra": 1})
    with pytest.raises(ValidationError):
        service.validate(payload, ValidationOptions(now=SAMPLE_NOW, unknown="reject"))
    service.validate(payload, ValidationOptions(now=SAMPLE_NOW))
    # Class-level nested fields never cache a schema instance that calls could share.
    for field in service.schema_class._declared_fields.values():
        if isinstance(field, Nested):
            assert field._schema is None


def test_wrong_types_are_reported_where_they_occur() -> None:
    """A value of the wrong type is reported at its own path."""
    object_type = [
        (
            "Ungültige Eingabe: erwartet werden Angaben mit einzelnen Feldern.",
            "Invalid input: an object with fields is expected.",
        )
    ]
    assert dog_errors(keeper="Erika") == {"keeper": object_type}
    assert dog_errors(attachments="datei.pdf") == {
        "attachments": [("Bitte geben Sie eine Liste an.", "Please provide a list.")]
    }
    assert dog_errors({"dog.name": 42}) == {
        "dog.name": [("Bitte geben Sie einen Text ein.", "Please enter a text.")]
    }
    with pytest.raises(ValidationError) as caught:
        SCHEMAS.get(DOG).validate([], ValidationOptions(now=SAMPLE_NOW))  # type: ignore[arg-type]  # a list on purpose
    assert flatten_messages(caught.value.messages, "en") == [
        ("_schema", "Invalid input: an object with fields is expected.")
    ]


def test_blank_required_values_are_reported_as_missing() -> None:
    """In forms whitespace and null count as not filled in; in JSON they are empty values."""
    assert dog_errors({"keeper.first_name": "   ", "dog.colour": None}, form=True) == {
        "keeper.first_name": REQUIRED,
        "dog.colour": REQUIRED,
    }
    empty = [("Dieses Feld darf nicht leer sein.", "This field may not be empty.")]
    assert dog_errors({"keeper.first_name": "   ", "dog.colour": None}) == {
        "keeper.first_name": empty,
        "dog.colour": empty,
    }


def test_too_long_text_names_the_limit() -> None:
    """The length message is formatted with the limit in both languages."""
    assert dog_errors({"dog.name": "B" * 101}) == {
        "dog.name": [
            (
                "Der Text darf höchstens 100 Zeichen lang sein.",
                "The text may be at most 100 characters long.",
            )
        ]
    }


@pytest.mark.parametrize(
    ("value", "consent_ok"), [(True, True), ("on", True), ("ja", True), (False, False),
                              ("nein", False), ("off", False), (DELETE, False)],
)  # fmt: skip
def test_privacy_consent_must_be_given(value: object, consent_ok: bool) -> None:
    """Only a true consent passes; false and missing get the consent message."""
    found = dog_errors(privacy_consent=value, form=isinstance(value, str))
    if consent_ok:
        assert found == {}
    else:
        assert found == {
            "privacy_consent": [
                (
                    "Die Einwilligung in die Datenverarbeitung ist erforderlich.",
                    "Consent to the processing of your data is required.",
                )
            ]
        }


def test_municipality_key_has_eight_digits() -> None:
    """The optional AGS must have eight digits."""
    assert dog_errors(municipality_ags="0643407") == {
        "municipality_ags": [
            (
                "Der Amtliche Gemeindeschlüssel muss aus acht Ziffern bestehen.",
                "The official municipality key (AGS) must consist of eight digits.",
            )
        ]
    }
    assert dog_errors(municipality_ags=DELETE) == {}


@pytest.mark.parametrize(
    ("phone", "ok"),
    [
        ("+49 6081 1234-0", True),
        ("06081/12340", True),
        ("(06081) 123 40", True),
        ("0170 1234567", True),
        ("123456", True),
        ("12345", False),
        ("0049 6081 1234 5678 9012 34", False),
        ("06081-ABC", False),
        ("++49 6081 12340", False),
        ("06081 12340 ext. 5", False),
    ],
)
def test_phone_numbers(phone: str, ok: bool) -> None:
    """Plausible phone formats pass, others get the phone message."""
    found = dog_errors({"keeper.contact.phone": phone})
    assert (found == {}) is ok
    if not ok:
        assert found["keeper.contact.phone"][0][0].startswith(
            "Bitte geben Sie eine gültige Telefonnummer an"
        )


@pytest.mark.parametrize("email", ["erika", "erika@", "@example.org", "erika@@example.org"])
def test_email_must_be_valid(email: str) -> None:
    """Malformed e-mail addresses are rejected."""
    assert dog_errors({"keeper.contact.email": email}) == {
        "keeper.contact.email": [
            (
                "Bitte geben Sie eine gültige E-Mail-Adresse ein.",
                "Please enter a valid e-mail address.",
            )
        ]
    }


def test_foreign_addresses_use_their_own_postal_codes() -> None:
    """Five digits are required in Germany only; the country is normalised."""
    foreign = {"street": "Ring", "house_number": "1", "postal_code": "1010", "town": "Wien"}
    assert set(dog_errors({"previous_keeper.address": {**foreign, "country": "at"}})) == {
        "previous_keeper.address.country"
    }
    assert dog_errors({"previous_keeper.address": {**foreign, "country": "at"}}, form=True) == {}
    assert dog_errors({"previous_keeper.address": foreign}) == {
        "previous_keeper.address.postal_code": [
            (
                "Postleitzahl muss aus fünf Ziffern bestehen.",
                "The postal code must consist of five digits.",
            )
        ]
    }
    assert set(dog_errors({"previous_keeper.address": {**foreign, "country": "AUT"}})) == {
        "previous_keeper.address.country"
    }
    assert set(dog_errors({"previous_keeper.address": {**foreign, "country": "AT",
                                                         "postal_code": "#"}})) == {
        "previous_keeper.address.postal_code"
    }  # fmt: skip


def test_attachment_metadata() -> None:
    """Attachment metadata is normalised and every bad value reported."""
    upper = attachment(sha256="A" * 64, content_type="Application/PDF", size="15")
    form = ValidationOptions(now=SAMPLE_NOW, form_input=True)
    data = SCHEMAS.get(DOG).validate(dog_registration_payload(attachments=[upper]), form).data
    assert data["attachments"][0]["sha256"] == "a" * 64
    assert data["attachments"][0]["content_type"] == "application/pdf"
    found = dog_errors(
        attachments=[attachment(size=0, sha256="abc", content_type="pdf"), {"filename": "x"}]
    )
    assert set(found) == {
        "attachments.0.size",
        "attachments.0.sha256",
        "attachments.0.content_type",
        "attachments.1.content_type",
        "attachments.1.size",
        "attachments.1.sha256",
    }
    assert found["attachments.0.size"] == [
        (
            "Die Datei ist leer (die Größe muss mindestens 1 Byte betragen).",
            "The file is empty (its size must be at least 1 byte).",
        )
    ]
    too_many = dog_errors(attachments=[attachment()] * 51)
    assert too_many == {
        "attachments": [
            ("Bitte geben Sie höchstens 50 Einträge an.", "Please provide at most 50 entries.")
        ]
    }


def test_loading_with_date_rules_needs_options() -> None:
    """Without injected options the schema refuses to guess today."""
    with pytest.raises(RuntimeError, match="ValidationOptions"):
        DogRegistrationSchema().load(dog_registration_payload())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"now": dt.datetime(2026, 6, 1, 12, 0)},
        {"now": SAMPLE_TODAY},
        {"now": SAMPLE_NOW, "lead_hours": -1},
        {"now": SAMPLE_NOW, "min_zone_m": 0},
        {"now": SAMPLE_NOW, "min_zone_m": 30, "max_zone_m": 20},
        {"now": SAMPLE_NOW, "unknown": "raise"},
    ],
)
def test_validation_options_refuse_nonsense(kwargs: dict[str, Any]) -> None:
    """Contradictory options fail when they are created."""
    with pytest.raises((TypeError, ValueError)):
        ValidationOptions(**kwargs)
