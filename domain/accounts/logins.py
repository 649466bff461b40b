"""Logins with a password: constant time for unknown users, failures counted in the database.

From the 5th failure on an account (the 20th from one address) logins are refused for a
minute, doubling up to an hour; the counters live in the database, so the lock-out holds
when Redis is down.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain.accounts import passwords
from domain.accounts.accounts import Actor
from domain.accounts.passwords import ScryptParams
from domain.problems import msg
from infra.logs import log_event
from schemas import Msg
from store.accounts import Account, LoginThrottle
from store.engine import Store
from store.models import Event, utcnow

log = logging.getLogger(__name__)


# Lock-out: from the 5th failure on an account (the 20th from one address) logins are refused
# for 1 minute, doubling with every further failure up to an hour.
ACCOUNT_MAX_FAILURES = 5
ADDRESS_MAX_FAILURES = 20
LOCK_BASE_S = 60
LOCK_MAX_S = 3600
# An address's failures are forgotten an hour after its last one.
ADDRESS_WINDOW_S = 3600


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


def _lock_seconds(failures: int, threshold: int) -> int:
    """How long a login stays locked after `failures` failures (0 below the threshold)."""
    if failures < threshold:
        return 0
    return int(min(LOCK_MAX_S, LOCK_BASE_S * 2 ** min(failures - threshold, 16)))


def _remaining(until: dt.datetime | None, now: dt.datetime) -> int:
    if until is None or until <= now:
        return 0
    return max(1, int((until - now).total_seconds() + 0.999))


def address_key(remote_addr: str | None) -> str:
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
    address = address_key(remote_addr)
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
