"""Parse webhook bodies (urlencoded, multipart, JSON) strictly: broken input is refused, not guessed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NoReturn
from urllib.parse import unquote

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from domain.intake.forms import RawSubmission, Upload
from domain.intake.limits import BodyLimits, json_shape, malformed
from domain.problems import Problem, msg

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
JSON_TYPES = ("application/json",)
SUPPORTED = (FORM, MULTIPART, *JSON_TYPES)


def _malformed(de: str, en: str) -> NoReturn:
    raise malformed(de, en)


def unsupported_media_type(media_type: str) -> Problem:
    """The 415 problem naming what is accepted."""
    return Problem(
        415,
        "unsupported-media-type",
        msg("Dieses Datenformat wird nicht angenommen.", "This media type is not supported."),
        msg(
            f"Erhalten: {media_type or 'keine Angabe'}; erlaubt sind {', '.join(SUPPORTED)}.",
            f"Got: {media_type or 'none'}; supported are {', '.join(SUPPORTED)}.",
        ),
    )


def media_type_of(content_type: str | None) -> tuple[str, dict[str, str]]:
    """The lower-cased media type and its parameters."""
    media_type, params = parse_options_header(content_type or "")
    return media_type.lower(), params


def parse_body(content_type: str | None, body: bytes, limits: BodyLimits) -> RawSubmission:
    """Parse a body of a supported media type into a RawSubmission or raise a Problem."""
    media_type, params = media_type_of(content_type)
    if media_type == FORM:
        return _parse_form(body, params.get("charset", "utf-8"), limits.max_fields)
    if media_type == MULTIPART:
        return _parse_multipart(body, params.get("boundary", ""), limits)
    if media_type in JSON_TYPES:
        return _parse_json(body, limits)
    raise unsupported_media_type(media_type)


def _decode(raw: bytes, charset: str) -> str:
    try:
        return raw.decode(charset)
    except LookupError:
        _malformed(f"Unbekannte Zeichenkodierung {charset!r}.", f"Unknown charset {charset!r}.")
    except UnicodeDecodeError:
        _malformed(
            f"Der Text ist nicht gültig in {charset} kodiert.", f"The text is not valid {charset}."
        )


def _parse_form(body: bytes, charset: str, max_fields: int) -> RawSubmission:
    text = _decode(body, charset).strip()
    if not text:
        return RawSubmission(fields=[])
    try:
        pairs = form_pairs(text, charset, max_fields)
    except UnicodeDecodeError:
        _malformed(
            f"Ein Wert ist nicht gültig in {charset} kodiert.", f"A value is not valid {charset}."
        )
    except ValueError:
        _malformed(
            "Die Formulardaten sind nicht gültig kodiert oder enthalten zu viele Felder.",
            "The form data is not validly encoded or has too many fields.",
        )
    return RawSubmission(fields=pairs)


def form_pairs(text: str, charset: str, max_fields: int) -> list[tuple[str, str]]:
    """The fields of a non-empty urlencoded text, as `urllib.parse.parse_qsl` gives them with
    ``keep_blank_values=True, strict_parsing=True, errors="strict"`` and `max_fields`.

    The same steps and errors (ValueError for too many fields or a field without "=",
    UnicodeDecodeError for an escape that is not `charset`), without two `unquote` calls per
    field: only a name or value holding "+" or "%" needs them, and few do.
    tests/bridge/intake/test_form_pairs.py holds it to parse_qsl.
    """
    if max_fields < 1 + text.count("&"):
        raise ValueError("Max number of fields exceeded")
    pairs = []
    for item in text.split("&"):
        name, equals, value = item.partition("=")
        if not equals:
            raise ValueError(f"bad query field: {item!r}")
        if "+" in name:
            name = name.replace("+", " ")
        if "%" in name:
            name = unquote(name, encoding=charset, errors="strict")
        if "+" in value:
            value = value.replace("+", " ")
        if "%" in value:
            value = unquote(value, encoding=charset, errors="strict")
        pairs.append((name, value))
    return pairs


def _parse_multipart(body: bytes, boundary: str, limits: BodyLimits) -> RawSubmission:
    if not boundary:
        _malformed(
            "Der multipart-Grenzwert (boundary) fehlt.", "The multipart boundary is missing."
        )
    decoder = MultipartDecoder(boundary.encode("latin-1", "replace"), max_parts=limits.max_fields)
    fields: list[tuple[str, Any]] = []
    uploads: list[Upload] = []
    try:
        decoder.receive_data(body)
        decoder.receive_data(None)
        finished = _read_parts(decoder, fields, uploads)
    except Problem:
        raise
    except RequestEntityTooLarge:
        raise limits.too_many_parts() from None
    except Exception:
        finished = False
    if not finished:
        _malformed(
            "Die multipart-Daten sind unvollständig oder beschädigt.",
            "The multipart data is incomplete or broken.",
        )
    return RawSubmission(fields=fields, uploads=uploads)


def _read_parts(
    decoder: MultipartDecoder, fields: list[tuple[str, Any]], uploads: list[Upload]
) -> bool:
    """Collect the fields and files of a fed decoder; True when the body ended properly."""
    current: Field | File | None = None
    chunks: list[bytes] = []
    while True:
        event = decoder.next_event()
        if isinstance(event, (Field, File)):
            if not event.name:
                raise ValueError("part without a name")
            current, chunks = event, []
        elif isinstance(event, Data):
            chunks.append(event.data)
            if not event.more_data and current is not None:
                _add_part(fields, uploads, current, b"".join(chunks))
                current = None
        elif isinstance(event, Epilogue):
            return True
        elif isinstance(event, NeedData):
            return False


def _add_part(
    fields: list[tuple[str, Any]], uploads: list[Upload], part: Field | File, raw: bytes
) -> None:
    """A file part becomes an upload, any other part a text field in its declared charset."""
    if isinstance(part, File):
        uploads.append(
            Upload(
                field=part.name,
                filename=part.filename,
                declared_type=part.headers.get("Content-Type", ""),
                content=raw,
            )
        )
        return
    charset = parse_options_header(part.headers.get("Content-Type", "text/plain; charset=utf-8"))[
        1
    ].get("charset", "utf-8")
    fields.append((part.name, _decode(raw, charset)))


class _ConstantError(ValueError):
    """NaN or Infinity in a JSON body (not JSON, though Python's parser would take it)."""


def _reject_constant(name: str) -> NoReturn:
    raise _ConstantError(name)


def _has_lone_surrogate(value: Any) -> bool:
    """Whether any text (key or value) holds half of a UTF-16 pair, which no store can encode."""
    stack: list[Any] = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _parse_json(body: bytes, limits: BodyLimits) -> RawSubmission:
    text = _decode(body, "utf-8")
    loader: Callable[[str], Any] = json.JSONDecoder(parse_constant=_reject_constant).decode
    try:
        value = loader(text)
    except RecursionError:
        raise limits.too_deep() from None
    except json.JSONDecodeError as exc:
        _malformed(
            f"Das JSON ist ungültig (Zeile {exc.lineno}, Spalte {exc.colno}).",
            f"The JSON is invalid (line {exc.lineno}, column {exc.colno}).",
        )
    except _ConstantError:
        _malformed("Das JSON enthält NaN oder Infinity.", "The JSON contains NaN or Infinity.")
    except ValueError:
        # e.g. an integer literal longer than Python converts (4300 digits)
        _malformed("Das JSON enthält einen ungültigen Wert.", "The JSON contains an invalid value.")
    if not isinstance(value, dict):
        _malformed("Das JSON muss ein Objekt sein.", "The JSON must be an object.")
    # One walk counts and measures the depth before anything else looks at the value: each key
    # or item costs work in every later step, so a body of a million keys is refused here, as a
    # form of too many fields is by its parser.
    too_many, depth = json_shape(value, limits.max_fields)
    if too_many:
        raise limits.too_many_json_values()
    if depth > limits.max_depth:
        raise limits.too_deep()
    # Only an escape (\ud800) can make one; searching the text first spares the walk.
    if ("\\ud" in text or "\\uD" in text) and _has_lone_surrogate(value):
        _malformed(
            "Das JSON enthält ungültige Unicode-Zeichen (ein halbes Ersatzzeichenpaar).",
            "The JSON contains invalid Unicode (half of a surrogate pair).",
        )
    return RawSubmission(fields=list(value.items()), from_form=False)
