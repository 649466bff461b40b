"""Signed, expiring fetch links: an attachment's link works only for the delivery it was sent with.

A link names the delivery, the attachment's SHA-256 and an expiry, signed with HMAC-SHA256.
The signing key is derived from the encryption keys (BRIDGE_ENCRYPTION_KEYS), so there is no
further secret to provision: links are signed with the first key and verified with any, and
rotating the keys retires old links the same way as it retires old ciphertexts. The derivation
(HMAC with a fixed label) keeps the link key apart from the encryption key itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass
from urllib.parse import urlencode

LABEL = b"formcycle-bridge fetch link v1"


def _link_key(encryption_key: str) -> bytes:
    return hmac.new(encryption_key.encode(), LABEL, hashlib.sha256).digest()


def _signature(key: bytes, delivery_id: str, sha256: str, expires: int) -> str:
    message = f"{delivery_id}\n{sha256}\n{expires}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def fetch_url(
    public_url: str,
    reference: str,
    delivery_id: str,
    sha256: str,
    *,
    encryption_keys: tuple[str, ...],
    expires_at: dt.datetime,
) -> str:
    """The signed link of one attachment of one delivery, valid until `expires_at`."""
    expires = int(expires_at.timestamp())
    query = urlencode(
        {
            "delivery": delivery_id,
            "expires": expires,
            "signature": _signature(_link_key(encryption_keys[0]), delivery_id, sha256, expires),
        }
    )
    return f"{public_url}/api/v1/submissions/{reference}/attachments/{sha256}?{query}"


@dataclass(frozen=True)
class LinkCheck:
    """The outcome of checking a link: ``ok``, ``invalid`` (tampered, malformed) or ``expired``."""

    outcome: str

    @property
    def ok(self) -> bool:
        """Whether the link may be followed."""
        return self.outcome == "ok"


def check_link(
    delivery_id: str,
    sha256: str,
    expires: str,
    signature: str,
    *,
    encryption_keys: tuple[str, ...],
    now: dt.datetime,
) -> LinkCheck:
    """Check a presented link; every key is tried in constant time, then the expiry."""
    if not (expires.isascii() and expires.isdigit() and len(expires) <= 12):
        return LinkCheck("invalid")
    if len(signature) != 64 or not signature.isascii() or len(delivery_id) > 64:
        return LinkCheck("invalid")
    valid = False
    for key in encryption_keys:
        expected = _signature(_link_key(key), delivery_id, sha256, int(expires))
        valid |= hmac.compare_digest(expected, signature.lower())
    if not valid:
        return LinkCheck("invalid")
    if int(expires) <= now.timestamp():
        return LinkCheck("expired")
    return LinkCheck("ok")
