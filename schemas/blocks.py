"""Field types with bilingual messages, the base schema, and the blocks all services share.

Every field type here replaces marshmallow's English default messages with German `Msg`
objects (subclasses, not patches of marshmallow's globals), so nothing a citizen can read
comes out in English only.

Two kinds of input (`ValidationOptions.form_input`):

* JSON bodies are typed exactly as the published JSON Schema says: booleans are ``true`` /
  ``false``, integers are numbers, choices are the listed values, dates are ISO 8601; every
  pattern and length applies to the value as sent (accepted free text is then trimmed).
* Form bodies carry only strings: they are trimmed and converted by the field's type
  (`Bool.TRUE_WORDS`, digit strings, German dates ``TT.MM.JJJJ``, German synonyms and
  labels of choices, spaces in chip numbers), and blank values count as not filled in.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ClassVar

from marshmallow import (
    EXCLUDE,
    INCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    missing,
    pre_load,
    types,
    validate,
    validates_schema,
)
from marshmallow.decorators import POST_LOAD, PRE_LOAD, VALIDATES, VALIDATES_SCHEMA
from marshmallow.error_store import ErrorStore
from marshmallow.utils import set_value

from schemas import messages as m
from schemas.options import LOCAL_TZ, ValidationOptions
from schemas.text import compact

MIDNIGHT = dt.time(0, 0)
#: Largest integer that JSON consumers such as JavaScript represent exactly.
MAX_SAFE_INTEGER = 2**53 - 1
END_OF_DAY = dt.time(23, 59)

# Patterns use explicit ASCII classes: Python's \d would also accept e.g. Arabic-Indic digits,
# and they double as JSON Schema (ECMA-262) patterns. They are always matched in full
# (`Pattern`): Python's "$" would also match before a trailing newline.
POSTAL_CODE_DE_PATTERN = r"^[0-9]{5}$"
POSTAL_CODE_ANY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 -]{1,8}[A-Za-z0-9]$"
# 6-20 digits, optionally led by "+", with spaces / - ( ) between them.
PHONE_PATTERN = r"^\+?(?:[ ()/-]*[0-9]){6,20}[ ()/-]*$"
AGS_PATTERN = r"^[0-9]{8}$"
COUNTRY_PATTERN = r"^[A-Z]{2}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
MIME_PATTERN = r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*(?:\s*;.*)?$"
#: Free text must contain something other than white space.
NOT_BLANK_PATTERN = r"\S"
#: JSON: a calendar date (RFC 3339 full-date).
ISO_DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
#: JSON: a point in time with its UTC offset (RFC 3339 date-time).
RFC3339_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
#: JSON: a local wall-clock time in Europe/Berlin without offset (what forms mean by "7 Uhr").
#: (Whether the day exists, e.g. no 31 February, is checked by the validator: no regex.)
LOCAL_DATETIME_PATTERN = (
    r"^(?:[1-9][0-9]{3}|0[1-9][0-9]{2}|00[1-9][0-9]|000[1-9])"
    r"-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]+)?)?$"
)

_POSTAL_CODE_DE = re.compile(POSTAL_CODE_DE_PATTERN)
_POSTAL_CODE_ANY = re.compile(POSTAL_CODE_ANY_PATTERN)
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_GERMAN_DATE = re.compile(r"([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{4})")
_GERMAN_DATETIME = re.compile(
    r"([0-9]{1,2})\.([0-9]{1,2})\.([0-9]{4}),?\s+([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?(?:\s*Uhr)?"
)
_ISO_DATETIME_START = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ]")
_JSON_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})?"
)
_FORM_INTEGER = re.compile(r"[+-]?[0-9]+")

# The options of the validation call in progress: set by `using_options` around one load,
# so that cached schema instances can be shared by threads and calls.
_OPTIONS: ContextVar[ValidationOptions | None] = ContextVar("validation_options", default=None)


@contextmanager
def using_options(options: ValidationOptions) -> Iterator[None]:
    """Make ``options`` the options of every schema loaded inside the block."""
    token = _OPTIONS.set(options)
    try:
        yield
    finally:
        _OPTIONS.reset(token)


def current_options() -> ValidationOptions:
    """The options of the validation call in progress (raises outside of one)."""
    options = _OPTIONS.get()
    if options is None:
        raise RuntimeError(
            "loading a service schema needs ValidationOptions; use ServiceSchema.validate()"
        )
    return options


def from_form() -> bool:
    """Whether the value being loaded comes from a form body (strings only)."""
    # current_options() without the call: a validation asks this once per field.
    options = _OPTIONS.get()
    if options is None:
        return current_options().form_input  # raises, with its message
    return options.form_input


def _messages(**specific: m.Msg) -> types.ErrorMessages:
    """A field's error messages: the ones every field has plus its ``specific`` ones."""
    return {"required": m.REQUIRED, "null": m.NULL, "validator_failed": m.INVALID, **specific}


class Pattern(validate.Validator):
    """A regular expression the whole value must match (no trailing newline slips through).

    Like marshmallow's Regexp it exposes ``regex``, which apispec publishes as ``pattern``.
    """

    def __init__(self, pattern: str, *, error: m.Msg) -> None:
        """Create the validator for ``pattern`` with the message ``error``."""
        self.regex = re.compile(pattern)
        self.error = self.message = error

    def _repr_args(self) -> str:
        return f"regex={self.regex!r}"

    def __call__(self, value: str) -> str:
        """Return ``value`` if the pattern matches all of it, else raise."""
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self.message)
        return value


# --------------------------------------------------------------------------- parsing helpers


def _date(year: str, month: str, day: str) -> dt.date | None:
    try:
        return dt.date(int(year), int(month), int(day))
    except ValueError:
        return None


def parse_date(value: object, *, form: bool = True) -> dt.date | None:
    """Parse ``YYYY-MM-DD`` (and, from forms, ``TT.MM.JJJJ``); None if not a calendar date."""
    if isinstance(value, dt.datetime):
        return None  # a point in time is not a calendar date; refuse rather than truncate
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip() if form else value
    if match := _ISO_DATE.fullmatch(text):
        return _date(*match.groups())
    if form and (match := _GERMAN_DATE.fullmatch(text)):
        # Formcycle's date picker submits the displayed German format.
        day, month, year = match.groups()
        return _date(year, month, day)
    return None


def in_local_time(moment: dt.datetime) -> dt.datetime:
    """``moment`` in `LOCAL_TZ` (naive means local); kept as given at the ends of the range."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=LOCAL_TZ)
    try:
        return moment.astimezone(LOCAL_TZ)
    except OverflowError:
        # 9999-12-31T23:00-05:00 has no local time before year 10000; the instant stays valid.
        return moment


def _parse_json_datetime(text: str, date_only_time: dt.time) -> dt.datetime | None:
    """RFC 3339 date-time, a local date-time without offset, or a full-date (JSON input)."""
    if (day := parse_date(text, form=False)) is not None:
        return dt.datetime.combine(day, date_only_time)
    match = _JSON_DATETIME.fullmatch(text)
    if match is None:
        return None
    year, month, mday, hour, minute, second, fraction, offset = match.groups()
    if offset is not None and second is None:
        return None  # RFC 3339 needs the seconds
    if offset is None and any(ch in text for ch in "tz"):
        return None  # the local form is written exactly as published (upper-case T)
    try:
        tz: dt.tzinfo | None = None
        if offset is not None and offset not in "Zz":
            sign = -1 if offset[0] == "-" else 1
            delta = dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
            if int(offset[4:6]) > 59:
                return None
            tz = dt.timezone(sign * delta)
        elif offset is not None:
            tz = dt.UTC
        # RFC 3339 allows a leap second (:60); Python cannot represent it, so it becomes :59.
        seconds = min(int(second or 0), 59)
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        return dt.datetime(
            int(year), int(month), int(mday), int(hour), int(minute), seconds, micro, tzinfo=tz
        )
    except ValueError:
        return None


def _parse_form_datetime(value: str, date_only_time: dt.time) -> dt.datetime | None:
    """ISO 8601 (also with a space), German ``TT.MM.JJJJ HH:MM [Uhr]``, or a date (forms)."""
    if (day := parse_date(value)) is not None:
        return dt.datetime.combine(day, date_only_time)
    text = value.strip()
    try:
        if match := _GERMAN_DATETIME.fullmatch(text):
            d, mo, y, h, mi, s = match.groups()
            return dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0))
        if _ISO_DATETIME_START.match(text):
            return dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return None


def parse_datetime(
    value: object, date_only_time: dt.time, *, form: bool = True
) -> dt.datetime | None:
    """Parse a point in time, or a date (at ``date_only_time``); None if it is none.

    The result is aware and in `LOCAL_TZ`: naive input is taken as local wall-clock time,
    which is what a citizen means by "ab 7 Uhr".
    """
    parsed: dt.datetime | None
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        parsed = (_parse_form_datetime if form else _parse_json_datetime)(value, date_only_time)
    else:
        parsed = None
    return None if parsed is None else in_local_time(parsed)


#: Exact types that `to_jsonable` and `is_blank` meet most and can answer without an ABC check
#: (isinstance against Mapping costs more than the rest of either function).
_SCALARS: frozenset[type] = frozenset({str, int, bool, float, type(None)})


def to_jsonable(value: Any) -> Any:
    """Turn loaded data into JSON-serialisable data (dates and datetimes as ISO strings)."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict:
        # Scalars, most of the values, without a call each.
        return {
            str(key): item if type(item) in _SCALARS else to_jsonable(item)
            for key, item in value.items()
        }
    if isinstance(value, dt.date):  # also datetime, a date subclass
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    return value


def is_blank(value: object) -> bool:
    """True for None, whitespace, and containers holding nothing else (hidden form sections)."""
    if value is None:
        return True
    if type(value) is str:
        return not value.strip()
    if type(value) is dict:
        # The sections of a form, checked without an ABC test; the first filled-in value ends it.
        return all(map(is_blank, value.values()))
    if type(value) in _SCALARS:
        return False
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, Mapping):
        return all(is_blank(item) for item in value.values())
    if isinstance(value, list | tuple):
        return all(is_blank(item) for item in value)
    return False


def is_given(original: object, key: str) -> bool:
    """Whether the raw input ``original`` carries a value for ``key``.

    In JSON every key that is present counts (its value is checked by its own field); in a
    form post a blank value means "not filled in".
    """
    if not isinstance(original, Mapping) or key not in original:
        return False
    return not (from_form() and is_blank(original[key]))


# ------------------------------------------------------------------------------ field types


class _Validated:
    """Runs a field's validators exactly as marshmallow's ``And`` does, without building one.

    marshmallow makes a new ``And`` of the field's validators for every value it checks;
    most of our fields have one validator or none, so that object cost more than they do.
    """

    validators: list[types.Validator]

    def _validate(self, value: Any) -> None:
        errors: list[Any] = []
        kwargs: dict[str, Any] = {}
        for validator in self.validators:
            try:
                validator(value)
            except ValidationError as err:
                kwargs.update(err.kwargs)
                if isinstance(err.messages, dict):
                    errors.append(err.messages)
                else:
                    errors.extend(err.messages)
        if errors:
            raise ValidationError(errors, **kwargs)


class Str(_Validated, fields.String):
    """A non-empty string with a length limit and an optional normalisation."""

    default_error_messages = _messages(
        invalid=m.STRING_INVALID, invalid_utf8=m.STRING_UTF8, blank=m.BLANK
    )

    def __init__(
        self,
        *,
        max_length: int | None = 200,
        normalize: Callable[[str], str] | None = None,
        blank_pattern: bool = True,
        **kwargs: Any,
    ) -> None:
        """Create the field; ``normalize`` runs on the trimmed text of form input.

        ``blank_pattern=False`` leaves the "not only white space" pattern out of the JSON
        Schema, for a field whose pattern a condition of its block sets.
        """
        super().__init__(**kwargs)
        self.normalize = normalize
        self.blank_pattern = blank_pattern
        if max_length is not None:
            # Appended here so every free text is bounded and JSON Schema shows maxLength.
            self.validators.append(validate.Length(max=max_length, error=m.TOO_LONG))

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not text.strip():
            raise self.make_error("blank")
        if not from_form():
            # The published constraints hold for the text as sent; only then is it trimmed.
            self._validate(text)
            return text.strip()
        text = text.strip()
        if self.normalize is not None:
            text = self.normalize(text)
        if not text:
            raise self.make_error("blank")
        return text


class Choice(Str):
    """One of fixed values, each with its German label; forms may also send labels or synonyms.

    From forms, case, umlauts and punctuation are tolerated and the German labels and listed
    ``aliases`` are accepted; JSON must carry one of the values exactly.
    """

    def __init__(
        self,
        choices: Mapping[str, str],
        *,
        aliases: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Create the field; ``choices`` maps each value to its German label (for clerks)."""
        super().__init__(max_length=None, **kwargs)  # OneOf bounds it already
        self.labels = dict(choices)
        self.choices = tuple(self.labels)
        self._lookup: dict[str, str] = {}
        spellings = [(choice, choice) for choice in self.choices]
        spellings += [(label, choice) for choice, label in self.labels.items()]
        spellings += list((aliases or {}).items())
        for spelling, choice in spellings:
            if choice not in self.choices:
                raise ValueError(f"alias {spelling!r} points to unknown choice {choice!r}")
            if self._lookup.setdefault(compact(spelling), choice) != choice:
                raise ValueError(f"spelling {spelling!r} would mean two choices")
        self.validators.insert(0, validate.OneOf(self.choices, error=m.CHOICE_INVALID))

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not from_form():
            return text
        return self._lookup.get(compact(text), text)


class Int(_Validated, fields.Integer):
    """An integer: a JSON number without fraction, or from forms a string of digits.

    ``option_bounds`` names the `ValidationOptions` attributes holding the inclusive bounds
    (e.g. the configured zone length), reported with ``bounds_error``.
    """

    default_error_messages = _messages(invalid=m.INTEGER_INVALID, too_large=m.NUMBER_TOO_LARGE)

    def __init__(
        self,
        *,
        option_bounds: tuple[str, str] | None = None,
        bounds_error: m.Msg | None = None,
        **kwargs: Any,
    ) -> None:
        """Create the field."""
        super().__init__(**kwargs)
        self.option_bounds = option_bounds
        self.bounds_error = bounds_error or m.INVALID
        # Bounded so that JSON consumers can represent it; JSON Schema shows the range.
        self.validators.append(
            validate.Range(min=-MAX_SAFE_INTEGER, max=MAX_SAFE_INTEGER, error=m.NUMBER_TOO_LARGE)
        )

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> int:
        number: int
        if isinstance(value, bool):
            raise self.make_error("invalid", input=value)  # True is an int to Python, not JSON
        if isinstance(value, int):
            number = value
        elif isinstance(value, float):
            # JSON Schema counts 2.0 as an integer; marshmallow would turn 2.5 into 2 silently.
            if not value.is_integer():
                raise self.make_error("invalid", input=value)
            number = int(value)
        elif isinstance(value, str) and from_form() and _FORM_INTEGER.fullmatch(value.strip()):
            if len(value.strip()) > 20:
                raise self.make_error("too_large", input=value)
            number = int(value.strip())
        else:
            raise self.make_error("invalid", input=value)
        if self.option_bounds is not None:
            options = current_options()
            low, high = (getattr(options, name) for name in self.option_bounds)
            if not low <= number <= high:
                raise ValidationError(self.bounds_error.format(min=low, max=high))
        return number


class Bool(_Validated, fields.Boolean):
    """Yes or no: JSON ``true``/``false``; from forms the words of a checkbox or a choice."""

    #: Form values (compared case-insensitively, trimmed) that mean yes / no.
    TRUE_WORDS = frozenset({"true", "on", "yes", "ja", "j", "1"})
    FALSE_WORDS = frozenset({"false", "off", "no", "nein", "n", "0"})
    default_error_messages = _messages(invalid=m.BOOLEAN_INVALID)

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and from_form():
            word = value.strip().lower()
            if word in self.TRUE_WORDS:
                return True
            if word in self.FALSE_WORDS:
                return False
        raise self.make_error("invalid", input=value)


class Date(_Validated, fields.Date):
    """A calendar date (ISO; from forms also German), optionally not after the local today."""

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
        day = parse_date(value, form=from_form())
        if day is None:
            raise self.make_error("invalid")
        if self.not_in_future and day > current_options().today:
            raise self.make_error("in_future")
        return day


class DateTime(_Validated, fields.DateTime):
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
        parsed = parse_datetime(value, self.date_only_time, form=from_form())
        if parsed is None:
            raise self.make_error("invalid")
        return parsed


class Email(_Validated, fields.Email):
    """An e-mail address (at most 254 characters, the SMTP limit)."""

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
        text = super()._deserialize(value, attr, data, **kwargs)
        if not text.strip():
            raise self.make_error("blank")
        if from_form():
            return text.strip()
        self._validate(text)  # as sent, like every JSON value
        return text.strip()


class List(_Validated, fields.List[Any]):
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


class Nested(_Validated, fields.Nested):
    """A nested block that inherits the unknown-key policy of its parent."""

    default_error_messages = _messages(type=m.OBJECT_TYPE)

    def __deepcopy__(self, memo: dict[int, Any]) -> Nested:
        # marshmallow copies fields per schema instance but would share a nested schema
        # instance that was already built; the unknown policy is set on it, so never share.
        new = copy.copy(self)
        new._schema = None
        return new

    def _load(self, value: Any, partial: bool | types.StrSequenceOrSet | None = None) -> Any:
        schema = self.schema
        parent = self.root
        if isinstance(parent, Schema):
            # Set on the instance (not passed to load) so it reaches every deeper level too.
            schema.unknown = parent.unknown
        try:
            return schema.load(value, partial=partial)
        except ValidationError as error:
            raise ValidationError(error.messages, valid_data=error.valid_data) from error


# ------------------------------------------------------------------- the one-pass fast loaders


class _Decline(Exception):
    """A fast loader is not sure about a value: the field goes through marshmallow instead."""


_DECLINE = _Decline()

#: A compiled field loader: (raw value or `missing`, form input?, options) -> the loaded value,
#: exactly what ``field.deserialize`` returns for it, or raises `_Decline`.
FastLoader = Callable[[Any, bool, ValidationOptions], Any]


def _always_decline(value: Any, form: bool, options: ValidationOptions) -> Any:
    """The loader of a field no fast loader is compiled for: marshmallow always."""
    raise _DECLINE


def _check_of(validators: list[types.Validator]) -> Callable[[Any], bool]:
    """One test that the value passes all ``validators`` (True) or not (False).

    Only the verdict counts: a failing value goes to marshmallow, which makes the messages.
    Maximum lengths and patterns, nearly all of our validators, are inlined.
    """
    checks: list[Callable[[Any], bool]] = []
    for validator in validators:
        if (
            type(validator) is validate.Length
            and validator.min is None
            and validator.equal is None
            and validator.max is not None
        ):
            checks.append(functools.partial(_short_enough, validator.max))
        elif type(validator) is Pattern:
            checks.append(functools.partial(_matches, validator.regex))
        elif type(validator) is validate.OneOf:
            checks.append(functools.partial(_listed, validator.choices))
        else:
            checks.append(functools.partial(_passes, validator))
    if not checks:
        return lambda value: True
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        # Most fields with two checks (a pattern and a length): all() over a generator
        # would cost more than both checks together.
        first, second = checks

        def both(value: Any) -> bool:
            return first(value) and second(value)

        return both

    def check_all(value: Any) -> bool:
        return all(check(value) for check in checks)

    return check_all


def _short_enough(limit: int, value: Any) -> bool:
    """`validate.Length` with only a maximum."""
    return len(value) <= limit


def _matches(regex: re.Pattern[str], value: Any) -> bool:
    """`Pattern`: the whole value matches."""
    return regex.fullmatch(value) is not None


def _listed(choices: Any, value: Any) -> bool:
    """`validate.OneOf`: the value is one of the choices (never a TypeError for our values)."""
    try:
        return value in choices
    except TypeError:
        return False


def _passes(validator: types.Validator, value: Any) -> bool:
    """Whether ``validator`` lets ``value`` through (its return value is ignored, as ours do)."""
    try:
        validator(value)
    except ValidationError:
        return False
    return True


def _text_loader(field: Str | Email) -> FastLoader:
    """Str, Choice and Email: the value loaded as their ``_deserialize`` and validators do."""
    check = _check_of(field.validators)
    normalize = field.normalize if isinstance(field, Str) else None
    lookup = field._lookup if isinstance(field, Choice) else None

    def load(value: Any, form: bool, options: ValidationOptions) -> Any:
        if type(value) is not str:
            raise _DECLINE
        text = value.strip()
        if not text:
            raise _DECLINE
        if form:
            if normalize is not None:
                text = normalize(text)
                if not text:
                    raise _DECLINE
            if lookup is not None:
                text = lookup.get(compact(text), text)
        elif not check(value):  # JSON: the published constraints hold for the text as sent
            raise _DECLINE
        if not check(text):
            raise _DECLINE
        return text

    return load


def _int_loader(field: Int) -> FastLoader:
    """`Int`: a JSON integer or a form's digits, within its bounds."""
    check = _check_of(field.validators)
    bounds = field.option_bounds

    def load(value: Any, form: bool, options: ValidationOptions) -> Any:
        kind = type(value)
        if kind is int:
            number = value
        elif kind is str and form:
            text = value.strip()
            if len(text) > 20 or not _FORM_INTEGER.fullmatch(text):
                raise _DECLINE
            number = int(text)
        else:
            raise _DECLINE  # floats, bools and the rest: marshmallow decides
        if bounds is not None:
            low, high = (getattr(options, name) for name in bounds)
            if not low <= number <= high:
                raise _DECLINE
        if not check(number):
            raise _DECLINE
        return number

    return load


def _bool_loader(field: Bool) -> FastLoader:
    """`Bool`: JSON true/false, or a form's yes/no words."""
    check = _check_of(field.validators)

    def load(value: Any, form: bool, options: ValidationOptions) -> Any:
        if type(value) is bool:
            result = value
        elif type(value) is str and form:
            word = value.strip().lower()
            if word in Bool.TRUE_WORDS:
                result = True
            elif word in Bool.FALSE_WORDS:
                result = False
            else:
                raise _DECLINE
        else:
            raise _DECLINE
        if not check(result):
            raise _DECLINE
        return result

    return load


def _date_loader(field: Date) -> FastLoader:
    """`Date`: a calendar date, not after today where the field says so."""
    check = _check_of(field.validators)
    not_in_future = field.not_in_future

    def load(value: Any, form: bool, options: ValidationOptions) -> Any:
        day = parse_date(value, form=form)
        if day is None or (not_in_future and day > options.today) or not check(day):
            raise _DECLINE
        return day

    return load


def _datetime_loader(field: DateTime) -> FastLoader:
    """`DateTime`: a point in time in local time."""
    check = _check_of(field.validators)
    date_only_time = field.date_only_time

    def load(value: Any, form: bool, options: ValidationOptions) -> Any:
        moment = parse_datetime(value, date_only_time, form=form)
        if moment is None or not check(moment):
            raise _DECLINE
        return moment

    return load


def _list_loader(field: List) -> FastLoader | None:
    """`List`: a list whose every item its inner field's fast loader takes."""
    inner = _value_loader(field.inner)
    if inner is None:
        return None
    check = _check_of(field.validators)

    def load(value: Any, form: bool, options: ValidationOptions) -> Any:
        if type(value) is not list:
            raise _DECLINE
        try:
            result = [inner(item, form, options) for item in value]
        except ValidationError:
            # A block's errors go under the item's index, which marshmallow's List adds.
            raise _DECLINE from None
        if not check(result):
            raise _DECLINE
        return result

    return load


def _nested_loader(field: Nested) -> FastLoader | None:
    """`Nested`: a block loaded by its schema (whose own fields run their fast loaders).

    Its errors are the block's own (marshmallow's), raised as ``field.deserialize`` raises them.
    """
    if field.many or field.validators:
        return None

    def load(value: Any, form: bool, options: ValidationOptions) -> Any:
        if type(value) is not dict:
            raise _DECLINE
        return field._load(value, None)

    return load


#: The fast loader compilers by the exact field class (a subclass may change anything).
_LOADERS: dict[type[Any], Callable[[Any], FastLoader | None]] = {
    Str: _text_loader,
    Choice: _text_loader,
    Email: _text_loader,
    Int: _int_loader,
    Bool: _bool_loader,
    Date: _date_loader,
    DateTime: _datetime_loader,
    List: _list_loader,
    Nested: _nested_loader,
}


def _value_loader(field: fields.Field[Any]) -> FastLoader | None:
    """The fast loader of a present, non-null value of ``field``; None if there is none."""
    compile_loader = _LOADERS.get(type(field))
    if compile_loader is None or field.pre_load or field.post_load:
        return None
    return compile_loader(field)


def fast_loader(field: fields.Field[Any]) -> FastLoader:
    """``field.deserialize`` for the common, valid value in one pass; `_Decline` when unsure.

    A missing optional field gets its default as marshmallow gives it; a missing required
    one, None, a value of another type or one that fails a check declines, so marshmallow
    loads it (and words the error).
    """
    present = _value_loader(field)
    if present is None:
        return _always_decline
    required = field.required
    default = field.load_default

    def load(value: Any, form: bool, options: ValidationOptions) -> Any:
        if value is missing:
            if required:
                raise _DECLINE
            return default() if callable(default) else default
        return present(value, form, options)

    return load


# --------------------------------------------------------------------------- field helpers


def title(de: str, description: str | None = None, **extra: Any) -> dict[str, Any]:
    """Field metadata with a German title (and description) for JSON Schema / OpenAPI.

    A description may name the limits of `schemas.options.Limits` in braces (``{lead_hours}``);
    the published schema fills in the configured values. ``required_when`` says in German when
    an optional field is needed after all (the condition its block's validator checks), for
    the form designer's sheet (`domain.formcycle_sheet`).
    """
    meta: dict[str, Any] = {"title": de, **extra}
    if description:
        meta["description"] = description
    return meta


def postal_code_field(**kwargs: Any) -> Str:
    """A German postal code: exactly five digits."""
    return Str(
        max_length=10,
        validate=Pattern(POSTAL_CODE_DE_PATTERN, error=m.POSTAL_CODE_DE),
        metadata=title("Postleitzahl"),
        **kwargs,
    )


def phone_field(*, required: bool = False, label: str = "Telefon") -> Str:
    """A phone number such as ``+49 6081 1234-0`` or ``06081/12340`` (6-20 digits)."""
    return Str(
        required=required,
        max_length=40,
        validate=Pattern(PHONE_PATTERN, error=m.PHONE_INVALID),
        metadata=title(label, examples=["+49 6081 1234-0", "06081/12340"]),
    )


# ------------------------------------------------------------------------------ base schema


class BridgeSchema(Schema):
    """Base of all schemas: bilingual object messages, blank-tolerant forms, per-call options.

    From forms, blank values (None, whitespace, sections whose fields are all blank) of known
    fields are dropped before loading, because form posts send every field, filled in or not:
    a blank optional field is simply absent, a blank required one gets "required". JSON is
    taken as sent.
    """

    class Meta(Schema.Meta):
        """Unknown keys are ignored unless the caller asks to reject them."""

        unknown = EXCLUDE

    # marshmallow merges this class attribute into each instance's messages.
    error_messages = {"unknown": m.UNKNOWN, "type": m.OBJECT_TYPE}  # noqa: RUF012

    #: Extra JSON Schema keywords (conditional requirements) merged in by `schemas.jsonschema`.
    json_schema_extra: ClassVar[dict[str, Any]] = {}

    @property
    def options(self) -> ValidationOptions:
        """The options of the current call."""
        return current_options()

    @functools.cached_property
    def _known_keys(self) -> frozenset[str]:
        """The input keys of the fields this instance loads (fixed once it is built)."""
        return frozenset(field.data_key or name for name, field in self.load_fields.items())

    @functools.cached_property
    def _loading(self) -> tuple[tuple[str, fields.Field[Any], str], ...]:
        """Per loaded field, in marshmallow's order: its input key, the field, its output key."""
        return tuple(
            (field.data_key if field.data_key is not None else name, field, field.attribute or name)
            for name, field in self.load_fields.items()
        )

    @functools.cached_property
    def _fast_loading(self) -> tuple[tuple[str, fields.Field[Any], str, FastLoader], ...]:
        """`_loading` with each field's one-pass loader (`fast_loader`), compiled once."""
        return tuple((key, field, out, fast_loader(field)) for key, field, out in self._loading)

    @functools.cached_property
    def _input_keys(self) -> frozenset[str]:
        """The input keys of the loaded fields, spelled as marshmallow compares unknown keys."""
        return frozenset(key for key, _, _ in self._loading)

    @functools.cached_property
    def _load_plan(self) -> _LoadPlan:
        """This instance's load hooks, bound and in the order marshmallow runs them."""

        def ordered(tag: str) -> tuple[tuple[Callable[..., Any], bool, bool], ...]:
            # Collection hooks first, then the per-object ones, as marshmallow's invokers do.
            return tuple(
                (getattr(self, name), kw.get("pass_original", False), hook_many)
                for collection in (True, False)
                for name, hook_many, kw in self._hooks[tag]
                if hook_many == collection
            )

        return _LoadPlan(
            pre_load=ordered(PRE_LOAD),
            post_load=ordered(POST_LOAD),
            schema_validators=tuple(
                (getattr(self, name), kw.get("pass_original", False), kw["skip_on_field_errors"])
                for collection in (True, False)
                for name, hook_many, kw in self._hooks[VALIDATES_SCHEMA]
                if hook_many == collection
            ),
            field_validators=bool(self._hooks[VALIDATES]),
        )

    def _do_load(
        self,
        data: Any,
        *,
        many: bool | None = None,
        partial: bool | types.StrSequenceOrSet | None = None,
        unknown: types.UnknownOption | None = None,
        postprocess: bool = True,
    ) -> Any:
        # marshmallow's `_do_load` dispatches every hook through generic invokers (a keyword
        # dict, a getattr and a many/pass_collection test per hook, per object); the nested
        # blocks make that nine loads per submission. The bridge's case (one object, no
        # `partial`, post-processing on) runs here step for step as marshmallow 4.4's, with the
        # hooks bound once per instance; every other case goes to marshmallow.
        # tests/schemas/test_schemas_loading.py holds both to marshmallow's own.
        if many or self.many or partial is not None or self.partial is not None or not postprocess:
            return super()._do_load(
                data, many=many, partial=partial, unknown=unknown, postprocess=postprocess
            )
        plan = self._load_plan
        error_store = ErrorStore()  # type: ignore[no-untyped-call]  # marshmallow's ErrorStore has no annotations
        errors: dict[str, Any] = {}
        unknown = self.unknown if unknown is None else unknown
        result: Any = None
        processed = data
        if plan.pre_load:
            try:
                processed = _run_processors(plan.pre_load, data, data, unknown)
            except ValidationError as err:
                errors = err.normalized_messages()  # type: ignore[no-untyped-call]  # as above
        if not errors:
            result = self._deserialize(
                processed, error_store=error_store, many=False, partial=None, unknown=unknown
            )
            if plan.field_validators:
                self._invoke_field_validators(error_store=error_store, data=result, many=False)
            if plan.schema_validators:
                field_errors = bool(error_store.errors)
                for validator, pass_original, skip_on_field_errors in plan.schema_validators:
                    if field_errors and skip_on_field_errors:
                        continue
                    self._run_validator(
                        validator,
                        result,
                        original_data=data,
                        error_store=error_store,
                        many=False,
                        partial=None,
                        unknown=unknown,
                        pass_original=pass_original,
                    )
            errors = error_store.errors
            if not errors and plan.post_load:
                try:
                    result = _run_processors(plan.post_load, result, data, unknown)
                except ValidationError as err:
                    errors = err.normalized_messages()  # type: ignore[no-untyped-call]  # as above
        if errors:
            exc = ValidationError(errors, data=data, valid_data=result)
            self.handle_error(exc, data, many=False, partial=None)
            raise exc
        return result

    def _deserialize(
        self,
        data: Any,
        *,
        error_store: ErrorStore,
        many: bool = False,
        partial: bool | types.StrSequenceOrSet | None = None,
        unknown: types.UnknownOption = RAISE,
        index: int | None = None,
    ) -> Any:
        # marshmallow's loop builds a closure and a keyword dict for every field of every
        # object. The bridge loads one object at a time without `partial`; that case runs here,
        # step for step as marshmallow 4.4's `Schema._deserialize` (the schema tests pin the
        # messages and the data), and every other case goes to marshmallow.
        if many or partial is not None or not isinstance(data, Mapping):
            return super()._deserialize(
                data,
                error_store=error_store,
                many=many,
                partial=partial,
                unknown=unknown,
                index=index,
            )
        index = index if self.opts.index_errors else None
        loaded = self.dict_class()
        options = _OPTIONS.get()
        if options is None:
            current_options()  # raises, with its message (no schema loads without options)
            raise AssertionError("unreachable")
        form = options.form_input
        for key, field, attribute, fast in self._fast_loading:
            raw = data.get(key, missing)
            try:
                try:
                    # The common, valid value in one pass; anything the fast loader is not
                    # sure about goes through marshmallow, which also words every error.
                    value = fast(raw, form, options)
                except _Decline:
                    value = field.deserialize(raw, key, data)
            except ValidationError as error:
                error_store.store_error(error.messages, key, index=index)  # type: ignore[no-untyped-call]  # marshmallow's ErrorStore has no annotations
                value = error.valid_data or missing
            if value is not missing:
                if "." in attribute:
                    set_value(loaded, attribute, value)  # a dotted path, as marshmallow sets it
                else:
                    loaded[attribute] = value
        if unknown != EXCLUDE:
            for key in set(data) - self._input_keys:
                if unknown == INCLUDE:
                    loaded[key] = data[key]
                elif unknown == RAISE:
                    error_store.store_error([self.error_messages["unknown"]], key, index)  # type: ignore[no-untyped-call]  # as above
        return loaded

    @pre_load
    def _drop_blanks(self, data: Any, **kwargs: Any) -> Any:
        if not isinstance(data, Mapping) or not from_form():
            return data  # marshmallow reports the wrong type itself; JSON is taken as sent
        known = self._known_keys
        cleaned: dict[Any, Any] = {}
        for key, value in data.items():
            if key in known:
                # A string, nearly every value of a form, is blank when it strips to nothing.
                if (not value.strip()) if type(value) is str else is_blank(value):
                    continue
                if isinstance(value, list):
                    value = [item for item in value if not is_blank(item)]
            cleaned[key] = value
        return cleaned


@dataclass(frozen=True)
class _LoadPlan:
    """A schema instance's load hooks, bound: (method, pass_original, its third flag)."""

    #: (processor, pass_original, pass_collection)
    pre_load: tuple[tuple[Callable[..., Any], bool, bool], ...]
    post_load: tuple[tuple[Callable[..., Any], bool, bool], ...]
    #: (validator, pass_original, skip_on_field_errors)
    schema_validators: tuple[tuple[Callable[..., Any], bool, bool], ...]
    #: Whether the schema has `@validates` field validators (marshmallow runs those itself).
    field_validators: bool


def _run_processors(
    processors: tuple[tuple[Callable[..., Any], bool, bool], ...],
    data: Any,
    original: Any,
    unknown: types.UnknownOption,
) -> Any:
    """Run pre- or post-load processors on one object as marshmallow's `_invoke_processors`
    does with ``many=False`` (a collection hook then gets the object, as there)."""
    for processor, pass_original, _ in processors:
        if pass_original:
            data = processor(data, original, many=False, partial=None, unknown=unknown)
        else:
            data = processor(data, many=False, partial=None, unknown=unknown)
    return data


# ------------------------------------------------------------------------------ the blocks


class AddressSchema(BridgeSchema):
    """A postal address; the postal code must have five digits in Germany."""

    # A missing country means Germany (the default). Conditions are written as explicit
    # alternatives ("anyOf"), which generators and form tools handle better than if/not.
    json_schema_extra: ClassVar[dict[str, Any]] = {
        "anyOf": [
            {
                "properties": {
                    "country": {"const": "DE"},
                    "postal_code": {"pattern": POSTAL_CODE_DE_PATTERN},
                }
            },
            {
                "required": ["country"],
                "properties": {
                    "country": {"not": {"const": "DE"}},
                    "postal_code": {"pattern": POSTAL_CODE_ANY_PATTERN},
                },
            },
        ]
    }

    street = Str(required=True, max_length=100, metadata=title("Straße"))
    house_number = Str(required=True, max_length=10, metadata=title("Hausnummer"))
    # Checked in _check_postal_code, because the rule depends on the country.
    postal_code = Str(
        required=True,
        max_length=10,
        blank_pattern=False,  # the pattern depends on the country (json_schema_extra)
        metadata=title("Postleitzahl", "In Deutschland fünf Ziffern."),
    )
    town = Str(required=True, max_length=100, metadata=title("Ort"))
    country = Str(
        load_default="DE",
        max_length=10,
        normalize=str.upper,
        validate=Pattern(COUNTRY_PATTERN, error=m.COUNTRY_INVALID),
        metadata=title("Land", "Ländercode nach ISO 3166-1 (zwei Buchstaben)."),
    )

    @validates_schema(pass_original=True, skip_on_field_errors=False)
    def _check_postal_code(
        self, data: dict[str, Any], original_data: Mapping[str, Any], **kwargs: Any
    ) -> None:
        code = data.get("postal_code")
        # A missing country means it was given but invalid: its own error says enough.
        if code is None or "country" not in data:
            return
        if not from_form():
            code = original_data["postal_code"]  # JSON: the code as sent, not trimmed
        if data["country"] == "DE":
            if not _POSTAL_CODE_DE.fullmatch(code):
                raise ValidationError(m.POSTAL_CODE_DE, "postal_code")
        elif not _POSTAL_CODE_ANY.fullmatch(code):
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
        validate=Pattern(MIME_PATTERN, error=m.CONTENT_TYPE_INVALID),
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
        validate=Pattern(SHA256_PATTERN, error=m.SHA256_INVALID),
        metadata=title("SHA-256-Prüfsumme (hexadezimal)"),
    )


class ServiceBaseSchema(BridgeSchema):
    """Fields at the top level of every service: municipality, consent, attachments."""

    municipality_ags = Str(
        max_length=20,
        validate=Pattern(AGS_PATTERN, error=m.AGS_INVALID),
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
