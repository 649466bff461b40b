"""Sessions of the admin web page: random cookie values kept as SHA-256, absolute and idle expiry,
and the CSRF token derived from the session."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from domain.accounts.accounts import MAX_SECRET_LENGTH, TOUCH_INTERVAL_S, Actor, secret_digest
from domain.accounts.logins import ADDRESS_WINDOW_S, address_key
from domain.accounts.scopes import account_offices
from store.accounts import Account, AdminSession, LoginThrottle
from store.engine import Store
from store.models import utcnow

log = logging.getLogger(__name__)


def start_session(
    store: Store,
    actor: Actor,
    *,
    ttl_s: int,
    remote_addr: str | None,
    now: dt.datetime | None = None,
) -> str:
    """Open a web-page session for an account's actor; the random cookie value (stored hashed)."""
    if actor.account_id is None:
        raise ValueError("only accounts have sessions")
    now = now or utcnow()
    value = secrets.token_urlsafe(32)
    with store.session() as session:
        _forget_stale(session, now)
        session.add(
            AdminSession(
                id=secret_digest(value),
                account_id=actor.account_id,
                created_at=now,
                expires_at=now + dt.timedelta(seconds=ttl_s),
                last_seen_at=now,
                remote_addr=address_key(remote_addr),
            )
        )
    return value


def _forget_stale(session: Session, now: dt.datetime) -> None:
    """Drop sessions past their absolute expiry and addresses and names whose failures are
    forgotten.

    Run at each login (rare), so neither table grows with abandoned rows; idle sessions are
    dropped when their cookie comes back, or at the latest when they expire.
    """
    session.execute(delete(AdminSession).where(AdminSession.expires_at <= now))
    forgotten = now - dt.timedelta(seconds=ADDRESS_WINDOW_S)
    session.execute(
        delete(LoginThrottle).where(
            LoginThrottle.last_failure_at < forgotten,
            (LoginThrottle.locked_until.is_(None)) | (LoginThrottle.locked_until <= now),
        )
    )


def resolve_session(
    store: Store, value: str, *, idle_timeout_s: int, now: dt.datetime | None = None
) -> Actor | None:
    """The Actor of a session cookie, or None when unknown, expired, idle too long or inactive."""
    if not value or len(value) > MAX_SECRET_LENGTH:
        return None
    now = now or utcnow()
    digest = secret_digest(value)
    with store.read() as session:
        found = session.execute(
            select(AdminSession, Account)
            .join(Account, Account.id == AdminSession.account_id)
            .where(AdminSession.id == digest)
        ).one_or_none()
        # Read with every request: a changed limit applies to open sessions at once.
        offices = account_offices(session, found[1].id) if found is not None else None
    if found is None:
        return None
    row, account = found
    if not hmac.compare_digest(row.id, digest):
        return None
    idle = (now - row.last_seen_at).total_seconds() >= idle_timeout_s
    if row.expires_at <= now or idle or not account.active:
        end_session(store, value)
        return None
    if (now - row.last_seen_at).total_seconds() >= min(TOUCH_INTERVAL_S, idle_timeout_s / 10):
        with store.session() as session:
            live = session.get(AdminSession, digest)
            if live is not None:
                live.last_seen_at = now
    return Actor(
        name=account.username,
        role=account.role,
        account_id=account.id,
        via="session",
        offices=offices,
    )


def end_session(store: Store, value: str) -> None:
    """Log out: forget the session of this cookie value (unknown values are ignored)."""
    if not value or len(value) > MAX_SECRET_LENGTH:
        return
    with store.session() as session:
        session.execute(delete(AdminSession).where(AdminSession.id == secret_digest(value)))


def csrf_token(value: str) -> str:
    """The CSRF token of a session: derived from the HttpOnly cookie, useless without it."""
    return hmac.new(value.encode(), b"formcycle-bridge csrf v1", hashlib.sha256).hexdigest()


def check_csrf(value: str, presented: str) -> bool:
    """Whether a form's CSRF token belongs to this session (compared in constant time)."""
    return bool(value) and hmac.compare_digest(csrf_token(value), presented or "")
