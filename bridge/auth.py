"""Who is calling: senders by shared-secret header or Standard Webhooks signature, API users by token."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from domain.config import Config, Sender
from domain.problems import Problem, msg


class HeaderLookup(Protocol):
    """Request headers, as werkzeug's Headers or a plain dict."""

    def get(self, key: str, /) -> str | None:
        """The header's value, if present."""


SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


@dataclass(frozen=True)
class Caller:
    """An authenticated sender and the message id its signature carried, if any."""

    sender: Sender
    webhook_id: str | None = None


def unauthorized(de: str, en: str) -> Problem:
    """The 401 problem; the detail says what was wrong, never what was expected."""
    return Problem(
        401,
        "unauthorized",
        msg("Nicht angemeldet.", "Not authenticated."),
        msg(de, en),
        headers={"WWW-Authenticate": 'Bearer realm="formcycle-bridge"'},
    )


def candidates(config: Config, service_id: str) -> list[Sender]:
    """Senders allowed to post to this service."""
    return [s for s in config.senders.values() if service_id in s.services or "*" in s.services]


def has_signature(headers: HeaderLookup) -> bool:
    """Whether the request carries Standard Webhooks headers (then the signature must verify)."""
    return any(headers.get(h) for h in SIGNATURE_HEADERS)


def by_shared_secret(
    senders: list[Sender], headers: HeaderLookup, secrets: Mapping[str, str]
) -> Caller:
    """The sender whose shared-secret header matches; every secret is compared in constant time."""
    found: Sender | None = None
    presented_any = False
    for sender in senders:
        presented = headers.get(sender.secret_header)
        if not sender.secret_env or presented is None:
            continue
        presented_any = True
        expected = secrets.get(sender.secret_env, "")
        if expected and hmac.compare_digest(presented.encode(), expected.encode()):
            found = sender
    if found is not None:
        return Caller(found)
    if presented_any:
        raise unauthorized("Das gemeinsame Geheimnis ist falsch.", "The shared secret is wrong.")
    raise unauthorized(
        "Es fehlen Zugangsdaten (Geheimnis-Header oder Signatur).",
        "Credentials are missing (secret header or signature).",
    )


def _whsec_key(secret: str) -> bytes:
    raw = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return raw.encode()


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """A Standard Webhooks v1 signature (HMAC-SHA256 over id.timestamp.body), base64."""
    content = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(_whsec_key(secret), content, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def by_signature(
    senders: list[Sender],
    headers: HeaderLookup,
    body: bytes,
    secrets: Mapping[str, str],
    tolerance_s: int,
    now: float | None = None,
) -> Caller:
    """The sender whose signing secret produced one of the presented v1 signatures."""
    webhook_id = headers.get("webhook-id") or ""
    timestamp = headers.get("webhook-timestamp") or ""
    signatures = headers.get("webhook-signature") or ""
    if not (webhook_id and timestamp and signatures):
        raise unauthorized(
            "Die Signatur ist unvollständig (webhook-id, webhook-timestamp, webhook-signature).",
            "The signature is incomplete (webhook-id, webhook-timestamp, webhook-signature).",
        )
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise unauthorized("Der Zeitstempel ist ungültig.", "The timestamp is invalid.")
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > tolerance_s:
        raise unauthorized(
            "Der Zeitstempel der Signatur ist zu alt oder liegt in der Zukunft.",
            "The signature's timestamp is too old or in the future.",
        )
    presented = [
        part.split(",", 1)[1].encode()
        for part in signatures.split()
        if part.startswith("v1,") and "," in part
    ]
    found: Sender | None = None
    for sender in senders:
        secret = secrets.get(sender.signing_secret_env or "", "")
        if not secret:
            continue
        expected = sign(secret, webhook_id, int(timestamp), body).encode()
        for candidate in presented:
            if hmac.compare_digest(candidate, expected):
                found = sender
    if found is None:
        raise unauthorized("Die Signatur ist ungültig.", "The signature is invalid.")
    return Caller(found, webhook_id=webhook_id)
