"""Office scopes and password links in the domain: who is limited, what is refused, on both stores."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from domain.accounts.accounts import (
    AccountError,
    Actor,
    create_account,
    get_account,
    set_role,
)
from domain.accounts.admin_sessions import resolve_session, start_session
from domain.accounts.api_tokens import authenticate_token, create_token
from domain.accounts.logins import LoginRefused, authenticate_password
from domain.accounts.password_links import create_link, holder_of, use_link
from domain.accounts.passwords import ScryptParams
from domain.accounts.scopes import EVERYTHING, Scope, scope_of, set_account_offices
from store.engine import Store
from tests.conftest import TEST_ADMIN, snapshot

KDF = ScryptParams(n=2**14)
OFFICES = ("usingen-steueramt", "neu-anspach-ordnungsamt")
PASSWORD = "Korrekt-Pferd-Batterie-7"
TAX = frozenset({"usingen-steueramt"})


def test_who_is_limited() -> None:
    """Admins never; an office's token to its office; staff to their offices; else nobody."""
    assert scope_of(Actor("a", "admin", offices=TAX)) == EVERYTHING
    assert scope_of(Actor("t", "viewer", via="token", office_id="x")) == Scope(frozenset({"x"}))
    assert scope_of(Actor("o", "operator", offices=TAX)) == Scope(TAX)
    assert scope_of(Actor("o", "operator")) == EVERYTHING
    assert not Scope(TAX).covers("neu-anspach-ordnungsamt")
    assert Scope(TAX).covers("usingen-steueramt")


def test_limits_are_refused_where_they_make_no_sense(store: Store) -> None:
    """An admin is never limited; no office at all or an unknown one is refused; nothing changes."""
    create_account(store, "anna", PASSWORD, "operator", actor=TEST_ADMIN, kdf=KDF, offices=TAX)
    before = snapshot(store)
    refusals: list[Callable[[], object]] = [
        lambda: set_role(store, "anna", "admin", actor=TEST_ADMIN),
        lambda: set_account_offices(store, "anna", [], known=OFFICES, actor=TEST_ADMIN),
        lambda: set_account_offices(store, "anna", ["nirgends"], known=OFFICES, actor=TEST_ADMIN),
        lambda: create_account(
            store, "boss", PASSWORD, "admin", actor=TEST_ADMIN, kdf=KDF, offices=TAX
        ),
        lambda: create_token(store, "t", "admin", expires_at=None, actor=TEST_ADMIN, offices=TAX),
    ]
    for refuse in refusals:
        with pytest.raises(AccountError) as refused:
            refuse()
        assert refused.value.kind == "invalid"
    assert snapshot(store) == before


def test_sessions_and_tokens_carry_the_limit(store: Store) -> None:
    """A session and a token of a limited account or token act within it; lifting it applies
    to the open session at once."""
    account = create_account(
        store, "anna", PASSWORD, "operator", actor=TEST_ADMIN, kdf=KDF, offices=TAX
    )
    actor = Actor("anna", "operator", account_id=account.id)
    cookie = start_session(store, actor, ttl_s=3600, remote_addr=None)
    found = resolve_session(store, cookie, idle_timeout_s=600)
    assert found is not None
    assert found.offices == TAX
    set_account_offices(store, "anna", None, known=OFFICES, actor=TEST_ADMIN)
    found = resolve_session(store, cookie, idle_timeout_s=600)
    assert found is not None
    assert found.offices is None
    _, clear = create_token(
        store, "skript", "operator", expires_at=None, actor=TEST_ADMIN, offices=TAX
    )
    token_actor = authenticate_token(store, clear)
    assert token_actor is not None
    assert token_actor.offices == TAX


def test_a_password_link_works_once_and_not_after_expiry(store: Store) -> None:
    """No login before the password is set; the link sets it once; an old link is dead."""
    create_account(store, "anna", None, "viewer", actor=TEST_ADMIN, kdf=KDF)
    with pytest.raises(LoginRefused):
        authenticate_password(store, "anna", PASSWORD, remote_addr=None, kdf=KDF)
    old, _ = create_link(store, "anna", actor=TEST_ADMIN)
    clear, expires = create_link(store, "anna", actor=TEST_ADMIN)
    assert holder_of(store, old) is None  # the newer link replaced it
    assert holder_of(store, clear, now=expires) is None  # expired
    with pytest.raises(AccountError) as weak:
        use_link(store, clear, "kurz", kdf=KDF)
    assert weak.value.kind == "invalid"
    assert use_link(store, clear, PASSWORD, kdf=KDF) == "anna"
    with pytest.raises(AccountError) as again:
        use_link(store, clear, PASSWORD, kdf=KDF)
    assert again.value.kind == "unknown"
    assert authenticate_password(store, "anna", PASSWORD, remote_addr=None, kdf=KDF).name == "anna"
    account = get_account(store, "anna")
    assert account is not None
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=100)
    stale, _ = create_link(store, "anna", actor=TEST_ADMIN, now=past)
    assert holder_of(store, stale) is None
