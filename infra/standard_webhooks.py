"""Standard Webhooks v1 signatures: key decoding, signing and verifying (both directions use it).

The bridge verifies what Formcycle signs (bridge/auth.py) and signs what it delivers to back
offices (integrations/channels/webhook.py); one implementation keeps both sides of the spec alike.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Iterable

PREFIX = "whsec_"
VERSION = "v1"


class SigningKeyError(ValueError):
    """A signing secret that is not `whsec_` + base64 of a non-empty key (German message)."""


def signing_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret (`whsec_` + base64 of 24-64 random bytes)."""
    if not secret.startswith(PREFIX):
        raise SigningKeyError("Der Signaturschlüssel muss mit whsec_ beginnen.")
    try:
        key = base64.b64decode(secret.removeprefix(PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise SigningKeyError("Der Signaturschlüssel ist kein gültiges Base64.") from None
    if not key:
        raise SigningKeyError("Der Signaturschlüssel ist leer.")
    return key


def sign(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: `v1,` + base64 HMAC-SHA256 over `id.timestamp.body`."""
    content = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return f"{VERSION},{base64.b64encode(digest).decode()}"


def within_tolerance(timestamp: int, tolerance_s: int) -> bool:
    """Whether a `webhook-timestamp` (seconds) lies within the tolerance of now, either way."""
    return abs(time.time() - timestamp) <= tolerance_s


def verify(
    keys: Iterable[bytes], webhook_id: str, timestamp: int, body: bytes, signatures: str
) -> int:
    """The index of the first key that made one of the space-separated signatures, or -1.

    Every key is compared against every presented v1 signature, in constant time each, so the
    time taken does not tell which key (or which signature) matched.
    """
    presented = [part.encode() for part in signatures.split() if part.startswith(f"{VERSION},")]
    found = -1
    for index, key in enumerate(keys):
        expected = sign(key, webhook_id, timestamp, body).encode()
        for candidate in presented:
            if hmac.compare_digest(candidate, expected) and found < 0:
                found = index
    return found
