"""Attachment screening: files come only from real content, are checked, and described by us.

An attachment is a multipart file part or an object with `content_base64`; nothing else. The
metadata the schemas check (filename, type, size, SHA-256) is written here from the content,
so a sender cannot satisfy "a construction site needs a site plan" with a description of a
file it never sent: a value of its own at an attachment's place is refused.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema, fields

from domain.config import Service
from domain.intake.filetypes import ALLOWED_LABEL, normalise_declared, safe_filename, sniff
from domain.intake.forms import Upload, get_path, is_index
from domain.intake.limits import BodyLimits
from domain.intake.validation import invalid_field, problem_422
from domain.problems import FieldError, msg
from schemas import SCHEMAS, Msg
from schemas.blocks import AttachmentSchema

CONTENT_KEY = "content_base64"
NOT_A_FILE = msg(
    "Eine Anlage muss als Datei mitgeschickt werden; Angaben zu einer Datei ohne ihren Inhalt "
    "werden nicht angenommen.",
    "An attachment must be sent as a file; details of a file without its content are not accepted.",
)


@dataclass(frozen=True)
class File:
    """A file of the submission at its place in the data, hashed but not yet screened."""

    path: str
    upload: Upload
    sha256: str


@dataclass(frozen=True)
class Screened:
    """A file that passed screening, with the type its content showed and the name we give it."""

    path: str
    upload: Upload
    sha256: str
    content_type: str
    # The citizen's name rebuilt for that type (`safe_filename`); the one stored and delivered.
    filename: str


@functools.lru_cache(maxsize=16)
def _slots_of(schema_class: type[Schema], prefix: str = "") -> dict[str, bool]:
    found: dict[str, bool] = {}
    for name, declared in schema_class._declared_fields.items():
        path = f"{prefix}{declared.data_key or name}"
        is_list = isinstance(declared, fields.List)
        inner = declared.inner if isinstance(declared, fields.List) else declared
        nested = inner.nested if isinstance(inner, fields.Nested) else None
        if not (isinstance(nested, type) and issubclass(nested, Schema)):
            continue
        if issubclass(nested, AttachmentSchema):
            found[path] = is_list
        elif not is_list:
            found.update(_slots_of(nested, f"{path}."))
    return found


def slots(service: Service) -> dict[str, bool]:
    """The places the service's schema has for attachments: dotted path -> holds a list."""
    return _slots_of(SCHEMAS.get(service.schema).schema_class)


def collect(service: Service, data: dict[str, Any], uploads: Sequence[Upload]) -> list[File]:
    """Every file of the submission with its path; base64 objects are taken out of `data`.

    Files for a list place (`attachments`) are numbered in the order they came.
    """
    places = slots(service)
    found: list[tuple[str, Upload]] = []
    for upload in uploads:
        # File elements are Formcycle elements too: aliases and default names apply to them.
        path = service.field_path(upload.field)
        base, _, last = path.rpartition(".")
        if base and is_index(last) and places.get(base):
            path = base  # a part named `attachments.0` is one of the list's files
        found.append((path, upload))
    found.extend(_base64_files(data, "", places))
    numbered: dict[str, int] = {}
    out: list[File] = []
    for path, upload in found:
        if places.get(path):
            numbered[path] = numbered.get(path, -1) + 1
            path = f"{path}.{numbered[path]}"
        out.append(File(path, upload, hashlib.sha256(upload.content).hexdigest()))
    return out


def _base64_files(node: Any, path: str, places: dict[str, bool]) -> list[tuple[str, Upload]]:
    """Take `{"filename", "content_type", "content_base64"}` objects out of the data."""
    found: list[tuple[str, Upload]] = []
    if not isinstance(node, dict):
        return found
    for key, value in list(node.items()):
        if type(value) is str:
            continue  # nearly every value of a form: no file, nothing below it
        sub = f"{path}.{key}" if path else str(key)
        if isinstance(value, dict) and CONTENT_KEY in value:
            found.append((sub, _decode(sub, value)))
            del node[key]
        elif isinstance(value, list) and any(
            isinstance(v, dict) and CONTENT_KEY in v for v in value
        ):
            for i, item in enumerate(value):
                item_path = f"{sub}.{i}"
                if not (isinstance(item, dict) and CONTENT_KEY in item):
                    raise invalid_field(item_path, str(NOT_A_FILE), NOT_A_FILE.en)
                # Items of a list place are numbered by `collect`; elsewhere they keep their index.
                found.append((sub if places.get(sub) else item_path, _decode(item_path, item)))
            del node[key]
        else:
            found.extend(_base64_files(value, sub, places))
    return found


def _decode(path: str, value: dict[str, Any]) -> Upload:
    content = value.get(CONTENT_KEY)
    try:
        if not isinstance(content, str):
            raise ValueError
        decoded = base64.b64decode(content, validate=True)
    except (ValueError, binascii.Error):
        raise invalid_field(
            path,
            "Die Anlage ist nicht gültig Base64-kodiert.",
            "The attachment is not valid base64.",
        ) from None
    filename = value.get("filename")
    declared = value.get("content_type")
    return Upload(
        field=path,
        filename=filename if isinstance(filename, str) else "anlage",
        declared_type=declared if isinstance(declared, str) else "",
        content=decoded,
    )


def screen(
    service: Service, data: dict[str, Any], files: Sequence[File], limits: BodyLimits
) -> list[Screened]:
    """Check every file and write its metadata into the data where the schema expects it.

    Raises 413 for too many or too large files, 422 naming each refused file and each place
    where the sender wrote a file's details without sending the file.
    """
    if len(files) > limits.max_files:
        raise limits.too_many_files()
    for file in files:
        if len(file.upload.content) > limits.max_file_bytes:
            raise limits.file_too_large(file.path)
    errors = _sender_written(service, data)
    out: list[Screened] = []
    for file in files:
        actual = sniff(file.upload.content)
        refusal = _refusal(file.upload, actual)
        if refusal is not None or actual is None:
            errors.append(FieldError(file.path, refusal or NOT_A_FILE))
            continue
        name = safe_filename(file.upload.filename, actual)
        out.append(Screened(file.path, file.upload, file.sha256, actual, name))
    if errors:
        raise problem_422(errors)
    places = slots(service)
    for screened in out:
        if not _place(data, screened, places):
            errors.append(
                FieldError(screened.path, msg("Unerwartete Anlage.", "Unexpected attachment."))
            )
    if errors:
        raise problem_422(errors)
    return out


def _sender_written(service: Service, data: dict[str, Any]) -> list[FieldError]:
    """A field error for each attachment place that holds something other than a sent file."""
    errors: list[FieldError] = []
    for path, is_list in slots(service).items():
        value = get_path(data, path)
        if value is None:
            continue
        if is_list and isinstance(value, list):
            errors.extend(FieldError(f"{path}.{i}", NOT_A_FILE) for i in range(len(value)))
        else:
            errors.append(FieldError(path, NOT_A_FILE))
    return errors


def _refusal(upload: Upload, actual: str | None) -> Msg | None:
    """Why a file is refused (a message), or None when its content (of type `actual`) is fine."""
    if not upload.content:
        return msg("Die Datei ist leer.", "The file is empty.")
    if actual is None:
        return msg(
            f"Dieser Dateityp ist nicht erlaubt; erlaubt sind {ALLOWED_LABEL}.",
            f"This file type is not allowed; allowed are {ALLOWED_LABEL}.",
        )
    declared = normalise_declared(upload.declared_type or "")
    if declared not in ("", "application/octet-stream", actual):
        return msg(
            "Der Inhalt der Datei passt nicht zu ihrem angegebenen Typ.",
            "The file's content does not match its declared type.",
        )
    return None


def _place(data: dict[str, Any], screened: Screened, places: dict[str, bool]) -> bool:
    """Write the file's metadata at its path; False when the data has no room there."""
    meta = {
        "filename": screened.filename,
        "content_type": screened.content_type,
        "size": len(screened.upload.content),
        "sha256": screened.sha256,
    }
    base, _, last = screened.path.rpartition(".")
    is_item = bool(base) and is_index(last) and places.get(base, False)
    *parents, key = (base if is_item else screened.path).split(".")
    if not key or not all(parents):
        return False  # `a..b` names no place, as for form fields
    node: Any = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            return False
    if is_item:
        # Files of a list place come in their numbered order: each is the next item.
        items = node.setdefault(key, [])
        if not isinstance(items, list):
            return False
        items.append(meta)
        return True
    if key in node:
        return False
    node[key] = meta
    return True
