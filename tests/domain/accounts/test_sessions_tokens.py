"""Login sessions (absolute and idle expiry, CSRF) and API tokens (hash, expiry, revocation)."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from sqlalchemy import select

from domain.accounts.accounts import AccountError, Actor, create_account, deactivate
from domain.accounts.admin_sessions import (
    check_csrf,
    csrf_token,
    end_session,
    resolve_session,
    start_session,
)
from domain.accounts.api_tokens import authenticate_token, create_token, list_tokens, revoke_token
from domain.accounts.logins import LoginRefused, authenticate_password
from domain.accounts.passwords import ScryptParams
from store.accounts import AdminSession, ApiToken, LoginThrottle
from store.engine import Store
from store.models import Event, utcnow
from tests.conftest import TEST_ADMIN, snapshot

KDF = ScryptParams(n=2**14)
PASSWORD = "Korrekt-Pferd-Batterie-7"
T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
IDLE_S = 30 * 60


def _session(store: Store, role: str = "operator") -> str:
    create_account(store, "anna", PASSWORD, role, actor=TEST_ADMIN, kdf=KDF)
    actor = authenticate_password(store, "anna", PASSWORD, remote_addr="192.0.2.1", kdf=KDF)
    return start_session(store, actor, ttl_s=8 * 3600, remote_addr="192.0.2.1", now=T0)


def test_session_resolves_and_stores_only_a_hash(store: Store) -> None:
    """The cookie value resolves to the account; the database holds its SHA-256 only."""
    value = _session(store)
    actor = resolve_session(store, value, idle_timeout_s=IDLE_S, now=T0 + dt.timedelta(minutes=5))
    assert actor is not None
    assert (actor.name, actor.role, actor.via) == ("anna", "operator", "session")
    with store.read() as session:
        row = session.scalars(select(AdminSession)).one()
    assert row.id == hashlib.sha256(value.encode()).hexdigest()
    assert value not in str(snapshot(store))


def test_idle_session_expires(store: Store) -> None:
    """Used every 20 minutes it lives on; 30 minutes without a request end it for good."""
    value = _session(store)
    at = T0
    for _ in range(5):
        at += dt.timedelta(minutes=20)
        assert resolve_session(store, value, idle_timeout_s=IDLE_S, now=at) is not None
    at += dt.timedelta(minutes=30)
    assert resolve_session(store, value, idle_timeout_s=IDLE_S, now=at) is None
    with store.read() as session:
        assert session.scalars(select(AdminSession)).all() == []
    assert resolve_session(store, value, idle_timeout_s=IDLE_S, now=at - HOUR) is None


def test_session_expires_absolutely(store: Store) -> None:
    """Even in constant use a session ends 8 hours after the login."""
    value = _session(store)
    at = T0
    while at < T0 + 8 * HOUR - dt.timedelta(minutes=10):
        at += dt.timedelta(minutes=10)
        assert resolve_session(store, value, idle_timeout_s=IDLE_S, now=at) is not None
    assert resolve_session(store, value, idle_timeout_s=IDLE_S, now=T0 + 8 * HOUR) is None


def test_logout_deactivation_and_bad_cookies(store: Store) -> None:
    """Logged out or deactivated: no session; unknown, empty or huge cookies resolve to None."""
    value = _session(store)
    later = T0 + dt.timedelta(minutes=1)
    for bad in ("", "x", value + "x", "ä" * 50, "x" * 5000):
        assert resolve_session(store, bad, idle_timeout_s=IDLE_S, now=later) is None
    end_session(store, value)
    assert resolve_session(store, value, idle_timeout_s=IDLE_S, now=later) is None
    second = start_session(
        store, Actor("anna", "operator", account_id=1), ttl_s=3600, remote_addr=None, now=T0
    )
    create_account(store, "chef", PASSWORD, "admin", actor=TEST_ADMIN, kdf=KDF)
    deactivate(store, "anna", actor=TEST_ADMIN)
    assert resolve_session(store, second, idle_timeout_s=IDLE_S, now=later) is None


def test_csrf_token_belongs_to_its_session(store: Store) -> None:
    """The form token of one session is refused for another and when altered or empty."""
    one, other = _session(store), "another-cookie-value-0123456789"
    token = csrf_token(one)
    assert check_csrf(one, token)
    assert not check_csrf(other, token)
    assert not check_csrf(one, token[:-1] + ("0" if token[-1] != "0" else "1"))
    assert not check_csrf(one, "")
    assert not check_csrf("", csrf_token(""))


def test_token_is_stored_hashed_and_authenticates(store: Store) -> None:
    """The clear token is returned once; the row holds its hash and a short public prefix."""
    token, clear = create_token(store, "civento-sync", "viewer", expires_at=None, actor=TEST_ADMIN)
    assert clear.startswith("fcb_")
    assert len(clear) > 40
    assert token.token_hash == hashlib.sha256(clear.encode()).hexdigest()
    assert clear.startswith(token.prefix)
    assert len(token.prefix) < 16
    assert clear not in str(snapshot(store))
    actor = authenticate_token(store, clear)
    assert actor == Actor(name="civento-sync", role="viewer", via="token")
    assert actor.label == "token:civento-sync"
    [created] = [e for e in snapshot(store)["events"] if e[3] == "token.created"]
    assert created[4] == "cli:pytest"
    for wrong in ("", clear[:-1], clear + "x", "x" * 5000, "fcb_ä"):
        assert authenticate_token(store, wrong) is None


def test_token_expiry_and_revocation(store: Store) -> None:
    """An expired or revoked token is refused; revocation is audited with its reason."""
    expires = utcnow() + HOUR
    _, clear = create_token(store, "kurz", "operator", expires_at=expires, actor=TEST_ADMIN)
    assert authenticate_token(store, clear, now=expires - dt.timedelta(seconds=1)) is not None
    assert authenticate_token(store, clear, now=expires) is None
    _, other = create_token(store, "lang", "admin", expires_at=None, actor=TEST_ADMIN)
    chef = Actor("chef", "admin", via="token")
    revoke_token(store, "lang", actor=chef, reason="Token im Ticket veröffentlicht")
    assert authenticate_token(store, other) is None
    with store.read() as session:
        event = session.scalars(select(Event).where(Event.kind == "token.revoked")).one()
    assert event.actor == "token:chef"
    assert event.detail["reason"] == "Token im Ticket veröffentlicht"
    assert [t.name for t in list_tokens(store)] == ["kurz", "lang"]


def test_last_use_is_written_at_most_once_a_minute(store: Store) -> None:
    """Reads stay cheap: last_used_at moves only when a minute has passed."""
    _, clear = create_token(store, "leser", "viewer", expires_at=None, actor=TEST_ADMIN)

    def last_used() -> dt.datetime | None:
        with store.read() as session:
            return session.scalars(select(ApiToken.last_used_at)).one()

    authenticate_token(store, clear, now=T0)
    assert last_used() == T0
    authenticate_token(store, clear, now=T0 + dt.timedelta(seconds=59))
    assert last_used() == T0
    authenticate_token(store, clear, now=T0 + dt.timedelta(seconds=61))
    assert last_used() == T0 + dt.timedelta(seconds=61)


def test_token_of_a_deactivated_account_stops(store: Store) -> None:
    """A token an account made for itself ends with the account."""
    create_account(store, "chef", PASSWORD, "admin", actor=TEST_ADMIN, kdf=KDF)
    create_account(store, "anna", PASSWORD, "operator", actor=TEST_ADMIN, kdf=KDF)
    anna = authenticate_password(store, "anna", PASSWORD, remote_addr=None, kdf=KDF)
    _, clear = create_token(store, "anna-skript", "operator", expires_at=None, actor=anna)
    assert authenticate_token(store, clear) is not None
    deactivate(store, "anna", actor=TEST_ADMIN)
    assert authenticate_token(store, clear) is None


@pytest.mark.parametrize(
    ("name", "role", "office", "expires", "kind"),
    [
        ("bad name", "viewer", None, None, "invalid"),
        ("ok", "root", None, None, "invalid"),
        ("ok", "operator", "usingen-steueramt", None, "invalid"),
        ("ok", "viewer", None, dt.datetime(2020, 1, 1, tzinfo=dt.UTC), "invalid"),
        ("taken", "viewer", None, None, "exists"),
    ],
)
def test_invalid_tokens_are_refused_and_nothing_stored(
    store: Store,
    name: str,
    role: str,
    office: str | None,
    expires: dt.datetime | None,
    kind: str,
) -> None:
    """Bad names, roles, office tokens above viewer, past expiry and duplicates change nothing."""
    create_token(store, "taken", "viewer", expires_at=None, actor=TEST_ADMIN)
    before = snapshot(store)
    with pytest.raises(AccountError) as caught:
        create_token(store, name, role, expires_at=expires, actor=TEST_ADMIN, office_id=office)
    assert caught.value.kind == kind
    assert snapshot(store) == before


def test_login_forgets_expired_sessions_and_old_address_failures(store: Store) -> None:
    """Abandoned sessions and addresses whose failures are an hour old go at the next login."""
    first = _session(store)
    with pytest.raises(LoginRefused):
        authenticate_password(
            store, "anna", "falsch-falsch-1", remote_addr="203.0.113.9", now=T0, kdf=KDF
        )
    later = T0 + 9 * HOUR
    actor = authenticate_password(
        store, "anna", PASSWORD, remote_addr="192.0.2.1", now=later, kdf=KDF
    )
    second = start_session(store, actor, ttl_s=3600, remote_addr="192.0.2.1", now=later)
    with store.read() as session:
        ids = set(session.scalars(select(AdminSession.id)))
        addresses = set(session.scalars(select(LoginThrottle.remote_addr)))
    assert ids == {hashlib.sha256(second.encode()).hexdigest()}
    assert hashlib.sha256(first.encode()).hexdigest() not in ids
    assert addresses == set()
