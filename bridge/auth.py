"""Who is calling: senders by shared-secret header or Standard Webhooks signature, API users by token."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from domain.config import Config, Sender
from domain.problems import Problem, msg
from infra import standard_webhooks
from infra.logs import log_event

log = logging.getLogger(__name__)


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
) -> Sender | None:
    """The sender whose shared-secret header matches; None when no such header was presented.

    A presented secret that matches no sender is a 401 even if a signature would verify: every
    credential presented must be right. Every secret is compared in constant time.
    """
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
    if presented_any and found is None:
        raise unauthorized("Das gemeinsame Geheimnis ist falsch.", "The shared secret is wrong.")
    return found


@dataclass(frozen=True)
class SignatureHeaders:
    """The Standard Webhooks headers, complete and with a timestamp inside the tolerance."""

    webhook_id: str
    timestamp: int
    signatures: str


def signature_headers(headers: HeaderLookup, tolerance_s: int) -> SignatureHeaders:
    """The signature headers, checked for presence and freshness: this needs no body.

    Run before the body is read, so a request that can never verify (incomplete, garbled,
    stale or future-dated headers) is refused without reading up to BRIDGE_MAX_BODY_BYTES.
    """
    webhook_id = headers.get("webhook-id") or ""
    timestamp = headers.get("webhook-timestamp") or ""
    signatures = headers.get("webhook-signature") or ""
    if not (webhook_id and timestamp and signatures):
        raise unauthorized(
            "Die Signatur ist unvollständig (webhook-id, webhook-timestamp, webhook-signature).",
            "The signature is incomplete (webhook-id, webhook-timestamp, webhook-signature).",
        )
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise unauthorized("Der Zeitstempel ist ungültig.", "The timestamp is invalid.")
    if not standard_webhooks.within_tolerance(int(timestamp), tolerance_s):
        raise unauthorized(
            "Der Zeitstempel der Signatur ist zu alt oder liegt in der Zukunft.",
            "The signature's timestamp is too old or in the future.",
        )
    return SignatureHeaders(webhook_id, int(timestamp), signatures)


def by_signature(
    senders: list[Sender],
    presented: SignatureHeaders,
    body: bytes,
    secrets: Mapping[str, str],
) -> Sender:
    """The sender whose signing secret produced one of the presented v1 signatures."""
    signing: list[tuple[Sender, bytes]] = []
    for sender in senders:
        secret = secrets.get(sender.signing_secret_env or "", "")
        if not secret:
            continue
        try:
            signing.append((sender, standard_webhooks.signing_key(secret)))
        except standard_webhooks.SigningKeyError:
            # A malformed secret verifies nothing; the operator sees it in the log, not the caller.
            log_event(log, "auth.signing_secret_invalid", level=logging.ERROR, sender=sender.id)
    index = standard_webhooks.verify(
        [key for _, key in signing],
        presented.webhook_id,
        presented.timestamp,
        body,
        presented.signatures,
    )
    if index < 0:
        raise unauthorized("Die Signatur ist ungültig.", "The signature is invalid.")
    return signing[index][0]


def authenticate(
    senders: list[Sender],
    headers: HeaderLookup,
    secrets: Mapping[str, str],
    tolerance_s: int,
    read_body: Callable[[], bytes],
) -> tuple[Caller, bytes]:
    """The caller and the body: every credential presented (secret, signature) must verify.

    The shared secret and the signature headers' presence and timestamp are checked before the
    body is read, so a wrong, missing or stale credential is refused without reading a large
    body; only the signature itself needs the body and is verified after.
    """
    by_secret = by_shared_secret(senders, headers, secrets)
    if not has_signature(headers):
        if by_secret is None:
            raise unauthorized(
                "Es fehlen Zugangsdaten (Geheimnis-Header oder Signatur).",
                "Credentials are missing (secret header or signature).",
            )
        return Caller(by_secret), read_body()
    presented = signature_headers(headers, tolerance_s)
    body = read_body()
    by_key = by_signature(senders, presented, body, secrets)
    if by_secret is not None and by_secret.id != by_key.id:
        raise unauthorized(
            "Geheimnis und Signatur gehören zu verschiedenen Absendern.",
            "The shared secret and the signature belong to different senders.",
        )
    return Caller(by_key, webhook_id=presented.webhook_id), body
