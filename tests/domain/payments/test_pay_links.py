"""Signed pay links: the token names its expiry, binds the reference, survives key rotation."""

from __future__ import annotations

import datetime as dt

from cryptography.fernet import Fernet

from domain.payments.pay_links import check_token, csrf_ok, csrf_token, pay_token, pay_url

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)
LATER = NOW + dt.timedelta(hours=72)
REF = "US-2026-000123"


def test_a_token_is_valid_for_its_reference_until_its_expiry() -> None:
    """ok before the expiry, expired from it on, invalid for any other reference."""
    token = pay_token(REF, encryption_keys=(NEW,), expires_at=LATER)
    assert check_token(REF, token, encryption_keys=(NEW,), now=NOW).ok
    expired = check_token(REF, token, encryption_keys=(NEW,), now=LATER)
    assert (expired.outcome, expired.expires_at) == ("expired", LATER)
    assert check_token("US-2026-000124", token, encryption_keys=(NEW,), now=NOW).outcome == (
        "invalid"
    )
    url = pay_url("https://b.example", REF, encryption_keys=(NEW,), expires_at=LATER)
    assert url == f"https://b.example/pay/{REF}?token={token}"


def test_changed_malformed_and_missing_tokens_are_refused() -> None:
    """Any change of expiry or signature, any other shape: invalid; none at all: missing."""
    token = pay_token(REF, encryption_keys=(NEW,), expires_at=LATER)
    expires, signature = token.split("-")
    changed = [
        f"{int(expires) + 1}-{signature}",
        f"{expires}-{signature[:-1]}{'0' if signature[-1] != '0' else '1'}",
        f"{expires}-{signature.upper()}",
        f"{expires}-{signature}x",
        "٣٣-" + signature,
        "<script>",
        token + "\n",
    ]
    for bad in changed:
        assert check_token(REF, bad, encryption_keys=(NEW,), now=NOW).outcome == "invalid", bad
    assert check_token(REF, "", encryption_keys=(NEW,), now=NOW).outcome == "missing"
    assert check_token(REF, None, encryption_keys=(NEW,), now=NOW).outcome == "missing"


def test_rotating_the_keys_keeps_old_links_until_the_old_key_goes() -> None:
    """Signed with the first key, checked with every key."""
    old_token = pay_token(REF, encryption_keys=(OLD,), expires_at=LATER)
    assert check_token(REF, old_token, encryption_keys=(NEW, OLD), now=NOW).ok
    assert not check_token(REF, old_token, encryption_keys=(NEW,), now=NOW).ok


def test_the_csrf_value_belongs_to_one_nonce_and_one_link() -> None:
    """Another nonce (browser), reference or token, or a value of another shape: refused."""
    token = pay_token(REF, encryption_keys=(NEW,), expires_at=LATER)
    value = csrf_token("n" * 32, REF, token, encryption_keys=(NEW,))
    assert csrf_ok("n" * 32, value, REF, token, encryption_keys=(NEW,))
    assert csrf_ok("n" * 32, value, REF, token, encryption_keys=(OLD, NEW))
    assert not csrf_ok("m" * 32, value, REF, token, encryption_keys=(NEW,))
    assert not csrf_ok("n" * 32, value, "US-2026-000124", token, encryption_keys=(NEW,))
    assert not csrf_ok("n" * 32, value, REF, token + "0", encryption_keys=(NEW,))
    for presented in ("", value[:-1], "ä" * 64, value.upper()):
        assert not csrf_ok("n" * 32, presented, REF, token, encryption_keys=(NEW,))
    assert not csrf_ok("", value, REF, token, encryption_keys=(NEW,))
