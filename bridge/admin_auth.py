"""Interim role check for the admin API until accounts land (`bridge.access.require_role`).

It has `require_role(role)`'s signature and effect (bearer token -> `g.actor`, 401/403
problems), mapping the environment's API tokens: reader -> viewer, admin -> admin. The merge
with the accounts work replaces the one import in `bridge.admin_api` and deletes this module.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, request

from bridge.auth import unauthorized
from bridge.state import current
from domain.accounts import Actor, Role
from domain.problems import Problem, msg

F = TypeVar("F", bound=Callable[..., Any])
_ROLES = {"reader": Role.VIEWER, "admin": Role.ADMIN}


def require_role(role: str) -> Callable[[F], F]:
    """Require a bearer token whose role allows `role`; the view finds it in `g.actor`."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not presented.strip():
                raise unauthorized("Es fehlt ein Zugangstoken.", "A bearer token is missing.")
            token = current().settings.token_role(presented.strip())
            if token is None:
                raise unauthorized("Das Zugangstoken ist ungültig.", "The bearer token is invalid.")
            actor = Actor(name=token.name, role=_ROLES[token.role], via="token")
            if not actor.may(role):
                raise Problem(
                    403,
                    "forbidden",
                    msg("Keine Berechtigung.", "Forbidden."),
                    msg(f"Dafür ist die Rolle {role} nötig.", f"This needs the {role} role."),
                )
            g.actor = actor
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]  # wraps keeps the signature F describes

    return decorate
