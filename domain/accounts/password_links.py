"""One-time links with which an account's holder sets the password: random, expiring, single use.

An admin creates an account without a password (or wants a holder to choose a new one) and
hands over the link; nobody but the holder ever knows the password. Only the link secret's
SHA-256 is stored (it is random, so a fast hash suffices, as for API tokens). A link works
once and until it expires; a newer link for the same account replaces the older ones. Using
a link sets the password as `set_password` does (lifting a lock-out, ending sessions) and
is recorded as the holder's own action.
"""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select, update

from domain.accounts import passwords
from domain.accounts.accounts import (
    MAX_SECRET_LENGTH,
    AccountError,
    Actor,
    get_account_in,
    name_key,
    record_action,
    secret_digest,
)
from domain.accounts.passwords import ScryptParams
from domain.problems import msg
from store.accounts import Account, AdminSession, LoginThrottle, PasswordLink
from store.engine import Store
from store.models import utcnow

LINK_HOURS = 72  # long enough for a weekend, short enough that a forgotten link dies


@dataclass(frozen=True)
class LinkHolder:
    """The account a valid link belongs to (what the page greets the holder with)."""

    link_id: int
    account_id: int
    username: str


def create_link(
    store: Store,
    username: str,
    *,
    actor: Actor,
    hours: int = LINK_HOURS,
    now: dt.datetime | None = None,
) -> tuple[str, dt.datetime]:
    """A new one-time link secret for an active account and its expiry (audited).

    Older unused links of the account stop working.
    """
    now = now or utcnow()
    clear = secrets.token_urlsafe(32)
    expires = now + dt.timedelta(hours=hours)
    with store.session() as session:
        account = get_account_in(session, username)
        if not account.active:
            raise AccountError(
                "invalid",
                msg(
                    "Das Konto ist deaktiviert; es bekommt keinen Link.",
                    "The account is deactivated; it gets no link.",
                ),
            )
        session.execute(
            update(PasswordLink)
            .where(PasswordLink.account_id == account.id, PasswordLink.used_at.is_(None))
            .values(used_at=now)
        )
        session.add(
            PasswordLink(
                account_id=account.id,
                token_hash=secret_digest(clear),
                created_by=actor.label,
                created_at=now,
                expires_at=expires,
            )
        )
        record_action(
            session,
            actor,
            "account.password_link_created",
            detail={
                "account": account.username,
                "account_id": account.id,
                "expires_at": expires.isoformat(),
            },
        )
    return clear, expires


def holder_of(store: Store, clear: str, *, now: dt.datetime | None = None) -> LinkHolder | None:
    """The account of a link that is unused, unexpired and of an active account; else None."""
    if not clear or len(clear) > MAX_SECRET_LENGTH:
        return None
    now = now or utcnow()
    digest = secret_digest(clear)
    with store.read() as session:
        found = session.execute(
            select(PasswordLink, Account)
            .join(Account, Account.id == PasswordLink.account_id)
            .where(PasswordLink.token_hash == digest)
        ).one_or_none()
    if found is None:
        return None
    link, account = found
    if not hmac.compare_digest(link.token_hash, digest):
        return None
    if link.used_at is not None or link.expires_at <= now or not account.active:
        return None
    return LinkHolder(link.id, account.id, account.username)


def use_link(
    store: Store,
    clear: str,
    password: str,
    *,
    kdf: ScryptParams = passwords.DEFAULT,
    now: dt.datetime | None = None,
) -> str:
    """Set the password through a link and spend the link; returns the user name.

    AccountError ``unknown`` for a link that is invalid, used or expired; ``invalid`` for a
    password the policy refuses (the link then stays usable).
    """
    holder = holder_of(store, clear, now=now)
    if holder is None:
        raise AccountError(
            "unknown",
            msg(
                "Dieser Link ist ungültig, abgelaufen oder wurde schon benutzt. Bitte bei der "
                "Verwaltung einen neuen Link anfordern.",
                "This link is invalid, expired or used already. Please ask for a new one.",
            ),
        )
    problem = passwords.policy_problem(password, holder.username)
    if problem is not None:
        raise AccountError("invalid", problem)
    hashed = passwords.hash_password(password, kdf)
    own = Actor(name=holder.username, role="viewer", account_id=holder.account_id, via="link")
    with store.session() as session:
        # Spent by a conditional update: of two uses at once, only one sets a password.
        spent = (
            session.connection()
            .execute(
                update(PasswordLink)
                .where(PasswordLink.id == holder.link_id, PasswordLink.used_at.is_(None))
                .values(used_at=now or utcnow())
            )
            .rowcount
        )
        if spent != 1:
            raise AccountError(
                "unknown",
                msg("Dieser Link wurde schon benutzt.", "This link has been used already."),
            )
        account = session.get(Account, holder.account_id, with_for_update=True)
        assert account is not None  # the link's foreign key
        account.password_hash = hashed
        account.failed_logins = 0
        account.locked_until = None
        session.execute(
            delete(LoginThrottle).where(LoginThrottle.remote_addr == name_key(account.username))
        )
        session.execute(delete(AdminSession).where(AdminSession.account_id == account.id))
        record_action(
            session,
            own,
            "account.password_set",
            detail={"account": account.username, "account_id": account.id, "by_link": True},
        )
    return holder.username
