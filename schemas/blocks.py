"""Field types with bilingual messages, the base schema, and the blocks all services share.

Every field type here replaces marshmallow's English default messages with German `Msg`
objects (subclasses, not patches of marshmallow's globals), so nothing a citizen can read
comes out in English only.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    pre_load,
    types,
    validate,
    validates_schema,
)

from schemas import messages as m
from schemas.options import ValidationOptions
from schemas.text import compact

#: Wall-clock time of the member municipalities; naive times from forms mean this zone.
LOCAL_TZ = ZoneInfo("Europe/Berlin")
MIDNIGHT = dt.time(0, 0)
#: Largest integer that JSON consumers such as JavaScript represent exactly.
MAX_SAFE_INTEGER = 2**53 - 1
END_OF_DAY = dt.time(23, 59)

# Patterns use explicit ASCII classes: Python's \d would also accept e.g. Arabic-Indic digits,
# and they double as JSON Schema (ECMA-262) patterns.
POSTAL_CODE_DE_PATTERN = r"^[0-9]{5}$"
POSTAL_CODE_ANY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 -]{1,8}[A-Za-z0-9]$"
# 6-20 digits, optionally led by "+", with spaces / - ( ) between them.
PHONE_PATTERN = r"^\+?(?:[ ()/-]*[0-9]){6,20}[ ()/-]*$"
AGS_PATTERN = r"^[0-9]{8}$"
COUNTRY_PATTERN = r"^[A-Z]{2}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
MIME_PATTERN = r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*(?:\s*;.*)?$"

_POSTAL_CODE_DE = re.compile(POSTAL_CODE_DE_PATTERN)
_POSTAL_CODE_ANY = re.compile(POSTAL_CODE_ANY_PATTERN)
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_GERMAN_DATE = re.compile(r"([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{4})")
_GERMAN_DATETIME = re.compile(
    r"([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{4}),?\s+([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?(?:\s*Uhr)?"
)
_ISO_DATETIME_START = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ]")


def _messages(**specific: m.Msg) -> types.ErrorMessages:
    """A field's error messages: the ones every field has plus its ``specific`` ones."""
    return {"required": m.REQUIRED, "null": m.NULL, "validator_failed": m.INVALID, **specific}


def options_of(schema: object) -> ValidationOptions:
    """The options of the schema a field belongs to (raises if it was built without them)."""
    if isinstance(schema, BridgeSchema):
        return schema.options
    raise RuntimeError("this field needs a BridgeSchema with ValidationOptions")


# --------------------------------------------------------------------------- parsing helpers


def parse_date(value: object) -> dt.date | None:
    """Parse ``YYYY-MM-DD`` or the German ``TT.MM.JJJJ``; None if it is not a calendar date."""
    if isinstance(value, dt.datetime):
        return None  # a point in time is not a calendar date; refuse rather than truncate
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    if match := _ISO_DATE.fullmatch(text):
        year, month, day = match.groups()
    elif match := _GERMAN_DATE.fullmatch(text):
        # Formcycle's date picker submits the displayed German format.
        day, month, year = match.groups()
    else:
        return None
    try:
        return dt.date(int(year), int(month), int(day))
    except ValueError:
        return None


def parse_datetime(value: object, date_only_time: dt.time) -> dt.datetime | None:
    """Parse an ISO 8601 or German point in time, or a date (at ``date_only_time``).

    The result is always aware and in `LOCAL_TZ`: naive input is taken as local wall-clock
    time, which is what a citizen means by "ab 7 Uhr".
    """
    parsed: dt.datetime
    if isinstance(value, dt.datetime):
        parsed = value
    elif (day := parse_date(value)) is not None:
        parsed = dt.datetime.combine(day, date_only_time)
    elif isinstance(value, str):
        text = value.strip()
        try:
            if match := _GERMAN_DATETIME.fullmatch(text):
                d, mo, y, h, mi, s = match.groups()
                parsed = dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0))
            elif _ISO_DATETIME_START.match(text):
                parsed = dt.datetime.fromisoformat(text)
            else:
                return None
        except ValueError:
            return None
    else:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=LOCAL_TZ)
    return parsed.astimezone(LOCAL_TZ)


def to_jsonable(value: Any) -> Any:
    """Turn loaded data into JSON-serialisable data (dates and datetimes as ISO strings)."""
    if isinstance(value, dt.date):  # also datetime, a date subclass
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    return value


def is_given(original: object, key: str) -> bool:
    """Whether the raw input ``original`` carries a non-blank value for ``key``."""
    return isinstance(original, Mapping) and not _is_blank(original.get(key))


def _is_blank(value: object) -> bool:
    """True for None, whitespace, and containers holding nothing else (hidden form sections)."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, Mapping):
        return all(_is_blank(item) for item in value.values())
    if isinstance(value, list | tuple):
        return all(_is_blank(item) for item in value)
    return False


# ------------------------------------------------------------------------------ field types


class Str(fields.String):
    """A trimmed, non-empty string with a length limit and an optional normalisation."""

    default_error_messages = _messages(
        invalid=m.STRING_INVALID, invalid_utf8=m.STRING_UTF8, blank=m.BLANK
    )

    def __init__(
        self,
        *,
        max_length: int | None = 200,
        normalize: Callable[[str], str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Create the field; ``normalize`` runs on the trimmed text before validators."""
        super().__init__(**kwargs)
        self.normalize = normalize
        if max_length is not None:
            # Appended here so every free text is bounded and JSON Schema shows maxLength.
            self.validators.append(validate.Length(max=max_length, error=m.TOO_LONG))

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if self.normalize is not None:
            text = self.normalize(text)
        if not text:
            raise self.make_error("blank")
        return text


class Choice(Str):
    """One of fixed values; case, umlauts, punctuation and listed synonyms are tolerated."""

    def __init__(
        self,
        choices: Sequence[str],
        *,
        aliases: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Create the field; ``aliases`` maps accepted synonyms (e.g. German) to a choice."""
        super().__init__(max_length=None, **kwargs)  # OneOf bounds it already
        self.choices = tuple(choices)
        self._lookup = {compact(choice): choice for choice in self.choices}
        for alias, choice in (aliases or {}).items():
            if choice not in self.choices:
                raise ValueError(f"alias {alias!r} points to unknown choice {choice!r}")
            self._lookup[compact(alias)] = choice
        self.validators.insert(0, validate.OneOf(self.choices, error=m.CHOICE_INVALID))

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        return self._lookup.get(compact(text), text)


class Int(fields.Integer):
    """An integer that also accepts digit strings (form posts) but never truncates floats."""

    default_error_messages = _messages(invalid=m.INTEGER_INVALID, too_large=m.NUMBER_TOO_LARGE)

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> int:
        # marshmallow would turn 2.5 into 2 silently.
        if isinstance(value, float) and not value.is_integer():
            raise self.make_error("invalid", input=value)
        if isinstance(value, str):
            value = value.strip()
        number = super()._deserialize(value, attr, data, **kwargs)
        if abs(number) > MAX_SAFE_INTEGER:
            raise self.make_error("too_large", input=value)
        return number


class Bool(fields.Boolean):
    """A yes/no value that also understands German "ja"/"nein" from form posts."""

    truthy = fields.Boolean.truthy | {"ja", "Ja", "JA", "j", "J"}
    falsy = fields.Boolean.falsy | {"nein", "Nein", "NEIN"}
    default_error_messages = _messages(invalid=m.BOOLEAN_INVALID)


class Date(fields.Date):
    """A calendar date (ISO or German format), optionally not after the injected today."""

    default_error_messages = _messages(
        invalid=m.DATE_INVALID,
        invalid_awareness=m.DATE_INVALID,
        format=m.DATE_INVALID,
        in_future=m.DATE_IN_FUTURE,
    )

    def __init__(self, *, not_in_future: bool = False, **kwargs: Any) -> None:
        """Create the field; ``not_in_future`` compares with `ValidationOptions.today`."""
        super().__init__(**kwargs)
        self.not_in_future = not_in_future

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> dt.date:
        day = parse_date(value)
        if day is None:
            raise self.make_error("invalid")
        if self.not_in_future and day > options_of(self.root).today:
            raise self.make_error("in_future")
        return day


class DateTime(fields.DateTime):
    """A point in time; a bare date means ``date_only_time`` on that day (local time)."""

    default_error_messages = _messages(
        invalid=m.DATETIME_INVALID, invalid_awareness=m.DATETIME_INVALID, format=m.DATETIME_INVALID
    )

    def __init__(self, *, date_only_time: dt.time = MIDNIGHT, **kwargs: Any) -> None:
        """Create the field; start fields use 00:00, end fields 23:59 for date-only input."""
        super().__init__(**kwargs)
        self.date_only_time = date_only_time

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> dt.datetime:
        parsed = parse_datetime(value, self.date_only_time)
        if parsed is None:
            raise self.make_error("invalid")
        return parsed


class Email(fields.Email):
    """A trimmed e-mail address (at most 254 characters, the SMTP limit)."""

    default_error_messages = _messages(
        invalid=m.EMAIL_INVALID, invalid_utf8=m.STRING_UTF8, blank=m.BLANK
    )

    def __init__(self, **kwargs: Any) -> None:
        """Create the field."""
        super().__init__(**kwargs)
        self.validators.append(validate.Length(max=254, error=m.TOO_LONG))

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not text:
            raise self.make_error("blank")
        return text


class List(fields.List[Any]):
    """A list with a maximum number of entries."""

    default_error_messages = _messages(invalid=m.LIST_INVALID)

    def __init__(
        self,
        inner: fields.Field[Any] | type[fields.Field[Any]],
        *,
        max_items: int = 20,
        **kwargs: Any,
    ) -> None:
        """Create the field for items of type ``inner``."""
        super().__init__(inner, **kwargs)
        self.validators.append(validate.Length(max=max_items, error=m.TOO_MANY_ITEMS))


class Nested(fields.Nested):
    """A nested block that inherits the options and the unknown-key policy of its parent."""

    default_error_messages = _messages(type=m.OBJECT_TYPE)

    def __deepcopy__(self, memo: dict[int, Any]) -> Nested:
        # marshmallow copies fields per schema instance but would share a nested schema
        # instance that was already built; options are set on it per call, so never share.
        new = copy.copy(self)
        new._schema = None
        return new

    def _load(self, value: Any, partial: bool | types.StrSequenceOrSet | None = None) -> Any:
        schema = self.schema
        parent = self.root
        if isinstance(parent, Schema):
            # Set on the instance (not passed to load) so it reaches every deeper level too.
            schema.unknown = parent.unknown
        if isinstance(schema, BridgeSchema) and isinstance(parent, BridgeSchema):
            schema.bind_options(parent.bound_options)
        try:
            return schema.load(value, partial=partial)
        except ValidationError as error:
            raise ValidationError(error.messages, valid_data=error.valid_data) from error


# --------------------------------------------------------------------------- field helpers


def title(de: str, description: str | None = None, **extra: Any) -> dict[str, Any]:
    """Field metadata with a German title (and description) for JSON Schema / OpenAPI."""
    meta: dict[str, Any] = {"title": de, **extra}
    if description:
        meta["description"] = description
    return meta


def postal_code_field(**kwargs: Any) -> Str:
    """A German postal code: exactly five digits."""
    return Str(
        max_length=10,
        validate=validate.Regexp(POSTAL_CODE_DE_PATTERN, error=m.POSTAL_CODE_DE),
        metadata=title("Postleitzahl"),
        **kwargs,
    )


def phone_field(*, required: bool = False, label: str = "Telefon") -> Str:
    """A phone number such as ``+49 6081 1234-0`` or ``06081/12340`` (6-20 digits)."""
    return Str(
        required=required,
        max_length=40,
        validate=validate.Regexp(PHONE_PATTERN, error=m.PHONE_INVALID),
        metadata=title(label, examples=["+49 6081 1234-0", "06081/12340"]),
    )


# ------------------------------------------------------------------------------ base schema


class BridgeSchema(Schema):
    """Base of all schemas: bilingual object messages, blank-tolerant input, per-call options.

    Blank values (None, whitespace, sections whose fields are all blank) of known fields are
    dropped before loading, because form posts send every field, filled in or not: a blank
    optional field is simply absent, a blank required one gets "required".
    """

    class Meta(Schema.Meta):
        """Unknown keys are ignored unless the caller asks to reject them."""

        unknown = EXCLUDE

    # marshmallow merges this class attribute into each instance's messages.
    error_messages = {"unknown": m.UNKNOWN, "type": m.OBJECT_TYPE}  # noqa: RUF012

    #: Extra JSON Schema keywords (conditional requirements) merged in by `schemas.jsonschema`.
    json_schema_extra: ClassVar[dict[str, Any]] = {}

    def __init__(self, *, options: ValidationOptions | None = None, **kwargs: Any) -> None:
        """Create the schema; ``options`` is needed to load, not to describe it."""
        super().__init__(**kwargs)
        self._options = options

    @property
    def options(self) -> ValidationOptions:
        """The options of the current call."""
        if self._options is None:
            raise RuntimeError(
                f"{type(self).__name__} needs ValidationOptions to load data; "
                "use ServiceSchema.validate() or pass options="
            )
        return self._options

    @property
    def bound_options(self) -> ValidationOptions | None:
        """The options if set, without raising (used to hand them to nested blocks)."""
        return self._options

    def bind_options(self, options: ValidationOptions | None) -> None:
        """Set the options for the next load (nested blocks get their parent's)."""
        self._options = options

    @pre_load
    def _drop_blanks(self, data: Any, **kwargs: Any) -> Any:
        if not isinstance(data, Mapping):
            return data  # marshmallow reports the wrong type itself
        known = {field.data_key or name for name, field in self.load_fields.items()}
        cleaned: dict[Any, Any] = {}
        for key, value in data.items():
            if key in known:
                if _is_blank(value):
                    continue
                if isinstance(value, list):
                    value = [item for item in value if not _is_blank(item)]
            cleaned[key] = value
        return cleaned


# ------------------------------------------------------------------------------ the blocks


class AddressSchema(BridgeSchema):
    """A postal address; the postal code must have five digits in Germany."""

    json_schema_extra: ClassVar[dict[str, Any]] = {
        "allOf": [
            {
                "if": {"properties": {"country": {"const": "DE"}}},
                "then": {"properties": {"postal_code": {"pattern": POSTAL_CODE_DE_PATTERN}}},
            }
        ]
    }

    street = Str(required=True, max_length=100, metadata=title("Straße"))
    house_number = Str(required=True, max_length=10, metadata=title("Hausnummer"))
    # Checked in _check_postal_code, because the rule depends on the country.
    postal_code = Str(
        required=True,
        max_length=10,
        metadata=title(
            "Postleitzahl", "In Deutschland fünf Ziffern.", pattern=POSTAL_CODE_ANY_PATTERN
        ),
    )
    town = Str(required=True, max_length=100, metadata=title("Ort"))
    country = Str(
        load_default="DE",
        max_length=10,
        normalize=str.upper,
        validate=validate.Regexp(COUNTRY_PATTERN, error=m.COUNTRY_INVALID),
        metadata=title("Land", "Ländercode nach ISO 3166-1 (zwei Buchstaben)."),
    )

    @validates_schema(skip_on_field_errors=False)
    def _check_postal_code(self, data: dict[str, Any], **kwargs: Any) -> None:
        code = data.get("postal_code")
        # A missing country means it was given but invalid: its own error says enough.
        if code is None or "country" not in data:
            return
        if data["country"] == "DE":
            if not _POSTAL_CODE_DE.match(code):
                raise ValidationError(m.POSTAL_CODE_DE, "postal_code")
        elif not _POSTAL_CODE_ANY.match(code):
            raise ValidationError(m.POSTAL_CODE_ANY, "postal_code")


class ContactSchema(BridgeSchema):
    """How to reach someone: an e-mail address and optionally a phone number."""

    email = Email(required=True, metadata=title("E-Mail-Adresse"))
    phone = phone_field()


class PersonSchema(BridgeSchema):
    """A natural person with address and contact."""

    first_name = Str(required=True, max_length=100, metadata=title("Vorname"))
    last_name = Str(required=True, max_length=100, metadata=title("Nachname"))
    birth_date = Date(not_in_future=True, metadata=title("Geburtsdatum"))
    address = Nested(AddressSchema, required=True, metadata=title("Anschrift"))
    contact = Nested(ContactSchema, required=True, metadata=title("Kontakt"))


class CompanySchema(BridgeSchema):
    """A company or other organisation with address and contact."""

    name = Str(required=True, max_length=200, metadata=title("Name der Firma"))
    contact_person = Str(max_length=200, metadata=title("Ansprechperson"))
    address = Nested(AddressSchema, required=True, metadata=title("Anschrift"))
    contact = Nested(ContactSchema, required=True, metadata=title("Kontakt"))


class AttachmentSchema(BridgeSchema):
    """Metadata of one uploaded file, as extracted by the intake layer."""

    filename = Str(required=True, max_length=255, metadata=title("Dateiname"))
    content_type = Str(
        required=True,
        max_length=255,
        normalize=str.lower,
        validate=validate.Regexp(MIME_PATTERN, error=m.CONTENT_TYPE_INVALID),
        metadata=title("Dateityp (MIME)"),
    )
    size = Int(
        required=True,
        validate=validate.Range(min=1, error=m.FILE_SIZE_INVALID),
        metadata=title("Größe in Byte"),
    )
    sha256 = Str(
        required=True,
        max_length=200,
        normalize=str.lower,
        validate=validate.Regexp(SHA256_PATTERN, error=m.SHA256_INVALID),
        metadata=title("SHA-256-Prüfsumme (hexadezimal)"),
    )


class ServiceBaseSchema(BridgeSchema):
    """Fields at the top level of every service: municipality, consent, attachments."""

    municipality_ags = Str(
        max_length=20,
        validate=validate.Regexp(AGS_PATTERN, error=m.AGS_INVALID),
        metadata=title(
            "Amtlicher Gemeindeschlüssel",
            "Gemeinde, an die der Antrag geht (8 Ziffern), falls ausdrücklich gewählt.",
        ),
    )
    privacy_consent = Bool(
        required=True,
        validate=validate.Equal(True, error=m.CONSENT_REQUIRED),
        error_messages={"required": m.CONSENT_REQUIRED},
        metadata=title("Einwilligung in die Datenverarbeitung"),
    )
    attachments = List(Nested(AttachmentSchema), max_items=50, metadata=title("Anlagen"))
