"""OAuth2 client-credentials tokens for provider APIs, cached per process until shortly before expiry.

The cache is module-level and keyed by token URL, client id and scope, so every plugin instance
of the same provider in one process (a worker builds one per job, the web app one per request)
shares one token instead of asking the token endpoint each time. Tokens live in memory only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from integrations.payment_providers.base import ProviderRefused, ProviderUnavailable
from integrations.payment_providers.common import json_body, send

#: A token is renewed this long before the provider's `expires_in` ends (at most a tenth of
#: its lifetime, so short-lived tokens are still used for most of their life).
RENEW_MARGIN_S = 30.0
#: When the token endpoint gives no `expires_in`, the token is kept this long.
DEFAULT_LIFETIME_S = 300.0


@dataclass(frozen=True)
class TokenKey:
    """Which client a token belongs to."""

    token_url: str
    client_id: str
    scope: str | None


@dataclass(frozen=True)
class _Token:
    value: str
    renew_at: float  # time.monotonic()


class TokenCache:
    """Access tokens by client, thread-safe; at most one fetch at a time per client."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        """An empty cache; `clock` is monotonic seconds."""
        self._tokens: dict[TokenKey, _Token] = {}
        self._fetching: dict[TokenKey, threading.Lock] = {}
        self._lock = threading.Lock()  # guards the two dicts, never held during a fetch
        self._clock = clock

    def _cached(self, key: TokenKey) -> str | None:
        with self._lock:
            cached = self._tokens.get(key)
            if cached is not None and self._clock() < cached.renew_at:
                return cached.value
            return None

    def get(self, key: TokenKey, fetch: Callable[[], tuple[str, float | None]]) -> str:
        """The cached token for `key`, or a new one from `fetch()` -> (token, expires_in)."""
        value = self._cached(key)
        if value is not None:
            return value
        with self._lock:
            fetching = self._fetching.setdefault(key, threading.Lock())
        # One fetch per client: concurrent callers wait for this one token rather than each
        # asking the token endpoint; a slow endpoint of one provider never blocks another.
        with fetching:
            value = self._cached(key)
            if value is not None:
                return value
            value, expires_in = fetch()
            lifetime = DEFAULT_LIFETIME_S if expires_in is None else max(expires_in, 0.0)
            margin = min(RENEW_MARGIN_S, lifetime / 10)
            with self._lock:
                self._tokens[key] = _Token(value, self._clock() + lifetime - margin)
            return value

    def invalidate(self, key: TokenKey, value: str) -> None:
        """Forget the token `value` for `key` (the API refused it); a newer one is kept."""
        with self._lock:
            cached = self._tokens.get(key)
            if cached is not None and cached.value == value:
                del self._tokens[key]

    def clear(self) -> None:
        """Forget every token."""
        with self._lock:
            self._tokens.clear()


#: The process-wide cache the plugins use.
tokens = TokenCache()


def fetch_token(
    http: requests.Session,
    key: TokenKey,
    client_secret: str,
    *,
    client_auth: str,
    timeout: float,
    what: str,
) -> tuple[str, float | None]:
    """Ask the token endpoint for a client-credentials token: (access_token, expires_in).

    `client_auth` "basic" sends the client's id and secret as HTTP Basic (RFC 6749 2.3.1, the
    recommended way); "post" sends them as form fields for endpoints that want that.
    """
    form = {"grant_type": "client_credentials"}
    if key.scope:
        form["scope"] = key.scope
    auth: tuple[str, str] | None = None
    if client_auth == "basic":
        auth = (key.client_id, client_secret)
    else:
        form["client_id"] = key.client_id
        form["client_secret"] = client_secret
    response = send(
        http,
        "POST",
        key.token_url,
        what=f"{what} (OAuth2-Token)",
        timeout=timeout,
        data=form,
        auth=auth,
        headers={"Accept": "application/json"},
    )
    body = json_body(response, f"{what} (OAuth2-Token)")
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise ProviderRefused(f"{what} (OAuth2-Token): Antwort ohne access_token")
    token_type = body.get("token_type", "Bearer")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise ProviderRefused(f"{what} (OAuth2-Token): kein Bearer-Token")
    expires = body.get("expires_in")
    try:
        expires_in = float(expires) if expires is not None else None
    except (TypeError, ValueError):
        raise ProviderUnavailable(f"{what} (OAuth2-Token): unlesbare Antwort") from None
    return token, expires_in
