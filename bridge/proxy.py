"""Who the client is behind a reverse proxy: forwarded headers are believed from trusted peers only.

`install` wraps the app in werkzeug's ProxyFix when `BRIDGE_PROXY_HOPS` is above 0, but only
for requests whose TCP peer is one of `BRIDGE_TRUSTED_PROXIES`: a client that reaches the web
process directly (not through the proxy) keeps its own address whatever `X-Forwarded-For`
says. `client_address` is the one place the app asks who called; the pay pages' limit, the
callback journal, the login lock-out and the admin sessions all use it (docs/proxy.md).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """WSGI middleware: ProxyFix for requests from a trusted proxy, the plain app for others."""

    def __init__(self, app: WSGIApplication, hops: int, trusted: Iterable[str]) -> None:
        """Believe `hops` X-Forwarded-For entries (from the right) from peers in `trusted`.

        X-Forwarded-Proto and X-Forwarded-Host count one hop whatever `hops` is: the proxy next
        to the app sets them afresh (deploy/nginx), it does not append to a client's value.
        """
        self.plain = app
        self.fixed = ProxyFix(app, x_for=hops, x_proto=1, x_host=1, x_port=0, x_prefix=0)
        self.trusted: tuple[Network, ...] = tuple(
            ipaddress.ip_network(item, strict=False) for item in trusted
        )

    def trusts(self, peer: str | None) -> bool:
        """Whether `peer` (the TCP peer's address) is one of the trusted proxies."""
        try:
            address = ipaddress.ip_address(peer or "")
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.trusted)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Serve the request, with the forwarded headers applied only from a trusted peer."""
        if self.trusts(environ.get("REMOTE_ADDR")):
            return self.fixed(environ, start_response)
        return self.plain(environ, start_response)


def install(app: Flask, hops: int, trusted: Iterable[str]) -> None:
    """Put `TrustedProxies` in front of `app` when there are proxies (`hops` > 0)."""
    if hops > 0:
        app.wsgi_app = TrustedProxies(app.wsgi_app, hops, trusted)  # type: ignore[method-assign]  # Flask's documented way to add WSGI middleware


def client_address() -> str | None:
    """The client's address: the TCP peer's, or the one a trusted proxy forwarded."""
    return request.remote_addr


def client_on_loopback() -> bool:
    """Whether the client (see `client_address`) is on this host's loopback."""
    try:
        return ipaddress.ip_address(client_address() or "").is_loopback
    except ValueError:
        return False
