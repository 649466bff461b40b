"""What every delivery channel shares: the envelope, the receipt, the errors and the plugin base."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

import requests
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from domain.config import flatten_problems
from integrations.registry import Registry

#: Environment variable names, as the routing file's `*_env` options must give them.
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*\Z")
#: The document type of the JSON envelope (Standard Webhooks payloads carry a `type`).
EVENT_TYPE = "case.created"
#: The document type of a payment notice to the cash office.
NOTICE_TYPE = "payment.received"
ENVELOPE_VERSION = 1


@dataclass(frozen=True)
class EnvelopeAttachment:
    """One uploaded file: its metadata, and its bytes or a link where the office can fetch it."""

    field: str
    filename: str
    content_type: str
    size: int
    sha256: str
    content: bytes | None
    fetch_url: str | None


@dataclass(frozen=True)
class Envelope:
    """Everything one delivery sends to one office. `data` holds personal data: never log it."""

    delivery_id: str  # stable across retries (Standard Webhooks webhook-id and Idempotency-Key)
    reference: str  # e.g. "NA-2026-000123"
    service: str
    service_title: str
    leika: str
    schema: str
    municipality: dict[str, str]  # {"ags": "06434007", "name": "Neu-Anspach", "ars": ...}
    office: dict[str, str]  # {"id": ..., "name": ..., "task_area": ...}
    received_at: dt.datetime  # aware UTC
    data: dict[str, Any]
    flags: dict[str, Any]
    attachments: list[EnvelopeAttachment]
    payment: dict[str, Any] | None
    attempt: int  # 1-based
    # "case", or "payment-notice": the cash office's notice of a paid fee (data = the payment).
    kind: str = "case"
    # What a resumable channel recorded on an earlier attempt (FIT-Connect: the submission id).
    channel_state: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Receipt:
    """What the office answered to a successful delivery."""

    status_code: int | None = None
    case_number: str | None = None
    # Handed over but not yet accepted (FIT-Connect): the delivery waits, and its outcome is
    # asked for again after this many seconds.
    awaiting_poll_s: float | None = None


#: Records a resumable channel's progress with the delivery (committed before it returns);
#: False when the attempt lost its lease and must stop.
Progress = Callable[[Mapping[str, Any]], bool]


class DeliveryError(Exception):
    """A delivery failed for now; the worker retries it later (after `retry_after` seconds if set).

    `message` is stored and shown to administrators, so it never carries personal data: at most
    a status code and a fixed description, never a response body.
    """

    def __init__(
        self, message: str, *, status_code: int | None = None, retry_after: float | None = None
    ) -> None:
        """Describe the failure without personal data."""
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """A delivery that retrying cannot fix (refused request, invalid document, bad address)."""


def utc(moment: dt.datetime) -> dt.datetime:
    """The moment in UTC; a naive datetime (SQLite gives those back) is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def iso_utc(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with a `Z`, e.g. 2026-03-01T09:30:00Z."""
    return utc(moment).isoformat().replace("+00:00", "Z")


def jsonable(value: Any) -> Any:
    """A copy of `value` that `json.dumps` can write (dates as ISO strings, decimals as strings)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return iso_utc(value) if value.tzinfo is not None else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return value


def inline(attachment: EnvelopeAttachment, inline_limit_bytes: int | None) -> bool:
    """Whether an attachment travels inside the document rather than as hash + fetch link."""
    if attachment.content is None:
        return False
    if inline_limit_bytes is None or attachment.size <= inline_limit_bytes:
        return True
    # Over the limit but nowhere to fetch it from: sending it inline beats not sending it.
    return attachment.fetch_url is None


def envelope_json(envelope: Envelope, inline_limit_bytes: int | None = None) -> dict[str, Any]:
    """The JSON envelope document sent to (or fetched by) an office.

    Attachments carry `content_base64` when they travel inline (content present and no larger
    than `inline_limit_bytes`), otherwise null plus their `sha256` and `fetch_url`. The attempt
    number is left out on purpose: every retry must send the same bytes, so that receivers that
    compare an Idempotency-Key's payload accept the retry.
    """
    received = iso_utc(envelope.received_at)
    return {
        "type": NOTICE_TYPE if envelope.kind == "payment-notice" else EVENT_TYPE,
        "version": ENVELOPE_VERSION,
        "kind": envelope.kind,
        "timestamp": received,
        "delivery_id": envelope.delivery_id,
        "reference": envelope.reference,
        "service": {
            "id": envelope.service,
            "title": envelope.service_title,
            "leika": envelope.leika,
            "schema": envelope.schema,
        },
        "municipality": dict(envelope.municipality),
        "office": dict(envelope.office),
        "received_at": received,
        "data": jsonable(envelope.data),
        "flags": jsonable(envelope.flags),
        "attachments": [
            {
                "field": a.field,
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "sha256": a.sha256,
                "content_base64": (
                    base64.b64encode(a.content).decode("ascii")
                    if a.content is not None and inline(a, inline_limit_bytes)
                    else None
                ),
                "fetch_url": a.fetch_url,
            }
            for a in envelope.attachments
        ],
        "payment": jsonable(envelope.payment) if envelope.payment is not None else None,
    }


def status_text(status: int) -> str:
    """`HTTP 503 Service Unavailable`: the code and its standard phrase, never the server's text.

    The reason phrase a server sends is free text and could echo input, so it is not used.
    """
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


class AnswerTooLarge(Exception):
    """An answer longer than the reader's limit: it was not read to its end."""


def read_bounded(response: requests.Response, limit: int) -> bytes:
    """The body of a streamed answer, read in chunks so that no more than `limit` bytes are held.

    Raises AnswerTooLarge past `limit`; an answer that breaks off raises requests' error.
    """
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(65536):
        size += len(chunk)
        if size > limit:
            raise AnswerTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


class EnvName(fields.String):
    """An option naming the environment variable of a secret (a secret is never an option)."""

    def __init__(self, **kwargs: Any) -> None:
        """A string field restricted to environment variable names."""
        super().__init__(
            validate=validate.Regexp(
                ENV_NAME.pattern, error="must name an environment variable (A-Z, 0-9, _)"
            ),
            **kwargs,
        )


class ChannelOptions(Schema):
    """Base of every channel's options schema: unknown options are errors, not silently ignored."""

    class Meta:
        """Refuse option keys the channel does not know (typos would otherwise go unnoticed)."""

        unknown = RAISE


class Channel(ABC):
    """A delivery channel: one instance per office, kept by the worker to reuse connections.

    Construction never fails for a missing secret: the worker builds channels outside its error
    handling, so secrets are resolved when delivering and a missing one is a permanent error.
    """

    name: ClassVar[str]
    options_schema: ClassVar[type[Schema]]
    #: A pull channel is never pushed to: the office fetches its cases through the API.
    pull: ClassVar[bool] = False

    def __init__(
        self, office_id: str, options: Mapping[str, Any], secrets: Mapping[str, str]
    ) -> None:
        """Keep the office id, its options and the secrets the options may name.

        The options are loaded through `options_schema` once more (loading is idempotent), so
        defaults are filled in even when the caller passes the routing file's raw options.
        Invalid options do not raise here; `check_options` raises when delivering.
        """
        self.office_id = office_id
        loaded, problems = load_options(type(self).options_schema, options)
        self.options: dict[str, Any] = loaded if not problems else dict(options)
        self.option_problems = problems
        self._secrets = secrets

    def check_options(self) -> None:
        """Raise PermanentDeliveryError when the office's options were invalid."""
        if self.option_problems:
            raise PermanentDeliveryError(
                "Konfigurationsfehler in den Kanaloptionen: " + "; ".join(self.option_problems)
            )

    def secret(self, option: str) -> str | None:
        """The secret named by the env-var option `option`; None when the option is not set."""
        env_name = self.options.get(option)
        if not env_name:
            return None
        value = self._secrets.get(str(env_name))
        if not value:
            raise PermanentDeliveryError(
                f"Konfigurationsfehler: Das Geheimnis {env_name} ({option}) ist nicht gesetzt."
            )
        return value

    @abstractmethod
    def deliver(self, envelope: Envelope, http: requests.Session) -> Receipt:
        """Deliver one envelope; raise DeliveryError (retry) or PermanentDeliveryError (do not)."""

    def deliver_tracked(
        self, envelope: Envelope, http: requests.Session, progress: Progress
    ) -> Receipt:
        """`deliver`, for a channel that records its progress while it works (FIT-Connect).

        Channels with one request per attempt have nothing to resume and ignore `progress`.
        """
        return self.deliver(envelope, http)


def _check_channel(channel_id: str, plugin: type[Channel]) -> None:
    """Refuse registrations that are not channels; give each channel class its id as `name`."""
    if not (isinstance(plugin, type) and issubclass(plugin, Channel)):
        raise TypeError(f"channel {channel_id!r} must be a Channel subclass")
    schema = getattr(plugin, "options_schema", None)
    if not (isinstance(schema, type) and issubclass(schema, Schema)):
        raise TypeError(
            f"channel {channel_id!r} must declare options_schema (a marshmallow Schema)"
        )
    declared = plugin.__dict__.get("name")
    if declared is not None and declared != channel_id:
        raise ValueError(f"channel class says name {declared!r} but registers as {channel_id!r}")
    plugin.name = channel_id


#: The process-wide channel registry; `integrations.channels` imports the plugins that fill it.
channels = Registry[type[Channel]](check=_check_channel)


def validate_options(
    channel_name: str, options: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """Load an office's channel options with the channel's schema.

    Returns the loaded options (defaults filled in) and every problem as a "key: message"
    string; the options are only usable when the problem list is empty.
    """
    plugin = channels.get(channel_name)
    if plugin is None:
        known = ", ".join(sorted(channels)) or "none"
        return {}, [f"channel: unknown channel {channel_name!r} (known: {known})"]
    return load_options(plugin.options_schema, options)


def load_options(
    schema: type[Schema], options: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """Load options with `schema`: (loaded options, problems as "key: message" strings)."""
    try:
        loaded: dict[str, Any] = schema().load(dict(options))
    except ValidationError as exc:
        return {}, sorted(flatten_problems(exc.messages, root="options"))
    return loaded, []
