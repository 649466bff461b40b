"""Tests for the bilingual message type and the error-tree helpers."""

from __future__ import annotations

import copy
import datetime as dt
import json
import pickle

import pytest
from marshmallow import ValidationError, validate

from schemas import Msg, flatten_messages, render_messages

GREETING = Msg("Hallo {name}, höchstens {max} Zeichen.", "Hello {name}, at most {max} characters.")


def test_msg_is_the_german_str_with_english_attached() -> None:
    """A Msg is its German text and carries the English one."""
    message = Msg("Pflichtfeld.", "Required.")
    assert isinstance(message, str)
    assert message == "Pflichtfeld."
    assert message.de == "Pflichtfeld."
    assert message.en == "Required."
    assert message.in_lang("en") == "Required."
    assert type(message.in_lang("de")) is str


def test_format_returns_a_msg_formatted_in_both_languages() -> None:
    """format keeps both languages."""
    formatted = GREETING.format(name="Erika", max=5)
    assert isinstance(formatted, Msg)
    assert formatted == "Hallo Erika, höchstens 5 Zeichen."
    assert formatted.en == "Hello Erika, at most 5 characters."
    # The template itself is unchanged.
    assert GREETING.en == "Hello {name}, at most {max} characters."


def test_format_supports_format_specs_per_language() -> None:
    """Each language may format a value its own way."""
    template = Msg("ab {day:%d.%m.%Y}", "from {day:%Y-%m-%d}")
    formatted = template.format(day=dt.date(2026, 6, 4))
    assert (formatted.de, formatted.en) == ("ab 04.06.2026", "from 2026-06-04")


def test_format_survives_marshmallow_validators() -> None:
    """marshmallow's own formatting keeps the Msg."""
    # marshmallow formats validator messages with .format(input=..., min=..., max=...).
    validator = validate.Length(max=3, error=Msg("Höchstens {max}.", "At most {max}."))
    with pytest.raises(ValidationError) as caught:
        validator("abcd")
    (message,) = caught.value.messages
    assert isinstance(message, Msg)
    assert (message.de, message.en) == ("Höchstens 3.", "At most 3.")


def test_msg_survives_pickle_and_copy() -> None:
    """Error trees can be copied and pickled without losing English."""
    message = Msg("Ungültig.", "Invalid.")
    for clone in (
        pickle.loads(pickle.dumps(message)),  # noqa: S301 - our own data
        pickle.loads(pickle.dumps(message, protocol=0)),  # noqa: S301
        copy.copy(message),
        copy.deepcopy(message),
    ):
        assert isinstance(clone, Msg)
        assert (clone.de, clone.en) == ("Ungültig.", "Invalid.")


def test_msg_repr_shows_both_languages() -> None:
    """repr shows both languages for debugging."""
    assert repr(Msg("Ja", "Yes")) == "Msg('Ja', en='Yes')"


def test_msg_serialises_as_german_json_string() -> None:
    """JSON sees a Msg as its German text."""
    assert json.dumps({"m": Msg("Ja", "Yes")}) == '{"m": "Ja"}'


ERRORS = {
    "_schema": [Msg("Antrag ungültig.", "Application invalid.")],
    "keeper": {
        "address": {"postal_code": [Msg("PLZ falsch.", "Postal code wrong.")]},
        "contact": {"_schema": [Msg("Kein Objekt.", "Not an object.")]},
    },
    "attachments": {1: {"size": [Msg("Leer.", "Empty."), Msg("Zu groß.", "Too big.")]}},
    "legacy": ["plain text"],
}


def test_render_messages_keeps_the_shape() -> None:
    """Rendering keeps the nesting and yields plain str."""
    rendered = render_messages(ERRORS, "en")
    assert rendered == {
        "_schema": ["Application invalid."],
        "keeper": {
            "address": {"postal_code": ["Postal code wrong."]},
            "contact": {"_schema": ["Not an object."]},
        },
        "attachments": {1: {"size": ["Empty.", "Too big."]}},
        "legacy": ["plain text"],
    }
    german = render_messages(ERRORS, "de")
    assert german["keeper"]["address"]["postal_code"] == ["PLZ falsch."]
    assert type(german["_schema"][0]) is str


def test_flatten_messages_gives_dotted_paths() -> None:
    """Flattening yields dotted paths with list indexes."""
    assert flatten_messages(ERRORS, "de") == [
        ("_schema", "Antrag ungültig."),
        ("keeper.address.postal_code", "PLZ falsch."),
        # An object-level error of a nested block is reported at the block's path.
        ("keeper.contact", "Kein Objekt."),
        ("attachments.1.size", "Leer."),
        ("attachments.1.size", "Zu groß."),
        ("legacy", "plain text"),
    ]
    assert flatten_messages(ERRORS, "en")[1] == ("keeper.address.postal_code", "Postal code wrong.")


def test_flatten_messages_of_a_bare_list_or_string() -> None:
    """Errors without a field go under _schema."""
    assert flatten_messages([Msg("A", "B")], "en") == [("_schema", "B")]
    assert flatten_messages(Msg("A", "B"), "de") == [("_schema", "A")]
