"""Logins with a password: one answer and one hash for known and unknown names alike, failures
counted in the database, and no way to lock a clerk out from another address.

Failures are counted per address and per user name (known or not, under `name_key`). From the
5th failure on a name (the 20th from one address) logins are refused for a minute, doubling up
to an hour. A name's lock holds only against addresses with failures of their own in the last
hour: an attacker cannot close the admin page to a clerk who types the right password from a
clean address, while every address of a distributed guesser gets one guess before the lock
applies to it too. The counters live in the database, so all of this holds when Redis is down.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain.accounts import passwords
from domain.accounts.accounts import Actor, name_key
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
# An address's or a name's failures are forgotten an hour after its last one.
ADDRESS_WINDOW_S = 3600


class LoginRefused(Exception):
    """A refused login: `reason` is ``invalid`` (wrong name or password, or inactive),
    ``locked`` (too many failures) or ``busy`` (every hashing slot in use).

    `retry_after_s` says when a locked or busy login may be tried again (0 for ``invalid``).
    """

    INVALID = "invalid"
    LOCKED = "locked"
    BUSY = "busy"

    def __init__(self, reason: str, retry_after_s: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s

    @property
    def message(self) -> Msg:
        """What the login page says (never which of name and password was wrong)."""
        if self.reason == self.LOCKED:
            minutes = max(1, -(-self.retry_after_s // 60))
            de = "1 Minute" if minutes == 1 else f"{minutes} Minuten"
            en = "1 minute" if minutes == 1 else f"{minutes} minutes"
            return msg(
                f"Zu viele Fehlversuche. Bitte in {de} erneut versuchen.",
                f"Too many failed attempts. Please try again in {en}.",
            )
        if self.reason == self.BUSY:
            return msg(
                "Gerade melden sich viele gleichzeitig an. Bitte in einigen Sekunden erneut "
                "versuchen.",
                "Many logins at once right now. Please try again in a few seconds.",
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


def _throttle_failure(session: Session, key: str, threshold: int, now: dt.datetime) -> int:
    """Count a failure on an address or a name's `key`; the seconds it is now locked (0: not)."""
    row = session.get(LoginThrottle, key, with_for_update=True)
    if row is None:
        row = LoginThrottle(remote_addr=key, failures=0, last_failure_at=now)
        session.add(row)
    elif not _recent(row, now):
        row.failures = 0
    row.failures += 1
    row.last_failure_at = now
    lock = _lock_seconds(row.failures, threshold)
    row.locked_until = now + dt.timedelta(seconds=lock) if lock else None
    return lock


def _recent(row: LoginThrottle | None, now: dt.datetime) -> bool:
    """Whether `row` has failures that are not yet forgotten."""
    return (
        row is not None
        and row.failures > 0
        and (now - row.last_failure_at).total_seconds() <= ADDRESS_WINDOW_S
    )


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
    (each costing one hash); ``locked`` while the address is locked, or the name is and this
    address has failures of its own; ``busy`` before any hashing when the process's hashing
    slots are all in use. A hash made with older parameters than `kdf` is renewed on success.
    """
    now = now or utcnow()
    address = address_key(remote_addr)
    name = username.strip().lower()
    key = name_key(name)
    with store.read() as session:
        address_row = session.get(LoginThrottle, address)
        name_row = session.get(LoginThrottle, key)
        account = (
            session.scalars(select(Account).where(Account.username == name)).one_or_none()
            if len(name) <= 64
            else None
        )
    _check_locks(address_row, name_row, now)
    if account is not None and not account.active:
        account = None
    try:
        with passwords.hashing_slot(wait=False):
            new_hash = _check_password(account, password, kdf)
    except passwords.HashingBusy:
        log_event(log, "login.refused", reason="busy")
        raise LoginRefused(LoginRefused.BUSY, passwords.BUSY_RETRY_S) from None
    if account is not None and new_hash is not None:
        return _login_succeeded(store, account, key, new_hash, now)
    lock = _login_failed(store, account, address, key, now)
    log_event(
        log,
        "login.refused",
        reason="locked" if lock else "invalid",
        account_id=account.id if account is not None else None,
    )
    if lock:
        raise LoginRefused(LoginRefused.LOCKED, lock)
    raise LoginRefused(LoginRefused.INVALID)


def _check_locks(
    address_row: LoginThrottle | None, name_row: LoginThrottle | None, now: dt.datetime
) -> None:
    """Refuse a locked address; refuse a locked name only to an address with failures itself.

    Checked before any hashing, so a locked login costs no scrypt; the same for known and
    unknown names, so the lock does not tell which names exist.
    """
    address_wait = _remaining(address_row.locked_until if address_row else None, now)
    if address_wait:
        log_event(log, "login.refused", reason="address-locked")
        raise LoginRefused(LoginRefused.LOCKED, address_wait)
    if not _recent(address_row, now):
        return
    name_wait = _remaining(name_row.locked_until if name_row else None, now)
    if name_wait:
        log_event(log, "login.refused", reason="name-locked")
        raise LoginRefused(LoginRefused.LOCKED, name_wait)


def _check_password(account: Account | None, password: str, kdf: ScryptParams) -> str | None:
    """The hash to keep when `password` is the account's (renewed if its cost is old), or None.

    Exactly one scrypt either way (two when renewing after a success), so a name without an
    account answers as slowly as a wrong password.
    """
    if account is None or not account.password_hash.startswith("scrypt$"):
        # No account, or one whose holder has not set a password yet: the same cost.
        passwords.burn_time(password, kdf)
        return None
    if not passwords.verify_password(password, account.password_hash):
        return None
    if passwords.needs_rehash(account.password_hash, kdf):
        return passwords.hash_password(password, kdf)
    return account.password_hash


def _login_failed(
    store: Store, account: Account | None, address: str, key: str, now: dt.datetime
) -> int:
    """Count a failed login on the address and the name; the seconds now locked (0: none).

    Two first failures from one address at once may both insert its row: the loser of that
    race counts again on the row the winner made.
    """
    for attempt in range(2):
        try:
            return _count_failure(store, account, address, key, now)
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


def _count_failure(
    store: Store, account: Account | None, address: str, key: str, now: dt.datetime
) -> int:
    with store.session() as session:
        address_lock = _throttle_failure(session, address, ADDRESS_MAX_FAILURES, now)
        # Known or not, a name is counted the same way, so its lock tells nothing.
        name_lock = _throttle_failure(session, key, ACCOUNT_MAX_FAILURES, now)
        if account is not None:
            row = session.get(Account, account.id, with_for_update=True)
            assert row is not None
            # Kept on the account for `accounts list` and the audit trail.
            row.failed_logins += 1
            row.locked_until = now + dt.timedelta(seconds=name_lock) if name_lock else None
            session.add(
                Event(
                    kind="account.login_failed",
                    actor=f"account:{row.username}",
                    detail={
                        "account_id": row.id,
                        "failed_logins": row.failed_logins,
                        "locked_s": name_lock,
                    },
                )
            )
    return max(address_lock, name_lock)


def _login_succeeded(
    store: Store, account: Account, key: str, new_hash: str, now: dt.datetime
) -> Actor:
    rehash = new_hash != account.password_hash
    with store.session() as session:
        row = session.get(Account, account.id, with_for_update=True)
        assert row is not None
        row.failed_logins = 0
        row.locked_until = None
        row.last_login_at = now
        row.password_hash = new_hash
        name_row = session.get(LoginThrottle, key, with_for_update=True)
        if name_row is not None:
            session.delete(name_row)
        session.add(
            Event(
                kind="account.login",
                actor=f"account:{row.username}",
                detail={"account_id": row.id, "rehashed": rehash},
            )
        )
    log_event(log, "login.succeeded", account_id=account.id)
    return Actor(name=account.username, role=account.role, account_id=account.id, via="session")
