"""Bilingual messages (German first) and helpers that render marshmallow error trees."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

Lang = Literal["de", "en"]

#: Key marshmallow uses for errors that belong to an object rather than to one of its fields.
SCHEMA_KEY = "_schema"


class Msg(str):
    """A message a citizen may read: the str value is German, ``en`` holds the English text.

    Being a real ``str`` lets marshmallow store and format it like any other message, while
    ``format`` keeps both languages in step.
    """

    en: str

    def __new__(cls, de: str, en: str) -> Msg:
        """Create a message from its German and English text."""
        obj = super().__new__(cls, de)
        obj.en = en
        return obj

    def __getnewargs__(self) -> tuple[str, str]:  # type: ignore[override]
        """Let pickle and copy rebuild the message with both languages."""
        return (str(self), self.en)

    def format(self, *args: object, **kwargs: object) -> Msg:
        """Format both languages with the same arguments and return a new `Msg`."""
        return Msg(str.format(self, *args, **kwargs), self.en.format(*args, **kwargs))

    @property
    def de(self) -> str:
        """The German text as a plain str."""
        return str(self)

    def in_lang(self, lang: Lang) -> str:
        """The text in the chosen language as a plain str."""
        return self.en if lang == "en" else str(self)

    def __repr__(self) -> str:
        """Show both languages, which plain str's repr would hide."""
        return f"Msg({str(self)!r}, en={self.en!r})"


def _text(message: object, lang: Lang) -> str:
    """One leaf message as plain text; foreign str messages pass through unchanged."""
    if isinstance(message, Msg):
        return message.in_lang(lang)
    return str(message)


def render_messages(messages: Any, lang: Lang) -> Any:
    """Return ``messages`` (a ValidationError.messages tree) in the same shape, as plain str."""
    if isinstance(messages, str):
        return _text(messages, lang)
    if isinstance(messages, Mapping):
        return {key: render_messages(value, lang) for key, value in messages.items()}
    if isinstance(messages, list | tuple):
        return [render_messages(value, lang) for value in messages]
    return messages


def flatten_messages(messages: Any, lang: Lang) -> list[tuple[str, str]]:
    """Return ``[(dotted.path, text), ...]`` for every message in an error tree.

    List indexes become path segments (``attachments.0.size``). Errors about the submission
    as a whole are reported under ``_schema``; an object-level error of a nested object (for
    example "not an object") is reported at that object's own path, which is where a form
    would show it.
    """
    flat: list[tuple[str, str]] = []

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                walk(value, path if key == SCHEMA_KEY else (*path, str(key)))
        elif isinstance(node, list | tuple):
            for value in node:
                walk(value, path)
        elif node is not None:
            flat.append((".".join(path) or SCHEMA_KEY, _text(node, lang)))

    walk(messages, ())
    return flat


# Messages shared by the field types and blocks. Service-specific ones live with their schema.
REQUIRED = Msg("Dieses Feld ist erforderlich.", "This field is required.")
NULL = Msg("Dieses Feld darf nicht leer sein.", "This field may not be empty.")
BLANK = Msg("Dieses Feld darf nicht leer sein.", "This field may not be empty.")
INVALID = Msg("Ungültiger Wert.", "Invalid value.")
UNKNOWN = Msg("Unbekanntes Feld.", "Unknown field.")
OBJECT_TYPE = Msg(
    "Ungültige Eingabe: erwartet werden Angaben mit einzelnen Feldern.",
    "Invalid input: an object with fields is expected.",
)
STRING_INVALID = Msg("Bitte geben Sie einen Text ein.", "Please enter a text.")
STRING_UTF8 = Msg("Der Text ist nicht gültig kodiert (UTF-8).", "The text is not valid UTF-8.")
TOO_LONG = Msg(
    "Der Text darf höchstens {max} Zeichen lang sein.",
    "The text may be at most {max} characters long.",
)
INTEGER_INVALID = Msg("Bitte geben Sie eine ganze Zahl ein.", "Please enter a whole number.")
NUMBER_TOO_LARGE = Msg("Die Zahl ist zu groß.", "The number is too large.")
BOOLEAN_INVALID = Msg("Bitte wählen Sie Ja oder Nein.", "Please choose yes or no.")
DATE_INVALID = Msg(
    "Bitte geben Sie ein gültiges Datum ein (TT.MM.JJJJ oder JJJJ-MM-TT).",
    "Please enter a valid date (DD.MM.YYYY or YYYY-MM-DD).",
)
DATE_IN_FUTURE = Msg(
    "Das Datum darf nicht in der Zukunft liegen.", "The date must not be in the future."
)
DATETIME_INVALID = Msg(
    "Bitte geben Sie einen gültigen Zeitpunkt ein (z. B. 2026-06-01T08:00 oder 01.06.2026 08:00).",
    "Please enter a valid point in time (e.g. 2026-06-01T08:00 or 01.06.2026 08:00).",
)
EMAIL_INVALID = Msg(
    "Bitte geben Sie eine gültige E-Mail-Adresse ein.", "Please enter a valid e-mail address."
)
LIST_INVALID = Msg("Bitte geben Sie eine Liste an.", "Please provide a list.")
TOO_MANY_ITEMS = Msg(
    "Bitte geben Sie höchstens {max} Einträge an.", "Please provide at most {max} entries."
)
CHOICE_INVALID = Msg(
    "Ungültige Auswahl. Erlaubt sind: {choices}.", "Invalid choice. Allowed values: {choices}."
)
POSTAL_CODE_DE = Msg(
    "Postleitzahl muss aus fünf Ziffern bestehen.", "The postal code must consist of five digits."
)
POSTAL_CODE_ANY = Msg(
    "Bitte geben Sie eine gültige Postleitzahl an.", "Please enter a valid postal code."
)
COUNTRY_INVALID = Msg(
    "Bitte geben Sie das Land als Code mit zwei Buchstaben an (z. B. DE).",
    "Please enter the country as a two-letter code (e.g. DE).",
)
PHONE_INVALID = Msg(
    "Bitte geben Sie eine gültige Telefonnummer an (6 bis 20 Ziffern; "
    "außerdem erlaubt: Leerzeichen, +, /, -, Klammern).",
    "Please enter a valid phone number (6 to 20 digits; "
    "spaces, +, /, - and parentheses are also allowed).",
)
AGS_INVALID = Msg(
    "Der Amtliche Gemeindeschlüssel muss aus acht Ziffern bestehen.",
    "The official municipality key (AGS) must consist of eight digits.",
)
CONSENT_REQUIRED = Msg(
    "Die Einwilligung in die Datenverarbeitung ist erforderlich.",
    "Consent to the processing of your data is required.",
)
FILE_SIZE_INVALID = Msg(
    "Die Datei ist leer (die Größe muss mindestens 1 Byte betragen).",
    "The file is empty (its size must be at least 1 byte).",
)
SHA256_INVALID = Msg(
    "Die Prüfsumme (SHA-256) muss aus 64 Hexadezimalzeichen bestehen.",
    "The checksum (SHA-256) must consist of 64 hexadecimal characters.",
)
CONTENT_TYPE_INVALID = Msg(
    "Ungültiger Dateityp (erwartet wird ein MIME-Typ wie application/pdf).",
    "Invalid file type (a MIME type such as application/pdf is expected).",
)
