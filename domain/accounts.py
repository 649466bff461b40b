"""Who administers the bridge: roles, the acting person or token, and the audit record of actions.

Roles are ordered: a viewer reads, an operator also replays, cancels and re-routes, an admin
also manages accounts and tokens. Every admin action is an `Event` naming the actor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from domain.store import Event


class Role:
    """The roles an account or API token can have, weakest first."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"
    ALL: tuple[str, ...] = (VIEWER, OPERATOR, ADMIN)


def role_allows(role: str, needed: str) -> bool:
    """Whether `role` may do what needs `needed` (unknown roles may do nothing)."""
    if role not in Role.ALL or needed not in Role.ALL:
        return False
    return Role.ALL.index(role) >= Role.ALL.index(needed)


@dataclass(frozen=True)
class Actor:
    """Who acts: an account through the web page or CLI, or an API token (`via`)."""

    name: str  # the account's user name or the token's name; never a secret
    role: str
    account_id: int | None = None
    via: str = "session"  # "session" (web page), "token" (API), "cli"

    @property
    def label(self) -> str:
        """How events name the actor, e.g. ``account:anna`` or ``token:civento-sync``."""
        kind = "token" if self.via == "token" else "account"
        return f"{kind}:{self.name}"

    def may(self, needed: str) -> bool:
        """Whether this actor's role allows what needs `needed`."""
        return role_allows(self.role, needed)


def record_action(
    session: Session,
    actor: Actor,
    kind: str,
    *,
    submission_id: int | None = None,
    delivery_id: str | None = None,
    reason: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> Event:
    """Add the audit event of one admin action to `session` (committed with the action itself).

    `kind` is e.g. ``admin.replay``; the detail says what was done, with ids, never personal data.
    """
    body: dict[str, Any] = {"via": actor.via, "role": actor.role, **(detail or {})}
    if reason:
        body["reason"] = reason
    event = Event(
        submission_id=submission_id,
        delivery_id=delivery_id,
        kind=kind,
        actor=actor.label,
        detail=body,
    )
    session.add(event)
    return event
