"""Intake: turn one posted form into a validated, routed, durably stored submission.

A submission, its attachments, its deliveries and its first events are written in one
transaction; either all of it is stored or nothing is.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast
from zoneinfo import ZoneInfo

from marshmallow import ValidationError, fields
from sqlalchemy import Table, insert, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import SQLAlchemyError as StoreError

from domain.config import Municipality, Sender, Service
from domain.crypto import Vault
from domain.filetypes import ALLOWED_LABEL, normalise_declared, sniff
from domain.logs import log_event
from domain.problems import FieldError, Problem, msg, size_text
from domain.settings import Settings
from domain.store import (
    Attachment,
    Delivery,
    DeliveryStatus,
    Event,
    Store,
    Submission,
    SubmissionStatus,
    new_id,
    utcnow,
)
from schemas import SCHEMAS, Msg, ValidationOptions

log = logging.getLogger(__name__)
# The towns are in Hesse: "today" for date rules is the local date there, not UTC's.
LOCAL_TZ = ZoneInfo("Europe/Berlin")
ATTACHMENT_KEY = "content_base64"


@dataclass(frozen=True)
class Upload:
    """A file part of a multipart body (or a base64 attachment of a JSON body)."""

    field: str
    filename: str
    declared_type: str
    content: bytes


@dataclass(frozen=True)
class RawSubmission:
    """A parsed body before validation: top-level keys (maybe dotted) and uploads."""

    fields: Sequence[tuple[str, Any]]
    uploads: Sequence[Upload] = ()
    from_form: bool = True


@dataclass(frozen=True)
class IntakeResult:
    """The stored submission and whether this call created it (False for a repeat)."""

    submission: Submission
    created: bool
    delivery_ids: list[str] = field(default_factory=list)


def problem_422(errors: list[FieldError]) -> Problem:
    """The validation problem listing every failing field."""
    return Problem(
        422,
        "validation",
        msg("Die Angaben sind unvollständig oder fehlerhaft.", "The submission is not valid."),
        msg(
            f"{len(errors)} Angabe(n) müssen korrigiert werden.",
            f"{len(errors)} field(s) need to be corrected.",
        ),
        errors=errors,
    )


def _store_unavailable(service_id: str, exc: Exception) -> Problem:
    """The 503 answer when the store cannot be read or written (the sender should retry)."""
    log_event(
        log,
        "submission.store_failed",
        level=logging.ERROR,
        service=service_id,
        error=type(exc).__name__,
    )
    return Problem(
        503,
        "store-unavailable",
        msg("Der Antrag konnte nicht gespeichert werden.", "The submission could not be stored."),
        msg(
            "Bitte senden Sie ihn später noch einmal; es wurde nichts gespeichert.",
            "Please send it again later; nothing was stored.",
        ),
        headers={"Retry-After": "30"},
    )


_SUBMISSIONS = cast(Table, Submission.__table__)
_ATTACHMENTS = cast(Table, Attachment.__table__)
_DELIVERIES = cast(Table, Delivery.__table__)
_EVENTS = cast(Table, Event.__table__)
# Built once: constructing statements per request cost more than executing them.
_INSERT_SUBMISSION = insert(_SUBMISSIONS).returning(_SUBMISSIONS.c.id)
_INSERTS = {t.name: insert(t) for t in (_ATTACHMENTS, _DELIVERIES, _EVENTS)}


def _row(obj: object, table: Any) -> dict[str, Any]:
    """The column values of a new ORM object, leaving auto-increment keys to the database."""
    return {
        c.key: getattr(obj, c.key)
        for c in table.columns
        if not (c.primary_key and c.autoincrement is True)
    }


def field_errors(messages: Any, prefix: str = "") -> list[FieldError]:
    """Flatten marshmallow's nested error messages into dotted-path field errors."""
    out: list[FieldError] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            if key == "_schema":
                # An error about a block as a whole (e.g. "not an object") belongs to the block.
                out.extend(field_errors(value, prefix))
            else:
                out.extend(field_errors(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(messages, list):
        for item in messages:
            out.extend(field_errors(item, prefix))
    else:
        text = messages if isinstance(messages, Msg) else Msg(str(messages), en=str(messages))
        out.append(FieldError(prefix or "_schema", text))
    return out


def _set_path(root: dict[str, Any], path: list[str], value: Any, key: str) -> None:
    node = root
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise _conflict(key)
        node = child
    last = path[-1]
    if last in node:
        existing = node[last]
        if isinstance(existing, dict) or isinstance(value, dict):
            raise _conflict(key)
        # A repeated form key is a multi-value element (e.g. several main breeds).
        node[last] = [*existing, value] if isinstance(existing, list) else [existing, value]
    else:
        node[last] = value


def _conflict(key: str) -> Problem:
    """A form key used both as a value and as a group: a 422 naming the field."""
    return problem_422(
        [
            FieldError(
                key,
                msg(
                    f"Das Feld {key!r} ist zugleich Wert und Gruppe.",
                    f"Field {key!r} is used both as a value and as a group.",
                ),
            )
        ]
    )


def _lists_from_indexes(node: Any) -> Any:
    """Turn dicts keyed "0", "1", ... (from keys like `attachments.0.name`) into lists."""
    if isinstance(node, dict):
        converted = {k: _lists_from_indexes(v) for k, v in node.items()}
        if converted and all(k.isdigit() and len(k) <= 4 for k in converted):
            return [converted[k] for k in sorted(converted, key=int)]
        return converted
    if isinstance(node, list):
        return [_lists_from_indexes(v) for v in node]
    return node


def build_data(service: Service, raw: RawSubmission) -> dict[str, Any]:
    """Apply the service's alias table and expand dotted keys into nested data."""
    root: dict[str, Any] = {}
    for key, value in raw.fields:
        if raw.from_form and value == "":
            # An empty form element means "not filled in", not an empty answer.
            continue
        target = service.aliases.get(key, key)
        parts = target.split(".")
        if any(not p for p in parts):
            raise _conflict(key)
        _set_path(root, parts, value, key)
    return root


def _expects_list(service: Service, path: str) -> bool:
    """Whether the service's schema has a list at this dotted path (e.g. `attachments`)."""
    node: Any = SCHEMAS.get(service.schema).schema_class()
    found: Any = None
    for part in path.split("."):
        known = getattr(node, "fields", None)
        if not isinstance(known, Mapping) or part not in known:
            return False
        found = known[part]
        node = found.schema if isinstance(found, fields.Nested) else None
    return isinstance(found, fields.List)


def _given(value: Any) -> Any:
    """A raw value as the schema reads it: text trimmed, and blank text meaning "not given"."""
    if isinstance(value, str):
        return value.strip() or None
    return value


def _get_path(data: Mapping[str, Any], path: str) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


class Intake:
    """Validates, routes and stores submissions for one configuration and store."""

    def __init__(self, settings: Settings, store: Store, vault: Vault) -> None:
        """Bind the intake to the settings, the store and the encryption keys."""
        self.settings = settings
        self.config = settings.config
        self.store = store
        self.vault = vault

    def submit(
        self,
        service: Service,
        sender: Sender,
        raw: RawSubmission,
        *,
        idempotency_key: str | None,
        now: dt.datetime | None = None,
    ) -> IntakeResult:
        """Validate and store one submission, or raise a Problem; a repeat returns the original."""
        now = now or utcnow()
        data = build_data(service, raw)
        key_in_body = data.pop(service.idempotency_field, None)
        if isinstance(key_in_body, str) and key_in_body.strip():
            idempotency_key = key_in_body.strip()
        if idempotency_key is not None and len(idempotency_key) > 200:
            raise problem_422(
                [
                    FieldError(
                        service.idempotency_field,
                        msg("Die Vorgangskennung ist zu lang.", "The submission id is too long."),
                    )
                ]
            )
        try:
            return self._accept(service, sender, raw, data, idempotency_key, now)
        except Problem as problem:
            # A repeat gets the original answer even when today's rules or limits would refuse
            # it (e.g. a lead time that has run out since); only the error path pays the look-up.
            if idempotency_key is not None and problem.status in (413, 422):
                existing = self._existing(sender, idempotency_key, service)
                if existing is not None:
                    return IntakeResult(existing, created=False)
            raise

    def _accept(
        self,
        service: Service,
        sender: Sender,
        raw: RawSubmission,
        data: dict[str, Any],
        idempotency_key: str | None,
        now: dt.datetime,
    ) -> IntakeResult:
        """Validate, route and insert; a duplicate key is caught by the unique constraint."""
        uploads = self._attachments(service, data, raw.uploads)
        # Attachment lists arrive as `attachments.0`, `attachments.1`, ...: make them lists.
        data = _lists_from_indexes(data)
        validated, municipality = self._validate(service, data, now, raw.from_form)
        offices = self.config.route(service, municipality, validated.flags)
        submission = Submission(
            reference_prefix=municipality.reference_prefix,
            reference_year=now.astimezone(LOCAL_TZ).year,
            service=service.id,
            schema=service.schema,
            sender=sender.id,
            idempotency_key=idempotency_key,
            municipality_ags=municipality.ags,
            status=SubmissionStatus.ROUTED if offices else SubmissionStatus.RECEIVED,
            flags=dict(validated.flags),
            data=self.vault.encrypt_json(validated.data),
            received_at=now,
            updated_at=now,
        )
        for path, upload, digest in uploads:
            submission.attachments.append(
                Attachment(
                    field=path,
                    filename=self.vault.encrypt(upload.filename.encode()),
                    content_type=sniff(upload.content) or "application/octet-stream",
                    size=len(upload.content),
                    sha256=digest,
                    content=self.vault.encrypt(upload.content),
                )
            )
        deliveries = [
            Delivery(
                id=new_id(),
                office_id=o.id,
                task_area=o.task_area,
                channel=o.channel,
                status=DeliveryStatus.PENDING,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
            for o in offices
        ]
        submission.deliveries.extend(deliveries)
        submission.events.append(
            Event(
                kind="submission.received",
                actor=f"sender:{sender.id}",
                at=now,
                detail={
                    "service": service.id,
                    "schema": service.schema,
                    "municipality_ags": municipality.ags,
                    "attachments": len(uploads),
                    "flags": sorted(k for k, v in validated.flags.items() if v is True),
                },
            )
        )
        for d in deliveries:
            submission.events.append(
                Event(
                    kind="delivery.routed",
                    actor="system",
                    at=now,
                    delivery_id=d.id,
                    detail={"office": d.office_id, "task_area": d.task_area},
                )
            )
        try:
            self._insert(submission)
        except IntegrityError:
            # A repeat, or the same submission arriving concurrently: the first one stored wins.
            if idempotency_key is not None:
                existing = self._existing(sender, idempotency_key, service)
                if existing is not None:
                    return IntakeResult(existing, created=False)
            raise
        except (OperationalError, StoreError) as exc:
            raise _store_unavailable(service.id, exc) from None
        log_event(
            log,
            "submission.accepted",
            reference=submission.reference,
            service=service.id,
            sender=sender.id,
            municipality_ags=municipality.ags,
            deliveries=len(deliveries),
            attachments=len(uploads),
        )
        return IntakeResult(submission, created=True, delivery_ids=[d.id for d in deliveries])

    def _insert(self, submission: Submission) -> None:
        """Write the submission and everything that belongs to it in one transaction.

        Core inserts of the ORM objects' values: the intake's hot path, where the unit of
        work's bookkeeping cost more than the inserts themselves (bench/intake).
        """
        with self.store.engine.begin() as conn:
            submission.id = conn.execute(
                _INSERT_SUBMISSION, _row(submission, _SUBMISSIONS)
            ).scalar_one()
            for table, children in (
                (_ATTACHMENTS, submission.attachments),
                (_DELIVERIES, submission.deliveries),
                (_EVENTS, submission.events),
            ):
                if children:
                    for child in children:
                        child.submission_id = submission.id
                    conn.execute(_INSERTS[table.name], [_row(c, table) for c in children])

    def _existing(self, sender: Sender, key: str, service: Service) -> Submission | None:
        try:
            with self.store.read() as session:
                found = session.scalars(
                    select(Submission).where(
                        Submission.sender == sender.id, Submission.idempotency_key == key
                    )
                ).one_or_none()
                if found is not None:
                    _ = list(found.deliveries)  # load before the session closes
                return found
        except StoreError as exc:
            # An unreachable store is a 503 (send again later), not an internal error.
            raise _store_unavailable(service.id, exc) from None

    def _attachments(
        self, service: Service, data: dict[str, Any], uploads: Sequence[Upload]
    ) -> list[tuple[str, Upload, str]]:
        """Check every attachment and put its metadata into the data where the schema expects it."""
        found: list[tuple[str, Upload]] = []
        numbered: dict[str, int] = {}
        for upload in uploads:
            # File elements are Formcycle elements too: the alias table applies to their names.
            path = service.aliases.get(upload.field, upload.field)
            if _expects_list(service, path):
                numbered[path] = numbered.get(path, -1) + 1
                path = f"{path}.{numbered[path]}"
            found.append((path, upload))
        found.extend(self._json_attachments(data, ""))
        errors: list[FieldError] = []
        limit = self.settings.max_file_bytes
        if len(found) > self.settings.max_files:
            raise Problem(
                413,
                "too-many-files",
                msg("Zu viele Anlagen.", "Too many attachments."),
                msg(
                    f"Höchstens {self.settings.max_files} Dateien sind erlaubt.",
                    f"At most {self.settings.max_files} files are allowed.",
                ),
            )
        out: list[tuple[str, Upload, str]] = []
        for path, upload in found:
            if len(upload.content) > limit:
                raise Problem(
                    413,
                    "file-too-large",
                    msg("Eine Anlage ist zu groß.", "An attachment is too large."),
                    msg(
                        f"Jede Datei darf höchstens {size_text(limit).de} groß sein.",
                        f"Each file may be at most {size_text(limit).en}.",
                    ),
                    errors=[
                        FieldError(path, msg("Die Datei ist zu groß.", "The file is too large."))
                    ],
                )
            actual = sniff(upload.content)
            declared = normalise_declared(upload.declared_type or "")
            if not upload.content:
                errors.append(FieldError(path, msg("Die Datei ist leer.", "The file is empty.")))
                continue
            if actual is None:
                errors.append(
                    FieldError(
                        path,
                        msg(
                            f"Dieser Dateityp ist nicht erlaubt; erlaubt sind {ALLOWED_LABEL}.",
                            f"This file type is not allowed; allowed are {ALLOWED_LABEL}.",
                        ),
                    )
                )
                continue
            if declared not in ("", "application/octet-stream", actual):
                errors.append(
                    FieldError(
                        path,
                        msg(
                            "Der Inhalt der Datei passt nicht zu ihrem angegebenen Typ.",
                            "The file's content does not match its declared type.",
                        ),
                    )
                )
                continue
            digest = hashlib.sha256(upload.content).hexdigest()
            meta = {
                "filename": upload.filename or "anlage",
                "content_type": actual,
                "size": len(upload.content),
                "sha256": digest,
            }
            try:
                _set_path(data, path.split("."), meta, path)
            except Problem:
                errors.append(
                    FieldError(path, msg("Unerwartete Anlage.", "Unexpected attachment."))
                )
                continue
            out.append((path, upload, digest))
        if errors:
            raise problem_422(errors)
        return out

    def _json_attachments(self, node: Any, path: str) -> list[tuple[str, Upload]]:
        """Find `{"filename", "content_type", "content_base64"}` objects in a JSON body."""
        found: list[tuple[str, Upload]] = []
        if isinstance(node, dict):
            for key in list(node):
                value = node[key]
                sub = f"{path}.{key}" if path else str(key)
                if isinstance(value, dict) and ATTACHMENT_KEY in value:
                    found.append((sub, self._decode_json_attachment(sub, value)))
                    del node[key]
                elif isinstance(value, list) and any(
                    isinstance(v, dict) and ATTACHMENT_KEY in v for v in value
                ):
                    rest = []
                    for i, item in enumerate(value):
                        if isinstance(item, dict) and ATTACHMENT_KEY in item:
                            item_path = f"{sub}.{i}"
                            found.append((item_path, self._decode_json_attachment(item_path, item)))
                        else:
                            rest.append(item)
                    if rest:
                        raise problem_422(
                            [FieldError(sub, msg("Ungültige Anlage.", "Invalid attachment."))]
                        )
                    node[key] = []
                    del node[key]
                else:
                    found.extend(self._json_attachments(value, sub))
        return found

    def _decode_json_attachment(self, path: str, value: dict[str, Any]) -> Upload:
        content = value.get(ATTACHMENT_KEY)
        try:
            if not isinstance(content, str):
                raise ValueError
            decoded = base64.b64decode(content, validate=True)
        except (ValueError, binascii.Error):
            raise problem_422(
                [
                    FieldError(
                        path,
                        msg(
                            "Die Anlage ist nicht gültig Base64-kodiert.",
                            "The attachment is not valid base64.",
                        ),
                    )
                ]
            ) from None
        filename = value.get("filename")
        declared = value.get("content_type")
        return Upload(
            field=path,
            filename=filename if isinstance(filename, str) else "anlage",
            declared_type=declared if isinstance(declared, str) else "",
            content=decoded,
        )

    def _validate(
        self, service: Service, data: dict[str, Any], now: dt.datetime, form_input: bool
    ) -> tuple[Any, Municipality]:
        """Validate against the service schema and resolve the municipality; all errors at once."""
        schema = SCHEMAS.get(service.schema)
        options = ValidationOptions(
            now=now,
            lead_hours=service.lead_hours,
            min_zone_m=service.min_zone_m,
            max_zone_m=service.max_zone_m,
            unknown="reject" if service.unknown_fields == "reject" else "ignore",
            form_input=form_input,
        )
        errors: list[FieldError] = []
        validated = None
        try:
            validated = schema.validate(data, options)
        except ValidationError as exc:
            errors = field_errors(exc.messages)
        failing = {e.field for e in errors}
        municipality, problem = self._municipality(service, data, failing)
        if problem is not None:
            errors.append(problem)
        if errors or validated is None or municipality is None:
            raise problem_422(errors)
        return validated, municipality

    def _municipality(
        self, service: Service, data: Mapping[str, Any], failing: set[str]
    ) -> tuple[Municipality | None, FieldError | None]:
        """The citizen's municipality, from an explicit AGS or from the postal code."""
        ags = _given(data.get("municipality_ags"))
        if ags is not None and "municipality_ags" not in failing:
            found = self.config.municipality_by_ags(str(ags))
            if found is None:
                return None, FieldError(
                    "municipality_ags",
                    msg(
                        "Diese Gemeinde nimmt an diesem Online-Dienst nicht teil.",
                        "This municipality does not take part in this online service.",
                    ),
                )
            return found, None
        if ags is not None:
            return None, None
        path = service.municipality_field
        postal_code = _given(_get_path(data, path))
        if postal_code is None or path in failing:
            return None, None
        candidates = self.config.municipalities_by_postal_code(str(postal_code))
        if not candidates:
            return None, FieldError(
                path,
                msg(
                    "Für diese Postleitzahl ist keine teilnehmende Gemeinde zuständig. "
                    "Bitte wenden Sie sich an Ihre Gemeindeverwaltung.",
                    "No participating municipality is responsible for this postal code. "
                    "Please contact your municipality.",
                ),
            )
        if len(candidates) > 1:
            return None, FieldError(
                "municipality_ags",
                msg(
                    "Die Postleitzahl gehört zu mehreren Gemeinden; bitte die Gemeinde angeben.",
                    "The postal code belongs to several municipalities; please name the "
                    "municipality.",
                ),
            )
        return candidates[0], None
