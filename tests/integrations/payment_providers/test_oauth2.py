"""OAuth2 client credentials: one token for many calls and instances, renewed on expiry and 401."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from demo_payments import DemoPayments
from integrations.payment_providers import ProviderRefused
from integrations.payment_providers.oauth2 import TokenCache, TokenKey
from tests.integrations.payment_providers.conftest import (
    AGS_NEU_ANSPACH,
    basic_options,
    control,
    oauth2_options,
    order,
    provider,
)


def test_many_calls_and_instances_share_one_token(simulator: DemoPayments) -> None:
    """Ten calls through three plugin instances (as jobs and requests build them): one token."""
    instances = [provider(oauth2_options(simulator), provider_id="govconnect") for _ in range(3)]
    created = instances[0].create(order())
    for i in range(9):
        instances[i % 3].status(
            order().payment_id, created.transaction_id, municipality_ags=AGS_NEU_ANSPACH
        )
    assert control(simulator, "tokens", "GET")["issued"] == 1


def test_concurrent_first_calls_fetch_one_token(simulator: DemoPayments) -> None:
    """Eight threads starting at once with an empty cache still ask for one token."""
    pid = "e" * 32
    tx = provider(basic_options(simulator)).create(order(pid)).transaction_id
    errors: list[BaseException] = []

    def call() -> None:
        try:
            provider(oauth2_options(simulator)).status(pid, tx, municipality_ags=AGS_NEU_ANSPACH)
        except BaseException as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert control(simulator, "tokens", "GET")["issued"] == 1


def test_token_is_renewed_shortly_before_it_expires(
    start_simulator: Callable[..., DemoPayments],
) -> None:
    """With a 1 s lifetime the token is reused within it and renewed after it."""
    demo = start_simulator(token_expires_in=1.0)
    govconnect = provider(oauth2_options(demo))
    created = govconnect.create(order())
    govconnect.status(order().payment_id, created.transaction_id, municipality_ags=AGS_NEU_ANSPACH)
    assert control(demo, "tokens", "GET")["issued"] == 1
    time.sleep(1.0)
    govconnect.status(order().payment_id, created.transaction_id, municipality_ags=AGS_NEU_ANSPACH)
    assert control(demo, "tokens", "GET")["issued"] == 2


def test_a_revoked_token_is_renewed_once_on_401(simulator: DemoPayments) -> None:
    """The provider forgets its tokens (restart): the next call gets a 401, renews, succeeds."""
    govconnect = provider(oauth2_options(simulator))
    created = govconnect.create(order())
    control(simulator, "revoke-tokens")
    status = govconnect.status(
        order().payment_id, created.transaction_id, municipality_ags=AGS_NEU_ANSPACH
    )
    assert status.status == "INITIAL"
    assert control(simulator, "tokens", "GET")["issued"] == 2


def test_wrong_client_secret_is_refused_without_looping(simulator: DemoPayments) -> None:
    """A client the token endpoint refuses: ProviderRefused (401), no API call made."""
    govconnect = provider(oauth2_options(simulator), secrets={"GOVCONNECT_CLIENT_SECRET": "falsch"})
    with pytest.raises(ProviderRefused) as refused:
        govconnect.create(order())
    assert refused.value.status_code == 401
    listing = control(simulator, "transactions", "GET")
    assert listing["count"] == 0
    assert "creates" not in listing["counters"]


def test_api_refusing_fresh_tokens_is_refused_after_one_retry(
    start_simulator: Callable[..., DemoPayments],
) -> None:
    """An API that accepts only Basic (misconfigured provider): 401 twice, then refused."""
    demo = start_simulator(auth="basic")
    govconnect = provider(oauth2_options(demo))
    with pytest.raises(ProviderRefused) as refused:
        govconnect.create(order())
    assert refused.value.status_code == 401
    assert control(demo, "tokens", "GET")["issued"] == 2
    assert control(demo, "transactions", "GET")["counters"]["unauthorized"] == 2


def test_token_form_client_auth(simulator: DemoPayments) -> None:
    """client_auth = "post" sends the client's id and secret as form fields."""
    govconnect = provider(oauth2_options(simulator, client_auth="post", scope="payment"))
    assert govconnect.create(order()).status == "INITIAL"
    assert control(simulator, "tokens", "GET")["issued"] == 1


def test_cache_renews_before_expiry_and_keeps_a_newer_token() -> None:
    """The cache margin (a tenth of the life, at most 30 s) and invalidate() semantics."""
    now = [1000.0]
    cache = TokenCache(clock=lambda: now[0])
    key = TokenKey("https://payment.govconnect.de/oauth2/token", "bridge", None)
    fetched: list[str] = []

    def fetch() -> tuple[str, float | None]:
        fetched.append(f"t{len(fetched)}")
        return fetched[-1], 600.0

    assert cache.get(key, fetch) == "t0"
    now[0] += 569.0  # 600 - 30 s margin = 570
    assert cache.get(key, fetch) == "t0"
    now[0] += 1.0
    assert cache.get(key, fetch) == "t1"
    cache.invalidate(key, "t0")  # an old token refused late must not drop the new one
    assert cache.get(key, fetch) == "t1"
    cache.invalidate(key, "t1")
    assert cache.get(key, fetch) == "t2"


def test_a_slow_token_endpoint_does_not_block_another_provider() -> None:
    """While one client's fetch hangs, another client's token is fetched and served."""
    cache = TokenCache()
    slow_key = TokenKey("https://slow.example/token", "a", None)
    fast_key = TokenKey("https://fast.example/token", "b", None)
    release = threading.Event()
    started = threading.Event()

    def slow_fetch() -> tuple[str, float | None]:
        started.set()
        release.wait(5)
        return "slow", 60.0

    thread = threading.Thread(target=cache.get, args=(slow_key, slow_fetch))
    thread.start()
    assert started.wait(5)
    try:
        began = time.monotonic()
        assert cache.get(fast_key, lambda: ("fast", 60.0)) == "fast"
        assert time.monotonic() - began < 1.0  # not waiting for the slow fetch
    finally:
        release.set()
        thread.join(5)
    assert cache.get(slow_key, lambda: ("again", 60.0)) == "slow"
