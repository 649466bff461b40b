"""Who administers the bridge: roles, the acting account or token, accounts and the audit record.

Roles are ordered: a viewer reads, an operator also replays, cancels and re-routes, an admin
also manages accounts and tokens. Every admin action is an `Event` naming the actor.

Passwords are hashed with scrypt (`domain.accounts.passwords`); API tokens and session
cookies are random, so their SHA-256 is what the database keeps. Failed logins are counted in
the database (per account and per remote address), so the lock-out holds when Redis is down.
Logins and their lock-out are `domain.accounts.logins`, the web page's sessions
`domain.accounts.admin_sessions`, API tokens `domain.accounts.api_tokens`.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain.accounts import passwords
from domain.accounts.passwords import ScryptParams
from domain.problems import msg
from schemas import Msg
from store.accounts import Account, AccountOffice, AdminSession, LoginThrottle
from store.engine import Store
from store.models import Event, utcnow

log = logging.getLogger(__name__)


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
    # Set for a back office's own token: it may read only what was delivered to this office.
    office_id: str | None = None
    # Staff limited to these offices' cases (None: every office); `domain.accounts.scopes`.
    offices: frozenset[str] | None = None

    @property
    def label(self) -> str:
        """How events name the actor: ``account:anna``, ``token:civento-sync``, ``cli:root``."""
        if self.via == "token":
            kind = "token"
        elif self.via == "cli" and self.account_id is None:
            kind = "cli"
        else:
            kind = "account"
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


# --- accounts -------------------------------------------------------------------------------

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}\Z")
MAX_SECRET_LENGTH = 256  # longer cookies or bearer tokens are refused before hashing

# last_used_at / last_seen_at are written at most this often, so reads stay cheap.
TOUCH_INTERVAL_S = 60


class AccountError(Exception):
    """An account or token operation that cannot be done; `kind` is stable, `message` German first.

    Kinds: ``invalid`` (bad name, role or password), ``exists``, ``unknown``, ``last-admin``.
    """

    def __init__(self, kind: str, message: Msg) -> None:
        super().__init__(f"{kind}: {message.en}")
        self.kind = kind
        self.message = message


def check_role(role: str) -> None:
    if role not in Role.ALL:
        raise AccountError(
            "invalid",
            msg(
                f"Unbekannte Rolle {role!r}; möglich sind {', '.join(Role.ALL)}.",
                f"Unknown role {role!r}; possible are {', '.join(Role.ALL)}.",
            ),
        )


def _check_password(password: str, username: str) -> None:
    problem = passwords.policy_problem(password, username)
    if problem is not None:
        raise AccountError("invalid", problem)


def _unknown_account(username: str) -> AccountError:
    return AccountError("unknown", msg(f"Kein Konto {username!r}.", f"No account {username!r}."))


def get_account_in(session: Session, username: str) -> Account:
    account = session.scalars(
        select(Account).where(Account.username == username.strip().lower())
    ).one_or_none()
    if account is None:
        raise _unknown_account(username)
    return account


def _keeps_an_admin(session: Session, account: Account) -> None:
    """Refuse to demote or deactivate the last active admin (nobody could manage accounts)."""
    if account.role != Role.ADMIN or not account.active:
        return
    others = session.scalar(
        select(func.count())
        .select_from(Account)
        .where(Account.role == Role.ADMIN, Account.active.is_(True), Account.id != account.id)
    )
    if not others:
        raise AccountError(
            "last-admin",
            msg(
                "Das letzte aktive Admin-Konto kann nicht entzogen werden.",
                "The last active admin account cannot be removed.",
            ),
        )


# The stored "hash" of an account whose holder has not set a password yet: no scrypt form,
# so no password matches it (domain.accounts.logins burns the same time as for a wrong one).
NO_PASSWORD = "unset$"  # noqa: S105 - a marker that matches no password, not a secret


def create_account(
    store: Store,
    username: str,
    password: str | None,
    role: str,
    *,
    actor: Actor,
    display_name: str | None = None,
    kdf: ScryptParams = passwords.DEFAULT,
    offices: frozenset[str] | None = None,
) -> Account:
    """Create an active account (audited as ``account.created``); raises AccountError.

    Without a password nobody can log in until the holder sets one through a one-time link
    (`domain.accounts.password_links`). `offices` limits the account (checked by the caller
    against the configuration with `domain.accounts.scopes.check_offices`); admins are never
    limited.
    """
    username = username.strip().lower()
    if not USERNAME.match(username):
        raise AccountError(
            "invalid",
            msg(
                "Der Benutzername darf nur a-z, 0-9, Punkt, Binde- und Unterstrich enthalten "
                "(2 bis 64 Zeichen).",
                "The user name may only contain a-z, 0-9, dot, hyphen and underscore "
                "(2 to 64 characters).",
            ),
        )
    check_role(role)
    if password is not None:
        _check_password(password, username)
    if offices is not None and (role == Role.ADMIN or not offices):
        raise AccountError(
            "invalid",
            msg(
                "Ein Admin-Konto sieht immer alle Stellen; nur viewer und operator werden "
                "auf Stellen beschränkt.",
                "An admin account always sees every office; only viewers and operators are "
                "limited to offices.",
            ),
        )
    if display_name is not None and len(display_name) > 200:
        raise AccountError(
            "invalid", msg("Der Anzeigename ist zu lang.", "The display name is too long.")
        )
    account = Account(
        username=username,
        display_name=display_name,
        role=role,
        password_hash=NO_PASSWORD if password is None else passwords.hash_password(password, kdf),
        active=True,
        failed_logins=0,
        created_at=utcnow(),
    )
    try:
        with store.session() as session:
            if session.scalars(select(Account.id).where(Account.username == username)).first():
                raise AccountError(
                    "exists",
                    msg(f"Das Konto {username!r} gibt es schon.", f"{username!r} exists."),
                )
            session.add(account)
            session.flush()
            for office_id in sorted(offices or ()):
                session.add(AccountOffice(account_id=account.id, office_id=office_id))
            record_action(
                session,
                actor,
                "account.created",
                detail={
                    "account": username,
                    "account_id": account.id,
                    "new_role": role,
                    "offices": sorted(offices) if offices is not None else None,
                    "password": "set" if password is not None else "by-link",
                },
            )
    except IntegrityError:
        # Two creations of the same name at once: the unique index lets one win.
        raise AccountError(
            "exists", msg(f"Das Konto {username!r} gibt es schon.", f"{username!r} exists.")
        ) from None
    return account


def set_password(
    store: Store,
    username: str,
    password: str,
    *,
    actor: Actor,
    kdf: ScryptParams = passwords.DEFAULT,
) -> Account:
    """Set a new password, lift a lock-out and end the account's sessions (audited)."""
    _check_password(password, username.strip().lower())
    hashed = passwords.hash_password(password, kdf)
    with store.session() as session:
        account = get_account_in(session, username)
        account.password_hash = hashed
        account.failed_logins = 0
        account.locked_until = None
        session.execute(
            delete(LoginThrottle).where(LoginThrottle.remote_addr == name_key(username))
        )
        session.execute(delete(AdminSession).where(AdminSession.account_id == account.id))
        record_action(
            session,
            actor,
            "account.password_set",
            detail={"account": account.username, "account_id": account.id},
        )
    return account


def set_role(store: Store, username: str, role: str, *, actor: Actor) -> Account:
    """Give an account another role (audited with the old and new role)."""
    check_role(role)
    with store.session() as session:
        account = get_account_in(session, username)
        old = account.role
        if old != role and role != Role.ADMIN:
            _keeps_an_admin(session, account)
        if (
            role == Role.ADMIN
            and session.scalars(
                select(AccountOffice.office_id).where(AccountOffice.account_id == account.id)
            ).first()
        ):
            raise AccountError(
                "invalid",
                msg(
                    "Ein Admin-Konto sieht immer alle Stellen; bitte zuerst die Beschränkung "
                    "auf Stellen aufheben.",
                    "An admin account always sees every office; remove the office limit first.",
                ),
            )
        account.role = role
        record_action(
            session,
            actor,
            "account.role_set",
            detail={
                "account": account.username,
                "account_id": account.id,
                "old_role": old,
                "new_role": role,
            },
        )
    return account


def deactivate(store: Store, username: str, *, actor: Actor) -> Account:
    """Deactivate an account: its sessions end and its own tokens stop working (audited)."""
    with store.session() as session:
        account = get_account_in(session, username)
        _keeps_an_admin(session, account)
        account.active = False
        session.execute(delete(AdminSession).where(AdminSession.account_id == account.id))
        record_action(
            session,
            actor,
            "account.deactivated",
            detail={"account": account.username, "account_id": account.id},
        )
    return account


def reactivate(store: Store, username: str, *, actor: Actor) -> Account:
    """Let a deactivated account log in again with its password (audited); an active account
    is left as it is. Its tokens stay revoked: new ones are made when needed."""
    with store.session() as session:
        account = get_account_in(session, username)
        if not account.active:
            account.active = True
            record_action(
                session,
                actor,
                "account.reactivated",
                detail={"account": account.username, "account_id": account.id},
            )
    return account


def unlock(store: Store, username: str, *, actor: Actor) -> Account:
    """Lift a lock-out after failed logins (audited); an unlocked account is left as it is.

    The per-name throttle goes too; a locked remote address stays locked (it may be a
    guesser's, and it unlocks by itself).
    """
    with store.session() as session:
        account = get_account_in(session, username)
        was_locked = account.failed_logins > 0 or account.locked_until is not None
        throttle = session.get(LoginThrottle, name_key(account.username))
        if throttle is not None:
            was_locked = True
            session.delete(throttle)
        account.failed_logins = 0
        account.locked_until = None
        if was_locked:
            record_action(
                session,
                actor,
                "account.unlocked",
                detail={"account": account.username, "account_id": account.id},
            )
    return account


def list_accounts(store: Store) -> list[Account]:
    """All accounts, by user name."""
    with store.read() as session:
        return list(session.scalars(select(Account).order_by(Account.username)))


def get_account(store: Store, username: str) -> Account | None:
    """The account of a user name, or None."""
    with store.read() as session:
        return session.scalars(
            select(Account).where(Account.username == username.strip().lower())
        ).one_or_none()


def name_key(username: str) -> str:
    """The login throttle's key for a user name, with or without an account.

    Only 32 bits of its SHA-256: enough to count failures per name (a shared count between two
    names only locks a little early), too few to tell what an unknown name typed was.
    """
    digest = hashlib.sha256(username.strip().lower().encode()).hexdigest()
    return f"name:{digest[:8]}"


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
