"""Where an admin form may be posted from: the bridge's own origin only.

The token itself is `domain.accounts.admin_sessions.csrf_token` of the session cookie (or of a login
cookie before there is a session); this module adds the browser's own statement of where a
POST came from (`Origin`, else `Referer`), which a forged cross-site form cannot hide.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit

FIELD = "csrf_token"


def new_secret() -> str:
    """A fresh random secret for the login form (before a session exists)."""
    return secrets.token_urlsafe(32)


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of `url` in lower case, or None when it has no origin."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def origin_allowed(origin: str | None, referer: str | None, own: Iterable[str]) -> bool:
    """Whether the request's `Origin` (else `Referer`) is one of the bridge's `own` origins.

    A request naming neither is decided by the token alone (some privacy settings strip
    both); `Origin: null` (sandboxed frames, cross-origin redirects) is refused.
    """
    allowed = {o for o in (origin_of(u) for u in own) if o}
    if origin is not None:
        return origin_of(origin) in allowed
    if referer is not None:
        return origin_of(referer) in allowed
    return True
