"""Who administers the bridge: roles, accounts, API tokens, login sessions and the audit record.

Roles are ordered: a viewer reads, an operator also replays, cancels and re-routes, an admin
also manages accounts and tokens. Every admin action is an `Event` naming the actor.

Passwords are hashed with scrypt (`domain.passwords`); API tokens and session cookies are
random, so their SHA-256 is what the database keeps. Failed logins are counted in the
database (per account and per remote address), so the lock-out holds when Redis is down.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain import passwords
from domain.account_store import Account, AdminSession, ApiToken, LoginThrottle
from domain.logs import log_event
from domain.passwords import ScryptParams
from domain.problems import msg
from domain.store import Event, Store, utcnow
from schemas import Msg

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

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
TOKEN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_SECRET_LENGTH = 256  # longer cookies or bearer tokens are refused before hashing

# Lock-out: from the 5th failure on an account (the 20th from one address) logins are refused
# for 1 minute, doubling with every further failure up to an hour.
ACCOUNT_MAX_FAILURES = 5
ADDRESS_MAX_FAILURES = 20
LOCK_BASE_S = 60
LOCK_MAX_S = 3600
# An address's failures are forgotten an hour after its last one.
ADDRESS_WINDOW_S = 3600
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


class LoginRefused(Exception):
    """A refused login: `reason` is ``invalid`` (wrong name or password, or inactive) or ``locked``.

    `retry_after_s` says when a locked login may be tried again (0 for ``invalid``).
    """

    INVALID = "invalid"
    LOCKED = "locked"

    def __init__(self, reason: str, retry_after_s: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s

    @property
    def message(self) -> Msg:
        """What the login page says (never which of name and password was wrong)."""
        if self.reason == self.LOCKED:
            minutes = max(1, -(-self.retry_after_s // 60))
            return msg(
                f"Zu viele Fehlversuche. Bitte in {minutes} Minute(n) erneut versuchen.",
                f"Too many failed attempts. Please try again in {minutes} minute(s).",
            )
        return msg("Benutzername oder Passwort ist falsch.", "The user name or password is wrong.")


def _check_role(role: str) -> None:
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


def _get_account(session: Session, username: str) -> Account:
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


def create_account(
    store: Store,
    username: str,
    password: str,
    role: str,
    *,
    actor: Actor,
    display_name: str | None = None,
    kdf: ScryptParams = passwords.DEFAULT,
) -> Account:
    """Create an active account (audited as ``account.created``); raises AccountError."""
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
    _check_role(role)
    _check_password(password, username)
    if display_name is not None and len(display_name) > 200:
        raise AccountError(
            "invalid", msg("Der Anzeigename ist zu lang.", "The display name is too long.")
        )
    account = Account(
        username=username,
        display_name=display_name,
        role=role,
        password_hash=passwords.hash_password(password, kdf),
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
            record_action(
                session,
                actor,
                "account.created",
                detail={"account": username, "account_id": account.id, "new_role": role},
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
        account = _get_account(session, username)
        account.password_hash = hashed
        account.failed_logins = 0
        account.locked_until = None
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
    _check_role(role)
    with store.session() as session:
        account = _get_account(session, username)
        old = account.role
        if old != role and role != Role.ADMIN:
            _keeps_an_admin(session, account)
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
        account = _get_account(session, username)
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


# --- login ----------------------------------------------------------------------------------


def _lock_seconds(failures: int, threshold: int) -> int:
    """How long a login stays locked after `failures` failures (0 below the threshold)."""
    if failures < threshold:
        return 0
    return int(min(LOCK_MAX_S, LOCK_BASE_S * 2 ** min(failures - threshold, 16)))


def _remaining(until: dt.datetime | None, now: dt.datetime) -> int:
    if until is None or until <= now:
        return 0
    return max(1, int((until - now).total_seconds() + 0.999))


def _address_key(remote_addr: str | None) -> str:
    return (remote_addr or "unknown")[:64]


def _address_failure(session: Session, remote_addr: str, now: dt.datetime) -> int:
    """Count a failure from `remote_addr`; the seconds it is now locked (0: not locked)."""
    row = session.get(LoginThrottle, remote_addr, with_for_update=True)
    if row is None:
        row = LoginThrottle(remote_addr=remote_addr, failures=0, last_failure_at=now)
        session.add(row)
    elif (now - row.last_failure_at).total_seconds() > ADDRESS_WINDOW_S:
        row.failures = 0
    row.failures += 1
    row.last_failure_at = now
    lock = _lock_seconds(row.failures, ADDRESS_MAX_FAILURES)
    row.locked_until = now + dt.timedelta(seconds=lock) if lock else None
    return lock


def authenticate_password(
    store: Store,
    username: str,
    password: str,
    *,
    remote_addr: str | None,
    now: dt.datetime | None = None,
    kdf: ScryptParams = passwords.DEFAULT,
) -> Actor:
    """The account's Actor (``via="session"``) when name and password are right.

    Raises LoginRefused: ``invalid`` for a wrong password, an unknown or inactive account
    (each costing the same hashing time); ``locked`` while the account or the address is
    locked out. A hash made with older parameters than `kdf` is renewed on success.
    """
    now = now or utcnow()
    address = _address_key(remote_addr)
    name = username.strip().lower()
    with store.read() as session:
        throttle = session.get(LoginThrottle, address)
        account = (
            session.scalars(select(Account).where(Account.username == name)).one_or_none()
            if len(name) <= 64
            else None
        )
    address_wait = _remaining(throttle.locked_until if throttle else None, now)
    if address_wait:
        log_event(log, "login.refused", reason="address-locked")
        raise LoginRefused(LoginRefused.LOCKED, address_wait)
    if account is not None and account.active:
        account_wait = _remaining(account.locked_until, now)
        if account_wait:
            log_event(log, "login.refused", reason="account-locked", account_id=account.id)
            raise LoginRefused(LoginRefused.LOCKED, account_wait)
        good = passwords.verify_password(password, account.password_hash)
    else:
        passwords.burn_time(password, kdf)
        good = False
    if good and account is not None:
        return _login_succeeded(store, account, password, now, kdf)
    lock = _login_failed(store, account, address, now)
    log_event(
        log,
        "login.refused",
        reason="locked" if lock else "invalid",
        account_id=account.id if account is not None else None,
    )
    if lock:
        raise LoginRefused(LoginRefused.LOCKED, lock)
    raise LoginRefused(LoginRefused.INVALID)


def _login_failed(store: Store, account: Account | None, address: str, now: dt.datetime) -> int:
    """Count a failed login on the address and the account; the seconds now locked (0: none).

    Two first failures from one address at once may both insert its row: the loser of that
    race counts again on the row the winner made.
    """
    for attempt in range(2):
        try:
            return _count_failure(store, account, address, now)
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


def _count_failure(store: Store, account: Account | None, address: str, now: dt.datetime) -> int:
    lock = 0
    with store.session() as session:
        lock = _address_failure(session, address, now)
        if account is not None and account.active:
            row = session.get(Account, account.id, with_for_update=True)
            assert row is not None
            row.failed_logins += 1
            account_lock = _lock_seconds(row.failed_logins, ACCOUNT_MAX_FAILURES)
            if account_lock:
                row.locked_until = now + dt.timedelta(seconds=account_lock)
            lock = max(lock, account_lock)
            session.add(
                Event(
                    kind="account.login_failed",
                    actor=f"account:{row.username}",
                    detail={
                        "account_id": row.id,
                        "failed_logins": row.failed_logins,
                        "locked_s": account_lock,
                    },
                )
            )
    return lock


def _login_succeeded(
    store: Store, account: Account, password: str, now: dt.datetime, kdf: ScryptParams
) -> Actor:
    rehash = passwords.needs_rehash(account.password_hash, kdf)
    new_hash = passwords.hash_password(password, kdf) if rehash else None
    with store.session() as session:
        row = session.get(Account, account.id, with_for_update=True)
        assert row is not None
        row.failed_logins = 0
        row.locked_until = None
        row.last_login_at = now
        if new_hash is not None:
            row.password_hash = new_hash
        session.add(
            Event(
                kind="account.login",
                actor=f"account:{row.username}",
                detail={"account_id": row.id, "rehashed": rehash},
            )
        )
    log_event(log, "login.succeeded", account_id=account.id)
    return Actor(name=account.username, role=account.role, account_id=account.id, via="session")


# --- sessions -------------------------------------------------------------------------------


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


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
                id=_digest(value),
                account_id=actor.account_id,
                created_at=now,
                expires_at=now + dt.timedelta(seconds=ttl_s),
                last_seen_at=now,
                remote_addr=_address_key(remote_addr),
            )
        )
    return value


def _forget_stale(session: Session, now: dt.datetime) -> None:
    """Drop sessions past their absolute expiry and addresses whose failures are forgotten.

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
    digest = _digest(value)
    with store.read() as session:
        found = session.execute(
            select(AdminSession, Account)
            .join(Account, Account.id == AdminSession.account_id)
            .where(AdminSession.id == digest)
        ).one_or_none()
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
    return Actor(name=account.username, role=account.role, account_id=account.id, via="session")


def end_session(store: Store, value: str) -> None:
    """Log out: forget the session of this cookie value (unknown values are ignored)."""
    if not value or len(value) > MAX_SECRET_LENGTH:
        return
    with store.session() as session:
        session.execute(delete(AdminSession).where(AdminSession.id == _digest(value)))


def csrf_token(value: str) -> str:
    """The CSRF token of a session: derived from the HttpOnly cookie, useless without it."""
    return hmac.new(value.encode(), b"formcycle-bridge csrf v1", hashlib.sha256).hexdigest()


def check_csrf(value: str, presented: str) -> bool:
    """Whether a form's CSRF token belongs to this session (compared in constant time)."""
    return bool(value) and hmac.compare_digest(csrf_token(value), presented or "")


# --- API tokens -----------------------------------------------------------------------------

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
) -> tuple[ApiToken, str]:
    """Create an API token; returns the row and the clear token (shown once, stored hashed).

    An office token (`office_id`) has the viewer role and reads only that office's cases.
    """
    if not TOKEN_NAME.match(name):
        raise AccountError(
            "invalid",
            msg(
                "Der Token-Name darf nur A-Z, a-z, 0-9, Punkt, Binde- und Unterstrich enthalten.",
                "The token name may only contain A-Z, a-z, 0-9, dot, hyphen and underscore.",
            ),
        )
    _check_role(role)
    if office_id is not None and role != Role.VIEWER:
        raise AccountError(
            "invalid",
            msg(
                "Ein Token einer Stelle hat immer die Rolle viewer.",
                "An office's token always has the viewer role.",
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
        token_hash=_digest(clear),
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
            record_action(
                session,
                actor,
                "token.created",
                detail={
                    "token": name,
                    "token_id": token.id,
                    "new_role": role,
                    "office_id": office_id,
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
    digest = _digest(presented)
    with store.read() as session:
        found = session.execute(
            select(ApiToken, Account)
            .outerjoin(Account, Account.id == ApiToken.account_id)
            .where(ApiToken.token_hash == digest)
        ).one_or_none()
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
    digest = _digest(clear)
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
