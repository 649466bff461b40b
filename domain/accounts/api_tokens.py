"""API tokens: random, shown once, kept as SHA-256, with a role, an expiry, last use and revocation;
and the one-time import of the retired BRIDGE_API_TOKENS."""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import re
import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from domain.accounts.accounts import (
    MAX_SECRET_LENGTH,
    TOUCH_INTERVAL_S,
    AccountError,
    Actor,
    Role,
    check_role,
    record_action,
    secret_digest,
)
from domain.accounts.scopes import add_token_offices, token_offices
from domain.problems import msg
from store.accounts import Account, ApiToken
from store.engine import Store
from store.models import utcnow

log = logging.getLogger(__name__)


TOKEN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")

TOKEN_PREFIX = "fcb_"  # noqa: S105 - a public marker that names the kind of secret, not one


def create_token(
    store: Store,
    name: str,
    role: str,
    *,
    expires_at: dt.datetime | None,
    actor: Actor,
    office_id: str | None = None,
    account_id: int | None = None,
    offices: frozenset[str] | None = None,
) -> tuple[ApiToken, str]:
    """Create an API token; returns the row and the clear token (shown once, stored hashed).

    An office token (`office_id`) has the viewer role and reads only that office's cases.
    A staff token limited to `offices` (checked by the caller against the configuration)
    sees and acts on only their cases, like an account limited to them.
    """
    if not TOKEN_NAME.match(name):
        raise AccountError(
            "invalid",
            msg(
                "Der Token-Name darf nur A-Z, a-z, 0-9, Punkt, Binde- und Unterstrich enthalten.",
                "The token name may only contain A-Z, a-z, 0-9, dot, hyphen and underscore.",
            ),
        )
    check_role(role)
    if office_id is not None and role != Role.VIEWER:
        raise AccountError(
            "invalid",
            msg(
                "Ein Token einer Stelle hat immer die Rolle viewer.",
                "An office's token always has the viewer role.",
            ),
        )
    if offices is not None and (role == Role.ADMIN or office_id is not None or not offices):
        raise AccountError(
            "invalid",
            msg(
                "Nur Tokens mit der Rolle viewer oder operator werden auf Stellen beschränkt "
                "(ein Token einer Stelle nennt seine Stelle mit --office).",
                "Only viewer and operator tokens are limited to offices (an office's own "
                "token names its office with --office).",
            ),
        )
    if expires_at is not None and expires_at <= utcnow():
        raise AccountError(
            "invalid",
            msg("Das Ablaufdatum liegt in der Vergangenheit.", "The expiry is in the past."),
        )
    clear = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=name,
        role=role,
        token_hash=secret_digest(clear),
        prefix=clear[:12],
        account_id=account_id if account_id is not None else actor.account_id,
        created_by=actor.label,
        created_at=utcnow(),
        expires_at=expires_at,
        office_id=office_id,
    )
    exists = AccountError(
        "exists", msg(f"Das Token {name!r} gibt es schon.", f"Token {name!r} exists.")
    )
    try:
        with store.session() as session:
            if session.scalars(select(ApiToken.id).where(ApiToken.name == name)).first():
                raise exists
            session.add(token)
            session.flush()
            if offices is not None:
                add_token_offices(session, token.id, offices)
            record_action(
                session,
                actor,
                "token.created",
                detail={
                    "token": name,
                    "token_id": token.id,
                    "new_role": role,
                    "office_id": office_id,
                    "offices": sorted(offices) if offices is not None else None,
                    "expires_at": expires_at.isoformat() if expires_at else None,
                },
            )
    except IntegrityError:
        raise exists from None
    return token, clear


def authenticate_token(
    store: Store, presented: str, *, now: dt.datetime | None = None
) -> Actor | None:
    """The Actor (``via="token"``) of a presented bearer token, or None (unknown, expired, revoked).

    A token of a deactivated account stops working with it.
    """
    if not presented or len(presented) > MAX_SECRET_LENGTH:
        return None
    now = now or utcnow()
    digest = secret_digest(presented)
    with store.read() as session:
        found = session.execute(
            select(ApiToken, Account)
            .outerjoin(Account, Account.id == ApiToken.account_id)
            .where(ApiToken.token_hash == digest)
        ).one_or_none()
        offices = token_offices(session, found[0].id) if found is not None else None
    if found is None:
        return None
    token, owner = found
    if not hmac.compare_digest(token.token_hash, digest):
        return None
    if token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
        return None
    if owner is not None and not owner.active:
        return None
    last = token.last_used_at
    if last is None or (now - last).total_seconds() >= TOUCH_INTERVAL_S:
        with store.session() as session:
            live = session.get(ApiToken, token.id)
            if live is not None:
                live.last_used_at = now
    return Actor(
        name=token.name,
        role=token.role,
        account_id=token.account_id,
        via="token",
        office_id=token.office_id,
        offices=offices,
    )


def revoke_token(store: Store, name: str, *, actor: Actor, reason: str | None = None) -> ApiToken:
    """Revoke a token at once (audited); revoking twice keeps the first time."""
    with store.session() as session:
        token = session.scalars(select(ApiToken).where(ApiToken.name == name)).one_or_none()
        if token is None:
            raise AccountError("unknown", msg(f"Kein Token {name!r}.", f"No token {name!r}."))
        if token.revoked_at is None:
            token.revoked_at = utcnow()
            record_action(
                session,
                actor,
                "token.revoked",
                reason=reason,
                detail={"token": name, "token_id": token.id},
            )
    return token


def list_tokens(store: Store) -> list[ApiToken]:
    """All tokens (never their secrets), by name."""
    with store.read() as session:
        return list(session.scalars(select(ApiToken).order_by(ApiToken.name)))


LEGACY_ROLES = {"reader": Role.VIEWER, "admin": Role.ADMIN}


def import_token(store: Store, name: str, legacy_role: str, clear: str, *, actor: Actor) -> str:
    """Store one token of the retired BRIDGE_API_TOKENS hashed, keeping its value (audited).

    Roles: reader becomes viewer, admin stays admin. Returns ``imported``, ``present`` (the
    same token is already stored: importing twice is harmless) or ``conflict`` (the name is
    taken by another token).
    """
    role = LEGACY_ROLES[legacy_role]
    if not TOKEN_NAME.match(name):
        raise AccountError(
            "invalid", msg(f"Ungültiger Token-Name {name!r}.", f"Invalid token name {name!r}.")
        )
    digest = secret_digest(clear)
    with store.session() as session:
        existing = session.scalars(select(ApiToken).where(ApiToken.name == name)).one_or_none()
        if existing is not None:
            return "present" if hmac.compare_digest(existing.token_hash, digest) else "conflict"
        token = ApiToken(
            name=name,
            role=role,
            token_hash=digest,
            prefix=clear[:6],
            account_id=actor.account_id,
            created_by=actor.label,
            created_at=utcnow(),
            expires_at=None,
        )
        session.add(token)
        session.flush()
        record_action(
            session,
            actor,
            "token.imported",
            detail={"token": name, "token_id": token.id, "new_role": role},
        )
    return "imported"
