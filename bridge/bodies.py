"""Parse webhook bodies (urlencoded, multipart, JSON) strictly: broken input is refused, not guessed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NoReturn
from urllib.parse import parse_qsl

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from domain.intake import RawSubmission, Upload
from domain.problems import Problem, msg

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
JSON_TYPES = ("application/json",)
SUPPORTED = (FORM, MULTIPART, *JSON_TYPES)


def _malformed(de: str, en: str) -> NoReturn:
    raise Problem(
        400,
        "malformed-body",
        msg("Die Anfrage ist fehlerhaft aufgebaut.", "The request body is malformed."),
        msg(de, en),
    )


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


def parse_body(
    content_type: str | None, body: bytes, *, max_fields: int, max_depth: int
) -> RawSubmission:
    """Parse a body of a supported media type into a RawSubmission or raise a Problem."""
    media_type, params = media_type_of(content_type)
    if media_type == FORM:
        return _parse_form(body, params.get("charset", "utf-8"), max_fields)
    if media_type == MULTIPART:
        return _parse_multipart(body, params.get("boundary", ""), max_fields)
    if media_type in JSON_TYPES:
        return _parse_json(body, max_depth)
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
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=True,
            encoding=charset,
            errors="strict",
            max_num_fields=max_fields,
        )
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


def _parse_multipart(body: bytes, boundary: str, max_fields: int) -> RawSubmission:
    if not boundary:
        _malformed(
            "Der multipart-Grenzwert (boundary) fehlt.", "The multipart boundary is missing."
        )
    decoder = MultipartDecoder(boundary.encode("latin-1", "replace"), max_parts=max_fields)
    fields: list[tuple[str, Any]] = []
    uploads: list[Upload] = []
    current: Field | File | None = None
    chunks: list[bytes] = []
    finished = False
    try:
        decoder.receive_data(body)
        decoder.receive_data(None)
        while True:
            event = decoder.next_event()
            if isinstance(event, (Field, File)):
                if not event.name:
                    raise ValueError("part without a name")
                current, chunks = event, []
            elif isinstance(event, Data):
                chunks.append(event.data)
                if not event.more_data and current is not None:
                    raw = b"".join(chunks)
                    if isinstance(current, File):
                        uploads.append(
                            Upload(
                                field=current.name,
                                filename=current.filename,
                                declared_type=current.headers.get("Content-Type", ""),
                                content=raw,
                            )
                        )
                    else:
                        charset = parse_options_header(
                            current.headers.get("Content-Type", "text/plain; charset=utf-8")
                        )[1].get("charset", "utf-8")
                        fields.append((current.name, _decode(raw, charset)))
                    current = None
            elif isinstance(event, Epilogue):
                finished = True
                break
            elif isinstance(event, NeedData):
                break
    except Problem:
        raise
    except RequestEntityTooLarge:
        raise Problem(
            413,
            "too-many-parts",
            msg("Die Anfrage enthält zu viele Teile.", "The request has too many parts."),
            msg(f"Höchstens {max_fields} Felder sind erlaubt.", f"At most {max_fields} fields."),
        ) from None
    except Exception:
        finished = False
    if not finished:
        _malformed(
            "Die multipart-Daten sind unvollständig oder beschädigt.",
            "The multipart data is incomplete or broken.",
        )
    return RawSubmission(fields=fields, uploads=uploads)


class _ConstantError(ValueError):
    """NaN or Infinity in a JSON body (not JSON, though Python's parser would take it)."""


def _reject_constant(name: str) -> NoReturn:
    raise _ConstantError(name)


def _depth_ok(value: Any, max_depth: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            return False
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return True


def _parse_json(body: bytes, max_depth: int) -> RawSubmission:
    text = _decode(body, "utf-8")
    loader: Callable[[str], Any] = json.JSONDecoder(parse_constant=_reject_constant).decode
    try:
        value = loader(text)
    except RecursionError:
        _malformed(
            f"Das JSON ist tiefer als {max_depth} Ebenen verschachtelt.",
            f"The JSON is nested deeper than {max_depth} levels.",
        )
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
    if not _depth_ok(value, max_depth):
        _malformed(
            f"Das JSON ist tiefer als {max_depth} Ebenen verschachtelt.",
            f"The JSON is nested deeper than {max_depth} levels.",
        )
    return RawSubmission(fields=list(value.items()), from_form=False)
