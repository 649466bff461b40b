"""Signed HTTP POST (Standard Webhooks) and answer handling, shared by http-json and xml."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import re
import time
from abc import abstractmethod
from typing import Any, ClassVar
from urllib.parse import urljoin

import requests
from marshmallow import fields, validate

from infra import standard_webhooks
from infra.standard_webhooks import sign
from integrations.channels.base import (
    AnswerTooLarge,
    Channel,
    ChannelOptions,
    DeliveryError,
    Envelope,
    EnvName,
    PermanentDeliveryError,
    Receipt,
    read_bounded,
    status_text,
)

USER_AGENT = "formcycle-bridge/1"
DEFAULT_INLINE_LIMIT = 1024 * 1024
#: Only this much of an answer is read (for the case number); the rest is not our business.
MAX_ANSWER_BYTES = 64 * 1024
#: A Retry-After beyond a week is a misconfiguration on the other side; the schedule takes over.
MAX_RETRY_AFTER_S = 7 * 24 * 3600.0
# A case number is shown to clerks and stored: short, printable, no markup.
CASE_NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ./_:#-]{0,63}\Z")
MAX_LOCATION_CHARS = 300
NOT_PRINTABLE = re.compile(r"[\x00-\x1f\x7f]")


class WebhookOptions(ChannelOptions):
    """Options of a channel that POSTs a signed document to the office's URL."""

    url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False)
    # A status address the admin page may GET to see whether the office is back (issue 19);
    # without one the page only tries a TCP connect to the host and port of `url`.
    health_url = fields.Url(
        load_default=None, schemes={"http", "https"}, require_tld=False, allow_none=True
    )
    signing_secret_env = EnvName(load_default=None)
    connect_timeout_s = fields.Float(load_default=5.0, validate=validate.Range(min=0.01, max=120))
    read_timeout_s = fields.Float(load_default=30.0, validate=validate.Range(min=0.01, max=600))
    inline_limit_bytes = fields.Integer(
        load_default=DEFAULT_INLINE_LIMIT, validate=validate.Range(min=0, max=1024**3)
    )


def signing_key(secret: str) -> bytes:
    """The HMAC key of the office's signing secret; a malformed one fails the delivery for good."""
    try:
        return standard_webhooks.signing_key(secret)
    except standard_webhooks.SigningKeyError as exc:
        raise PermanentDeliveryError(f"Konfigurationsfehler: {exc}") from None


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait per a Retry-After header (delta-seconds or HTTP-date); None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]{1,12}", value):
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    now = dt.datetime.now(dt.UTC) if now is None else now
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER_S)


def _read_answer(response: requests.Response) -> bytes | None:
    """Up to MAX_ANSWER_BYTES of the body; None when it was longer or broke off."""
    try:
        return read_bounded(response, MAX_ANSWER_BYTES)
    except (AnswerTooLarge, requests.RequestException):
        return None


def case_number_from(body: bytes | None, content_type: str, field: str) -> str | None:
    """The office's case number from a JSON answer, if it sent a plausible one."""
    if not body or "json" not in content_type.lower():
        return None
    try:
        answer = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(answer, dict):
        return None
    value = answer.get(field)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text if CASE_NUMBER.match(text) else None


def post_signed(
    http: requests.Session,
    *,
    url: str,
    body: bytes,
    content_type: str,
    delivery_id: str,
    key: bytes | None,
    timeout: tuple[float, float],
    case_number_field: str = "case_number",
) -> Receipt:
    """POST `body` signed per Standard Webhooks and turn the answer into a Receipt or an error.

    2xx delivers; 3xx is a permanent error naming the Location (redirects are not followed:
    a moved endpoint is a configuration error to fix, not to guess or to retry for a day);
    408, 429 and 5xx are retried, honouring Retry-After; any other 4xx is permanent.
    Network failures and timeouts are retried.
    """
    timestamp = int(time.time())
    headers = {
        "Content-Type": content_type,
        "User-Agent": USER_AGENT,
        "webhook-id": delivery_id,
        "webhook-timestamp": str(timestamp),
        "Idempotency-Key": delivery_id,
    }
    if key is not None:
        headers["webhook-signature"] = sign(key, delivery_id, timestamp, body)
    try:
        response = http.post(
            url,
            data=body,
            headers=headers,
            timeout=timeout,
            allow_redirects=False,
            stream=True,
        )
    except requests.Timeout as exc:
        # ConnectTimeout is also a ConnectionError: name the timeout, which is what happened.
        raise DeliveryError(
            f"Zeitüberschreitung beim Zustellpunkt ({type(exc).__name__})."
        ) from None
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as exc:
        raise PermanentDeliveryError(
            f"Die Adresse des Zustellpunkts ist ungültig ({type(exc).__name__})."
        ) from None
    except requests.RequestException as exc:
        raise DeliveryError(
            f"Der Zustellpunkt ist nicht erreichbar ({type(exc).__name__})."
        ) from None
    try:
        return _interpret(response, url, case_number_field)
    finally:
        # Releases the connection to the pool when the answer was read completely.
        response.close()


def redirect_target(url: str, location: str | None) -> str:
    """Where a redirect points, as an absolute URL fit for an error text (at most 300 characters).

    The Location is the office's own configuration, not citizen data; control characters are
    dropped so that the stored error stays one printable line.
    """
    if not location:
        return "(kein Location-Header)"
    target = urljoin(url, NOT_PRINTABLE.sub("", location.strip()))
    return target if len(target) <= MAX_LOCATION_CHARS else target[: MAX_LOCATION_CHARS - 1] + "…"


def _interpret(response: requests.Response, url: str, case_number_field: str) -> Receipt:
    status = response.status_code
    # Read (at most MAX_ANSWER_BYTES) even of error answers: a fully read answer lets the
    # session reuse the connection for the next delivery.
    body = _read_answer(response)
    if 200 <= status < 300:
        content_type = response.headers.get("Content-Type", "")
        return Receipt(
            status_code=status,
            case_number=case_number_from(body, content_type, case_number_field),
        )
    # Errors: the body never goes into the message (it may echo the citizen's data).
    if 300 <= status < 400:
        target = redirect_target(url, response.headers.get("Location"))
        raise PermanentDeliveryError(
            f"{status_text(status)}: Der Zustellpunkt leitet um nach {target}; Weiterleitungen "
            "werden nicht verfolgt. Bitte die Adresse (url) in der Konfiguration korrigieren "
            "und die Zustellung erneut anstoßen (replay).",
            status_code=status,
        )
    if status in (408, 429) or 500 <= status < 600:
        raise DeliveryError(
            f"{status_text(status)}: Der Zustellpunkt ist vorübergehend nicht bereit.",
            status_code=status,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    if 400 <= status < 500:
        raise PermanentDeliveryError(
            f"{status_text(status)}: Der Zustellpunkt hat die Zustellung abgelehnt.",
            status_code=status,
        )
    raise DeliveryError(
        f"{status_text(status)}: unerwartete Antwort des Zustellpunkts.", status_code=status
    )


class WebhookChannel(Channel):
    """A channel that renders the envelope as one document and POSTs it, signed, to `url`."""

    options_schema = WebhookOptions
    content_type: ClassVar[str]

    @abstractmethod
    def render(self, envelope: Envelope) -> bytes:
        """The exact bytes to send (and sign) for this envelope."""

    def deliver(self, envelope: Envelope, http: requests.Session) -> Receipt:
        """Render, sign and POST the envelope; see `post_signed` for how answers are judged."""
        self.check_options()
        secret = self.secret("signing_secret_env")
        key = signing_key(secret) if secret is not None else None
        body = self.render(envelope)
        return post_signed(
            http,
            url=self.options["url"],
            body=body,
            content_type=self.content_type,
            delivery_id=envelope.delivery_id,
            key=key,
            timeout=(self.options["connect_timeout_s"], self.options["read_timeout_s"]),
            case_number_field=self.case_number_field(),
        )

    def case_number_field(self) -> str:
        """The key of the case number in the office's JSON answer."""
        return "case_number"


def render_json(document: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON; the signature covers exactly these bytes."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
