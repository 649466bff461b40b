"""Accounts and password logins on both stores: policy, lock-out, rehash, deactivation, audit."""

from __future__ import annotations

import datetime as dt
import statistics
import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import select

from domain.accounts import passwords
from domain.accounts.accounts import (
    AccountError,
    Actor,
    create_account,
    deactivate,
    set_password,
    set_role,
)
from domain.accounts.logins import (
    ACCOUNT_MAX_FAILURES,
    ADDRESS_MAX_FAILURES,
    LoginRefused,
    authenticate_password,
)
from domain.accounts.passwords import ScryptParams
from store.accounts import Account, LoginThrottle
from store.engine import Store
from store.models import Event
from tests.conftest import TEST_ADMIN, hashing_slots_held, snapshot

KDF = ScryptParams(n=2**14)
PASSWORD = "Korrekt-Pferd-Batterie-7"
ADDR = "192.0.2.10"


def _anna(store: Store, role: str = "operator") -> Account:
    return create_account(store, "anna", PASSWORD, role, actor=TEST_ADMIN, kdf=KDF)


def _login(store: Store, password: str, *, at: dt.datetime, addr: str = ADDR) -> Actor:
    return authenticate_password(store, "anna", password, remote_addr=addr, now=at, kdf=KDF)


def _refused(store: Store, password: str, *, at: dt.datetime, addr: str = ADDR) -> LoginRefused:
    with pytest.raises(LoginRefused) as caught:
        _login(store, password, at=at, addr=addr)
    return caught.value


def _events(store: Store, kind: str) -> list[Event]:
    with store.read() as session:
        return list(session.scalars(select(Event).where(Event.kind == kind).order_by(Event.id)))


def test_create_account_is_audited_and_stores_only_a_hash(store: Store) -> None:
    """The account exists with its role; the event names who created it; no clear password."""
    account = create_account(
        store, " Anna ", PASSWORD, "viewer", actor=TEST_ADMIN, display_name="Anna Schmidt", kdf=KDF
    )
    assert account.username == "anna"
    assert account.password_hash.startswith("scrypt$16384$8$1$")
    assert PASSWORD not in account.password_hash
    [created] = _events(store, "account.created")
    assert created.actor == "cli:pytest"
    assert created.detail["account"] == "anna"
    assert created.detail["new_role"] == "viewer"
    assert PASSWORD not in str(created.detail)


@pytest.mark.parametrize(
    ("username", "password", "role", "message"),
    [
        ("anna", "kurz-1234", "viewer", "Das Passwort muss mindestens 12 Zeichen lang sein."),
        (
            "anna",
            "xx-Anna-2026-xx",
            "viewer",
            "Das Passwort darf den Benutzernamen nicht enthalten.",
        ),
        ("anna", "aaaaaaaaaaaaaaaa", "viewer", "Das Passwort besteht aus zu wenigen"),
        ("anna", PASSWORD, "superuser", "Unbekannte Rolle 'superuser'"),
        ("a b", PASSWORD, "viewer", "Der Benutzername darf nur a-z"),
        ("x" * 65, PASSWORD, "viewer", "Der Benutzername darf nur a-z"),
    ],
)
def test_invalid_account_is_refused_and_nothing_stored(
    store: Store, username: str, password: str, role: str, message: str
) -> None:
    """Weak passwords, unknown roles and bad names are refused in German; no row, no event."""
    before = snapshot(store)
    with pytest.raises(AccountError) as caught:
        create_account(store, username, password, role, actor=TEST_ADMIN, kdf=KDF)
    assert caught.value.kind == "invalid"
    assert str(caught.value.message).startswith(message)
    assert snapshot(store) == before


def test_duplicate_account_is_refused(store: Store) -> None:
    """A user name exists once; the second creation changes nothing."""
    _anna(store)
    before = snapshot(store)
    with pytest.raises(AccountError) as caught:
        create_account(store, "ANNA", PASSWORD + "x", "admin", actor=TEST_ADMIN, kdf=KDF)
    assert caught.value.kind == "exists"
    assert snapshot(store) == before


def test_right_password_logs_in_and_is_audited(store: Store) -> None:
    """The Actor names the account; last login is set; the event names the account."""
    account = _anna(store)
    now = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    actor = _login(store, PASSWORD, at=now)
    assert actor == Actor(name="anna", role="operator", account_id=account.id, via="session")
    assert actor.label == "account:anna"
    with store.read() as session:
        row = session.get(Account, account.id)
        assert row is not None
        assert row.last_login_at == now
    [event] = _events(store, "account.login")
    assert event.actor == "account:anna"


def test_wrong_password_and_unknown_user_are_refused_alike(store: Store) -> None:
    """Both say "invalid" with the same German message; only the real account counts a failure."""
    _anna(store)
    now = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    wrong = _refused(store, "falsches-Passwort-1", at=now)
    with pytest.raises(LoginRefused) as unknown:
        authenticate_password(store, "bernd", PASSWORD, remote_addr=ADDR, now=now, kdf=KDF)
    for refusal in (wrong, unknown.value):
        assert refusal.reason == LoginRefused.INVALID
        assert refusal.retry_after_s == 0
        assert str(refusal.message) == "Benutzername oder Passwort ist falsch."
    with store.read() as session:
        assert session.scalars(select(Account.failed_logins)).one() == 1
        throttle = session.get(LoginThrottle, ADDR)
        assert throttle is not None
        assert throttle.failures == 2
    [failed] = _events(store, "account.login_failed")
    assert failed.actor == "account:anna"
    assert "bernd" not in str([e.detail for e in _events(store, "account.login_failed")])


def test_unknown_user_costs_as_much_as_a_wrong_password(store: Store) -> None:
    """A dummy hash is verified for unknown names, so timing does not tell names apart."""
    _anna(store)
    now = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)

    def timed(username: str, addr: str) -> float:
        # The thread's own CPU time: the hash is CPU work, and wall time would also count
        # whatever else the machine runs (it did: a loaded CI host failed the wall-clock form).
        started = time.thread_time()
        with pytest.raises(LoginRefused):
            authenticate_password(
                store, username, "falsch-falsch-1", remote_addr=addr, now=now, kdf=KDF
            )
        return time.thread_time() - started

    known = statistics.median(timed("anna", f"198.51.100.{i}") for i in range(3))
    unknown = statistics.median(timed("niemand", f"198.51.100.{10 + i}") for i in range(3))
    # Without the dummy hash an unknown name would answer in a few milliseconds.
    assert unknown > 0.5 * known, (known, unknown)


def test_lockout_grows_and_expires(store: Store) -> None:
    """The 5th failure locks for a minute (even the right password); after it, one more
    failure locks for two; the right password after the lock logs in and resets the count."""
    _anna(store)
    t0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    for i in range(ACCOUNT_MAX_FAILURES - 1):
        assert _refused(store, f"falsch-falsch-{i}", at=t0).reason == LoginRefused.INVALID
    locked = _refused(store, "falsch-falsch-x", at=t0)
    assert (locked.reason, locked.retry_after_s) == (LoginRefused.LOCKED, 60)
    assert str(locked.message) == "Zu viele Fehlversuche. Bitte in 1 Minute erneut versuchen."
    # Locked: the right password does not help, and nothing is counted or hashed.
    before = snapshot(store)
    during = _refused(store, PASSWORD, at=t0 + dt.timedelta(seconds=30))
    assert (during.reason, during.retry_after_s) == (LoginRefused.LOCKED, 30)
    assert snapshot(store) == before
    # After the minute, another failure locks for twice as long.
    again = _refused(store, "falsch-falsch-y", at=t0 + dt.timedelta(seconds=61))
    assert (again.reason, again.retry_after_s) == (LoginRefused.LOCKED, 120)
    actor = _login(store, PASSWORD, at=t0 + dt.timedelta(seconds=61 + 121))
    assert actor.name == "anna"
    with store.read() as session:
        row = session.scalars(select(Account)).one()
        assert (row.failed_logins, row.locked_until) == (0, None)
    assert _refused(store, "falsch-falsch-z", at=t0 + dt.timedelta(seconds=200)).reason == (
        LoginRefused.INVALID
    )


def test_one_address_is_throttled_across_user_names(store: Store) -> None:
    """Guessing many names from one address locks that address, not other addresses."""
    _anna(store)
    now = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    for i in range(ADDRESS_MAX_FAILURES - 1):
        with pytest.raises(LoginRefused) as caught:
            authenticate_password(
                store, f"gast{i}", "falsch-falsch-1", remote_addr=ADDR, now=now, kdf=KDF
            )
        assert caught.value.reason == LoginRefused.INVALID
    with pytest.raises(LoginRefused) as locked:
        authenticate_password(
            store, "gast-x", "falsch-falsch-1", remote_addr=ADDR, now=now, kdf=KDF
        )
    assert (locked.value.reason, locked.value.retry_after_s) == (LoginRefused.LOCKED, 60)
    assert _refused(store, PASSWORD, at=now).reason == LoginRefused.LOCKED
    assert _login(store, PASSWORD, at=now, addr="203.0.113.5").name == "anna"
    # An hour after the last failure the address starts afresh.
    later = now + dt.timedelta(hours=1, seconds=1)
    assert _login(store, PASSWORD, at=later).name == "anna"


def test_deactivated_account_cannot_log_in(store: Store) -> None:
    """Deactivated: the right password is refused like a wrong one; the action is audited."""
    _anna(store)
    create_account(store, "chef", PASSWORD, "admin", actor=TEST_ADMIN, kdf=KDF)
    deactivate(store, "anna", actor=Actor("chef", "admin", account_id=2, via="session"))
    now = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    assert _refused(store, PASSWORD, at=now).reason == LoginRefused.INVALID
    [event] = _events(store, "account.deactivated")
    assert event.actor == "account:chef"
    assert event.detail["account"] == "anna"


def test_hash_is_renewed_when_the_cost_rises(store: Store) -> None:
    """An account hashed with an older cost gets a hash of the current cost at its next login."""
    _anna(store)
    stronger = ScryptParams(n=2**15)
    authenticate_password(store, "anna", PASSWORD, remote_addr=ADDR, kdf=stronger)
    with store.read() as session:
        stored = session.scalars(select(Account.password_hash)).one()
    assert stored.startswith("scrypt$32768$8$1$")
    assert not passwords.needs_rehash(stored, stronger)
    assert passwords.verify_password(PASSWORD, stored)
    [login] = _events(store, "account.login")
    assert login.detail["rehashed"] is True


def test_set_password_lifts_the_lock_and_set_role_is_audited(store: Store) -> None:
    """A new password unlocks the account; the old one stops working; roles change on record."""
    _anna(store)
    now = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    for i in range(ACCOUNT_MAX_FAILURES):
        _refused(store, f"falsch-falsch-{i}", at=now)
    set_password(store, "anna", "Neues-Passwort-2026", actor=TEST_ADMIN, kdf=KDF)
    assert _login(store, "Neues-Passwort-2026", at=now).name == "anna"
    assert _refused(store, PASSWORD, at=now).reason == LoginRefused.INVALID
    set_role(store, "anna", "viewer", actor=TEST_ADMIN)
    [changed] = _events(store, "account.role_set")
    assert (changed.detail["old_role"], changed.detail["new_role"]) == ("operator", "viewer")
    assert changed.actor == "cli:pytest"


def test_last_admin_is_kept(store: Store) -> None:
    """The last active admin can be neither demoted nor deactivated; nothing changes."""
    create_account(store, "chef", PASSWORD, "admin", actor=TEST_ADMIN, kdf=KDF)
    before = snapshot(store)
    actions: list[Callable[[], Account]] = [
        lambda: set_role(store, "chef", "operator", actor=TEST_ADMIN),
        lambda: deactivate(store, "chef", actor=TEST_ADMIN),
    ]
    for action in actions:
        with pytest.raises(AccountError) as caught:
            action()
        assert caught.value.kind == "last-admin"
        assert (
            str(caught.value.message) == "Das letzte aktive Admin-Konto kann nicht entzogen werden."
        )
    assert snapshot(store) == before
    with pytest.raises(AccountError) as unknown:
        set_role(store, "niemand", "viewer", actor=TEST_ADMIN)
    assert unknown.value.kind == "unknown"


def test_over_long_input_never_matches(store: Store) -> None:
    """A password of the maximum length plus more is wrong, not cut to the stored one; a user
    name longer than any account's finds none."""
    longest = ("Ab1-" * 256)[: passwords.MAX_LENGTH]
    create_account(store, "lang", longest, "viewer", actor=TEST_ADMIN, kdf=KDF)
    at = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    assert (
        authenticate_password(store, "lang", longest, remote_addr=ADDR, now=at, kdf=KDF).name
        == "lang"
    )
    for username, password in (("lang", longest + "x"), ("lang" + "g" * 80, longest)):
        with pytest.raises(LoginRefused) as caught:
            authenticate_password(store, username, password, remote_addr=ADDR, now=at, kdf=KDF)
        assert caught.value.reason == LoginRefused.INVALID
    with pytest.raises(AccountError):
        create_account(store, "zulang", longest + "x", "viewer", actor=TEST_ADMIN, kdf=KDF)


def test_simultaneous_first_failures_from_one_address_all_count(store: Store) -> None:
    """As many wrong logins at once from a new address as there are hashing slots: each refused
    as invalid, none a crash, all counted (the row they all insert is made once)."""
    _anna(store)
    at = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    count = passwords.SLOTS
    start = threading.Barrier(count)
    outcomes: list[str] = []

    def attempt(i: int) -> None:
        start.wait()
        try:
            _login(store, f"falsch-falsch-{i}", at=at, addr="198.51.100.77")
        except LoginRefused as refused:
            outcomes.append(refused.reason)
        except Exception as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert outcomes == [LoginRefused.INVALID] * count
    with store.read() as session:
        throttle = session.get(LoginThrottle, "198.51.100.77")
        assert throttle is not None
        assert throttle.failures == count
        assert session.scalars(select(Account.failed_logins)).one() == count


ATTACKER = "198.51.100.66"


def test_an_attack_from_elsewhere_does_not_lock_out_a_clean_client(store: Store) -> None:
    """Wrong passwords from one address lock the account for that address only: the right
    password from an address without failures still logs in; the attacker stays locked."""
    _anna(store)
    now = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    for i in range(ACCOUNT_MAX_FAILURES + 1):
        _refused(store, f"falsch-falsch-{i}", at=now, addr=ATTACKER)
    assert _refused(store, PASSWORD, at=now, addr=ATTACKER).reason == LoginRefused.LOCKED
    assert _login(store, PASSWORD, at=now, addr="203.0.113.5").name == "anna"


def test_unknown_and_known_names_answer_alike_through_the_lock(store: Store) -> None:
    """Six wrong passwords for a real account and for a name without one give the same
    reasons, waits and messages, so the lock-out does not tell which names exist."""
    _anna(store)
    now = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)

    def answers(username: str, addr: str) -> list[tuple[str, int, str]]:
        seen = []
        for i in range(ACCOUNT_MAX_FAILURES + 1):
            with pytest.raises(LoginRefused) as caught:
                authenticate_password(
                    store, username, f"falsch-falsch-{i}", remote_addr=addr, now=now, kdf=KDF
                )
            refused = caught.value
            seen.append((refused.reason, refused.retry_after_s, str(refused.message)))
        return seen

    known = answers("anna", "198.51.100.1")
    assert known == answers("niemand", "198.51.100.2")
    assert known[-1][0] == LoginRefused.LOCKED
    # The name without an account is counted under a short hash, never as typed.
    with store.read() as session:
        keys = set(session.scalars(select(LoginThrottle.remote_addr)))
    assert not any("niemand" in key for key in keys)


def test_busy_hashing_slots_refuse_at_once_without_counting(store: Store) -> None:
    """While every hashing slot of the process is held, a login is refused as ``busy`` at
    once (no hash, nothing counted); when a slot is free again the same login works."""
    _anna(store)
    now = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    with hashing_slots_held():
        before = snapshot(store)
        # CPU time of this thread: refused before any hashing, whatever else the machine runs.
        started = time.thread_time()
        busy = _refused(store, PASSWORD, at=now)
        assert time.thread_time() - started < 0.5
        assert (busy.reason, busy.retry_after_s) == (LoginRefused.BUSY, passwords.BUSY_RETRY_S)
        assert str(busy.message).startswith("Gerade melden sich viele gleichzeitig an.")
        assert busy.message.en.startswith("Many logins at once right now.")
        assert snapshot(store) == before
    assert _login(store, PASSWORD, at=now).name == "anna"
