"""Who am I, and the admin's view of the API tokens: list them, revoke a leaked one at once.

Creating tokens stays on the command line (`python -m bridge tokens create`), where the clear
token is shown once to the person who asked for it and never travels through a web log.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, g, request

from bridge.api.access import require_role
from bridge.respond import json_response
from bridge.state import current
from domain.accounts.accounts import AccountError, Actor, Role
from domain.accounts.api_tokens import list_tokens, revoke_token
from domain.accounts.scopes import all_token_offices
from domain.problems import Problem, msg
from store.accounts import ApiToken
from store.models import utcnow

blueprint = Blueprint("tokens_api", __name__)


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def token_state(token: ApiToken, now: dt.datetime) -> str:
    """``valid``, ``expired`` or ``revoked``."""
    if token.revoked_at is not None:
        return "revoked"
    if token.expires_at is not None and token.expires_at <= now:
        return "expired"
    return "valid"


def token_view(
    token: ApiToken, now: dt.datetime, offices: list[str] | None = None
) -> dict[str, Any]:
    """A token as the API shows it: never its secret or hash, only the public prefix.

    `offices` are the offices a staff token is limited to (None: every office).
    """
    return {
        "name": token.name,
        "prefix": token.prefix,
        "role": token.role,
        "office_id": token.office_id,
        "offices": offices,
        "state": token_state(token, now),
        "created_by": token.created_by,
        "created_at": _iso(token.created_at),
        "expires_at": _iso(token.expires_at),
        "last_used_at": _iso(token.last_used_at),
        "revoked_at": _iso(token.revoked_at),
    }


@blueprint.get("/api/v1/me")
@require_role(Role.VIEWER, offices=True)
def me() -> Response:
    """The caller's token: name, role and office, to check a token before handing it on."""
    actor: Actor = g.actor
    return json_response(
        {
            "name": actor.name,
            "role": actor.role,
            "via": actor.via,
            "office_id": actor.office_id,
            "offices": sorted(actor.offices) if actor.offices is not None else None,
        }
    )


@blueprint.get("/api/v1/tokens")
@require_role(Role.ADMIN)
def tokens() -> Response:
    """Every API token with role, office (or offices it is limited to), expiry and last use."""
    now = utcnow()
    store = current().store
    limits = all_token_offices(store)
    return json_response(
        {"tokens": [token_view(t, now, limits.get(t.id)) for t in list_tokens(store)]}
    )


@blueprint.post("/api/v1/tokens/<name>/revoke")
@require_role(Role.ADMIN)
def revoke(name: str) -> Response:
    """Revoke a token at once (audited with the admin's token and the reason given)."""
    body = request.get_json(silent=True)
    reason = body.get("reason") if isinstance(body, dict) else None
    if reason is not None and (not isinstance(reason, str) or len(reason) > 500):
        raise Problem(422, "validation", msg("Ungültige Begründung.", "Invalid reason."), errors=[])
    try:
        token = revoke_token(current().store, name, actor=g.actor, reason=reason or None)
    except AccountError as exc:
        raise Problem(
            404, "unknown-token", msg("Unbekanntes Token.", "Unknown token."), exc.message
        ) from None
    return json_response(token_view(token, utcnow()))
