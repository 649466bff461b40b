"""Fixtures: settings -> app -> client, over real stores (SQLite and PostgreSQL) and real Redis."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import hypothesis
import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import text

from bridge import create_app
from demo_backoffice.contract import RECORDER
from domain.accounts import passwords
from domain.accounts.accounts import Actor, Role
from domain.accounts.api_tokens import create_token
from domain.settings import Settings
from harness.postgres import create_database, drop_database, scratch_database, unique_name
from harness.redis_servers import RedisServer, redis_binary
from infra.crypto import generate_key
from store.engine import Store, make_engine, normalise_database_url
from store.migrations import upgrade

# Property tests run beside a loaded suite (two xdist workers, servers, browsers): hypothesis's
# per-example deadline would report a slow machine as a failure. What they test is behaviour.
hypothesis.settings.register_profile("bridge", deadline=None)
hypothesis.settings.load_profile("bridge")

ROOT = Path(__file__).resolve().parent.parent
FORMCYCLE_SECRET = "formcycle-test-secret-0123456789abcdef"
SIGNING_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OFFICE_SIGNING_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
EPAY21_PASSWORD = "demo-basic-passwort"  # the simulator's published demo credential
# Values of the retired BRIDGE_API_TOKENS, for the tests of `tokens import-env` and its parsing.
READER_TOKEN = "reader-token-0123456789abcdef0123456789"
ADMIN_TOKEN = "admin-token-0123456789abcdef0123456789ab"
# Who creates the tests' accounts and tokens (as `python -m bridge` run by a shell user would).
TEST_ADMIN = Actor(name="pytest", role=Role.ADMIN, via="cli")
TABLES = (
    "bulk_replay_items",
    "bulk_replays",
    "digests_sent",
    "events",
    "attachments",
    "deliveries",
    "payment_callbacks",
    "payments",
    "submissions",
    "api_token_offices",
    "api_tokens",
    "account_offices",
    "password_links",
    "admin_sessions",
    "login_throttles",
    "accounts",
)


@pytest.fixture(autouse=True)
def delivery_contract() -> Iterator[None]:
    """Fail the test if a demo back office received a document off the published contract.

    The demo back office checks every JSON envelope against /schemas/deliveries/ (from the
    bridge's generator) and every XML document against the XSD. Autouse fixtures are torn down
    last, so the test's back offices have stopped and every arrival is counted.
    """
    yield
    found = RECORDER.take()
    if found:
        pytest.fail(
            "documents off the published delivery contract:\n"
            + "\n".join(v.describe() for v in found),
            pytrace=False,
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A violation recorded outside any test (e.g. a session fixture's office) fails the run."""
    found = RECORDER.take()
    if found:
        print("\ndocuments off the published delivery contract:")
        for violation in found:
            print(violation.describe())
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """A Redis for this test process: a private redis-server when installed, else REDIS_URL.

    A private server keeps parallel test runs (and anything else on the machine) from
    flushing each other's queues; without the binary the reachable Redis is shared.
    """
    if redis_binary() is None:
        url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
        try:
            Redis.from_url(url, socket_connect_timeout=1).ping()
        except RedisError:
            pytest.fail(
                "no Redis reachable and redis-server is not installed "
                "(sudo apt-get install -y redis-server)"
            )
        yield url.rsplit("/", 1)[0]
        return
    server = RedisServer().start()
    try:
        yield server.base_url
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: str, worker_id: str) -> Iterator[str]:
    """A Redis database of this test worker's own, flushed before and after each test."""
    index = 8 + (int(worker_id[2:]) if worker_id.startswith("gw") else 0)
    url = f"{redis_server}/{index}"
    client = Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


def _postgres_admin_url() -> str | None:
    url = os.environ.get("TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail(
                "CI requires TEST_POSTGRES_URL (PostgreSQL on 127.0.0.1:5432, database test)"
            )
        return None
    return normalise_database_url(url)


@pytest.fixture(scope="session")
def postgres_url(worker_id: str) -> Iterator[str | None]:
    """A fresh PostgreSQL database for this test worker, migrated once; None when not configured."""
    admin_url = _postgres_admin_url()
    if admin_url is None:
        yield None
        return
    name = unique_name(f"bridge_test_{worker_id}_")
    try:
        url = create_database(admin_url, name)
    except Exception as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at TEST_POSTGRES_URL is not usable: {exc}")
        yield None
        return
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    drop_database(admin_url, name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each store test runs on SQLite and on PostgreSQL (skipped only outside CI without it)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'bridge.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    pg: str | None = request.getfixturevalue("postgres_url")
    if pg is None:
        pytest.skip("PostgreSQL not configured (set TEST_POSTGRES_URL; required in CI)")
    engine = make_engine(pg)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    yield pg


@pytest.fixture
def fresh_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A second database of `database_url`'s kind that does not exist yet (SQLite: no file;
    PostgreSQL: an empty database of its own, dropped afterwards), e.g. to restore into."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    admin_url = _postgres_admin_url()
    assert admin_url is not None
    with scratch_database(admin_url, "bridge_fresh_") as url:
        yield url


def base_environ(database_url: str, redis_url: str, **extra: str) -> dict[str, str]:
    """The environment of a test service (keys and secrets of its own)."""
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "BRIDGE_CONFIG": str(ROOT / "config" / "routing.toml"),
        "BRIDGE_ENCRYPTION_KEYS": generate_key(),
        "BRIDGE_SECRET_FORMCYCLE": FORMCYCLE_SECRET,
        "BRIDGE_SECRET_FORMCYCLE_SIGNING": SIGNING_SECRET,
        "BRIDGE_SECRET_OFFICE_SIGNING": OFFICE_SIGNING_SECRET,
        "BRIDGE_SECRET_EPAY21_PASSWORD": EPAY21_PASSWORD,
        # The cheapest scrypt the settings allow: tests log in often; production uses 2^17.
        "BRIDGE_PASSWORD_SCRYPT_N": "16384",
        "BRIDGE_MAX_BODY_BYTES": str(2 * 1024 * 1024),
        "BRIDGE_MAX_FILE_BYTES": str(512 * 1024),
    }
    env.update(extra)
    return env


@pytest.fixture
def environ(database_url: str, redis_url: str) -> dict[str, str]:
    """The environment the settings are built from; tests may change it before `settings`."""
    return base_environ(database_url, redis_url)


@pytest.fixture
def settings(environ: dict[str, str]) -> Settings:
    """Settings built from the test environment, exactly as in production."""
    return Settings.from_env(environ)


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    """The application under test."""
    app = create_app(settings)
    app.config["TESTING"] = True
    yield app
    app.extensions["bridge"].store.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client for the app."""
    return app.test_client()


@pytest.fixture
def store(app: Flask) -> Store:
    """The app's store, for reading what a request left behind."""
    result: Store = app.extensions["bridge"].store
    return result


def bridge_cli(environ: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `python -m bridge ARGS` as an operator would, with exactly this environment."""
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        env={"PATH": "/usr/bin:/bin", **environ},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@contextmanager
def hashing_slots_held() -> Iterator[None]:
    """Other threads hold every password-hashing slot of this process until the block ends."""
    holding = threading.Barrier(passwords.SLOTS + 1)
    release = threading.Event()

    def hold() -> None:
        with passwords.hashing_slot():
            holding.wait()
            release.wait(30)

    holders = [threading.Thread(target=hold) for _ in range(passwords.SLOTS)]
    for thread in holders:
        thread.start()
    holding.wait()
    try:
        yield
    finally:
        release.set()
        for thread in holders:
            thread.join(30)


def snapshot(store: Store) -> dict[str, Any]:
    """Row counts and contents digest of every table: equal snapshots mean an unchanged database."""
    out: dict[str, Any] = {}
    with store.engine.connect() as conn:
        for table in TABLES:
            rows = conn.execute(text(f"SELECT * FROM {table} ORDER BY 1")).all()  # noqa: S608
            out[table] = [tuple(r) for r in rows]
    return out


@pytest.fixture
def auth_headers() -> dict[str, str]:
    """The Formcycle sender's shared-secret header."""
    return {"X-Bridge-Secret": FORMCYCLE_SECRET}


class MakeToken(Protocol):
    """Creates an API token in the test store and returns the clear token."""

    def __call__(
        self,
        role: str = ...,
        *,
        name: str | None = ...,
        office_id: str | None = ...,
        expires_at: dt.datetime | None = ...,
    ) -> str:
        """Create the token."""
        ...


@pytest.fixture
def api_token(store: Store) -> MakeToken:
    """Make API tokens with a role (or of an office) in the app's store, as the CLI would."""
    numbers = itertools.count(1)

    def make(
        role: str = Role.VIEWER,
        *,
        name: str | None = None,
        office_id: str | None = None,
        expires_at: dt.datetime | None = None,
    ) -> str:
        _, clear = create_token(
            store,
            name or f"test-{role}-{next(numbers)}",
            role,
            expires_at=expires_at,
            actor=TEST_ADMIN,
            office_id=office_id,
        )
        return clear

    return make


def bearer(token: str) -> dict[str, str]:
    """The Authorization header of a bearer token."""
    return {"Authorization": f"Bearer {token}"}
