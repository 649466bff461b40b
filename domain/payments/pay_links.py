"""Signed pay links: the citizen's link to pay a case's fee is a capability, not a guessable URL.

References are sequential (`US-2026-000003`, `-000004`, ...), so `/pay/<reference>` alone must
neither reveal nor create anything. The link the 202 answer and the confirmation page give
carries a token: the link's expiry and an HMAC-SHA256 over the reference and that expiry. The
key is derived from the encryption keys (BRIDGE_ENCRYPTION_KEYS) with its own label, like the
attachments' fetch links (`domain.delivery.fetch_links`): no further secret to provision, signed
with the first key, checked with any, and rotating the keys retires old links.

The pay page's form is protected by a double-submit token bound to the same capability: the
page sets a random nonce as a cookie and puts `csrf_token(nonce, reference, token)` into the
form; the POST must bring both, and the HMAC only matches for this link and this browser.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass
from urllib.parse import quote, urlencode

LABEL = b"formcycle-bridge pay link v1"
CSRF_LABEL = b"formcycle-bridge pay form v1"
#: `<expiry as Unix seconds>-<64 hex digits>`; anything else is refused before any HMAC.
TOKEN = re.compile(r"^([0-9]{1,12})-([0-9a-f]{64})\Z")


def _key(encryption_key: str, label: bytes) -> bytes:
    return hmac.new(encryption_key.encode(), label, hashlib.sha256).digest()


def _signature(key: bytes, reference: str, expires: int) -> str:
    return hmac.new(key, f"pay\n{reference}\n{expires}".encode(), hashlib.sha256).hexdigest()


def pay_token(reference: str, *, encryption_keys: tuple[str, ...], expires_at: dt.datetime) -> str:
    """The token that makes `/pay/<reference>` usable until `expires_at`."""
    expires = int(expires_at.timestamp())
    return f"{expires}-{_signature(_key(encryption_keys[0], LABEL), reference, expires)}"


def pay_url(
    public_url: str,
    reference: str,
    *,
    encryption_keys: tuple[str, ...],
    expires_at: dt.datetime,
) -> str:
    """The citizen's pay link: the bridge's own pay page, with its token."""
    token = pay_token(reference, encryption_keys=encryption_keys, expires_at=expires_at)
    return f"{public_url}/pay/{quote(reference)}?{urlencode({'token': token})}"


def return_url(
    public_url: str,
    reference: str,
    payment_id: str,
    *,
    encryption_keys: tuple[str, ...],
    expires_at: dt.datetime,
) -> str:
    """Where the provider sends the citizen back: the payment, and the token (so that the page
    may show the Kassenzeichen)."""
    token = pay_token(reference, encryption_keys=encryption_keys, expires_at=expires_at)
    query = urlencode({"payment": payment_id, "token": token})
    return f"{public_url}/pay/{quote(reference)}/return?{query}"


@dataclass(frozen=True)
class TokenCheck:
    """The outcome of checking a token: ``ok``, ``missing``, ``invalid`` or ``expired``."""

    outcome: str
    expires_at: dt.datetime | None = None

    @property
    def ok(self) -> bool:
        """Whether the link may be used."""
        return self.outcome == "ok"


def check_token(
    reference: str, token: str | None, *, encryption_keys: tuple[str, ...], now: dt.datetime
) -> TokenCheck:
    """Check a presented token for `reference`: every key in constant time, then the expiry."""
    if not token:
        return TokenCheck("missing")
    found = TOKEN.match(token[:100])
    if found is None or len(reference) > 40:
        return TokenCheck("invalid")
    expires, signature = int(found.group(1)), found.group(2)
    valid = False
    for key in encryption_keys:
        valid |= hmac.compare_digest(_signature(_key(key, LABEL), reference, expires), signature)
    if not valid:
        return TokenCheck("invalid")
    expires_at = dt.datetime.fromtimestamp(expires, dt.UTC)
    if expires <= now.timestamp():
        return TokenCheck("expired", expires_at)
    return TokenCheck("ok", expires_at)


def csrf_token(nonce: str, reference: str, token: str, *, encryption_keys: tuple[str, ...]) -> str:
    """The pay form's hidden value for this browser's `nonce` (its cookie) and this link."""
    key = _key(encryption_keys[0], CSRF_LABEL)
    return hmac.new(key, f"{nonce}\n{reference}\n{token}".encode(), hashlib.sha256).hexdigest()


def csrf_ok(
    nonce: str, presented: str, reference: str, token: str, *, encryption_keys: tuple[str, ...]
) -> bool:
    """Whether the form's value belongs to the cookie's nonce and this link (constant time)."""
    if not nonce or len(nonce) > 64 or len(presented) != 64 or not presented.isascii():
        return False
    valid = False
    for key in encryption_keys:
        mac = _key(key, CSRF_LABEL)
        expected = hmac.new(mac, f"{nonce}\n{reference}\n{token}".encode(), hashlib.sha256)
        valid |= hmac.compare_digest(expected.hexdigest(), presented)
    return valid
