"""API access by role: the bearer token's Actor in `g.actor`, 401 without one, 403 below the role.

Tokens live hashed in the database (`domain.accounts.accounts`); `python -m bridge tokens create`
makes them. A back office's own token (`office_id`) is refused here unless the view reads
only that office's deliveries and checks the office itself (`offices=True`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, request

from bridge.auth import unauthorized
from bridge.state import current
from domain.accounts.accounts import Actor
from domain.accounts.api_tokens import authenticate_token
from domain.problems import Problem, msg
from domain.settings import Settings
from infra.logs import log_event

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)


def warn_legacy_tokens(settings: Settings) -> None:
    """Tell the operator at start that BRIDGE_API_TOKENS no longer grants access."""
    if settings.legacy_api_tokens:
        log_event(
            log,
            "auth.legacy_api_tokens_ignored",
            level=logging.WARNING,
            tokens=len(settings.legacy_api_tokens),
            action="run `python -m bridge tokens import-env` once, then remove BRIDGE_API_TOKENS",
        )


def presented_token() -> str | None:
    """The bearer token of the request, or None when there is none."""
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        return None
    return presented


def bearer_actor(*, required: bool = True) -> Actor | None:
    """The Actor of the request's bearer token; 401 when it is invalid (or missing if required)."""
    presented = presented_token()
    if presented is None:
        if required:
            raise unauthorized("Es fehlt ein Zugangstoken.", "A bearer token is missing.")
        return None
    actor = authenticate_token(current().store, presented)
    if actor is None:
        raise unauthorized(
            "Das Zugangstoken ist ungültig, abgelaufen oder widerrufen.",
            "The bearer token is invalid, expired or revoked.",
        )
    return actor


def forbidden(de: str, en: str) -> Problem:
    """The 403 problem: authenticated, but not allowed to do this."""
    return Problem(403, "forbidden", msg("Keine Berechtigung.", "Forbidden."), msg(de, en))


def check_role(actor: Actor, needed: str, *, offices: bool = False) -> None:
    """Raise the 403 problem unless `actor` may do what needs `needed`."""
    if actor.office_id is not None and not offices:
        raise forbidden(
            "Das Token einer Stelle ruft nur die Anlagen der Fälle dieser Stelle ab.",
            "An office's token only fetches the attachments of that office's cases.",
        )
    if not actor.may(needed):
        raise forbidden(
            f"Dafür ist die Rolle {needed} nötig (dieses Token hat {actor.role}).",
            f"This needs the {needed} role (this token has {actor.role}).",
        )


def require_role(needed: str, *, offices: bool = False) -> Callable[[F], F]:
    """Require a bearer token whose role includes `needed`; its Actor is `g.actor` in the view.

    With `offices=True` an office's own token passes too; the view must then check that
    what it serves went to `g.actor.office_id`.
    """

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            actor = bearer_actor()
            assert actor is not None
            check_role(actor, needed, offices=offices)
            g.actor = actor
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]  # wraps keeps the signature; mypy cannot see it

    return decorate
