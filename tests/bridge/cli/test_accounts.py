"""`python -m bridge accounts|tokens ...` as an operator runs it: exit codes, audit, import-env."""

from __future__ import annotations

import getpass
import subprocess
import sys
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from store.engine import Store, make_engine
from store.migrations import upgrade
from store.models import Event
from tests.conftest import ADMIN_TOKEN, READER_TOKEN, ROOT, bearer, snapshot
from tests.webhook_support import assert_problem

PASSWORD = "Korrekt-Pferd-Batterie-7"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the commands are a thin layer over domain.accounts.accounts, which is tested on
    both stores; every command here is a process start of its own."""
    url = f"sqlite:///{tmp_path / 'bridge.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture
def environ(environ: dict[str, str]) -> dict[str, str]:
    """An installation upgraded from BRIDGE_API_TOKENS: the variable is still set."""
    environ["BRIDGE_API_TOKENS"] = f"ops:reader:{READER_TOKEN},admin:admin:{ADMIN_TOKEN}"
    return environ


def cli(environ: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run `python -m bridge ARGS` with exactly this environment, feeding `stdin`."""
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        env={"PATH": "/usr/bin:/bin", **environ},
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_first_admin_and_account_commands(environ: dict[str, str], store: Store) -> None:
    """Create the first admin from the shell, refuse weak passwords (3), duplicates and the
    last admin's demotion (5), unknown accounts (4); every change is audited."""
    made = cli(
        environ,
        "accounts",
        "create",
        "chef",
        "--role",
        "admin",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == "created account chef (admin)"
    before = snapshot(store)
    weak = cli(
        environ,
        "accounts",
        "create",
        "anna",
        "--role",
        "viewer",
        "--password-stdin",
        stdin="kurz\n",
    )
    assert weak.returncode == 3
    assert "Das Passwort muss mindestens 12 Zeichen lang sein." in weak.stderr
    duplicate = cli(
        environ,
        "accounts",
        "create",
        "chef",
        "--role",
        "viewer",
        "--password-stdin",
        stdin=PASSWORD + "x\n",
    )
    assert duplicate.returncode == 5
    last = cli(environ, "accounts", "set-role", "chef", "viewer")
    assert last.returncode == 5
    assert "Das letzte aktive Admin-Konto" in last.stderr
    unknown = cli(environ, "accounts", "deactivate", "niemand")
    assert unknown.returncode == 4
    assert snapshot(store) == before
    second = cli(
        environ, "accounts", "create", "anna", "--role", "operator", "--password-stdin", "--by", "chef",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert second.returncode == 0, second.stderr
    listed = cli(environ, "accounts", "list")
    assert listed.returncode == 0
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:3] == ["anna", "operator", "active"]
    assert lines[1].split()[:3] == ["chef", "admin", "active"]
    with store.read() as session:
        created = {
            e.detail["account"]: e.actor
            for e in session.scalars(select(Event).where(Event.kind == "account.created"))
        }
    assert created == {"chef": f"cli:{getpass.getuser()}", "anna": "account:chef"}
    assert cli(environ, "accounts", "deactivate", "anna").returncode == 0
    back = cli(environ, "accounts", "reactivate", "anna", "--by", "chef")
    assert (back.returncode, back.stdout.strip()) == (0, "reactivated anna")
    assert cli(environ, "accounts", "list").stdout.splitlines()[0].split()[:3] == [
        "anna",
        "operator",
        "active",
    ]
    assert cli(environ, "accounts", "reactivate", "niemand").returncode == 4


def test_token_commands_show_the_token_once(
    environ: dict[str, str], store: Store, client: FlaskClient
) -> None:
    """tokens create prints the token (and only then); list shows its prefix; revoke stops it."""
    unknown_office = cli(environ, "tokens", "create", "x", "--office", "gibt-es-nicht")
    assert unknown_office.returncode == 4
    made = cli(environ, "tokens", "create", "civento", "--role", "operator", "--days", "30")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("fcb_")
    assert "civento (operator), expires" in made.stderr
    assert client.get("/api/v1/me", headers=bearer(token)).get_json()["role"] == "operator"
    listed = cli(environ, "tokens", "list")
    assert listed.returncode == 0
    assert token not in listed.stdout
    assert token[:12] in listed.stdout
    assert " valid " in listed.stdout
    revoked = cli(environ, "tokens", "revoke", "civento")
    assert revoked.returncode == 0
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 401
    assert cli(environ, "tokens", "revoke", "niemand").returncode == 4


def test_import_env_moves_the_old_tokens_once(
    environ: dict[str, str], store: Store, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    """BRIDGE_API_TOKENS grants nothing by itself (the app warns at start); imported, its
    tokens work with the new roles (reader -> viewer); a second import changes nothing."""
    warned = [
        r for r in caplog.get_records("setup") if r.getMessage() == "auth.legacy_api_tokens_ignored"
    ]
    assert [r.levelname for r in warned] == ["WARNING"]
    before = client.get("/api/v1/me", headers=bearer(READER_TOKEN))
    assert_problem(before, 401, "unauthorized")
    imported = cli(environ, "tokens", "import-env")
    assert imported.returncode == 0, imported.stderr
    assert "imported  ops (reader)" in imported.stdout
    assert "Remove BRIDGE_API_TOKENS" in imported.stdout
    assert client.get("/api/v1/me", headers=bearer(READER_TOKEN)).get_json()["role"] == "viewer"
    assert client.get("/api/v1/tokens", headers=bearer(ADMIN_TOKEN)).status_code == 200
    assert client.get("/api/v1/tokens", headers=bearer(READER_TOKEN)).status_code == 403
    again = cli(environ, "tokens", "import-env")
    assert again.returncode == 0
    assert "present   ops (reader)" in again.stdout
    with store.read() as session:
        events = session.scalars(select(Event).where(Event.kind == "token.imported")).all()
    assert len(events) == 2
    assert READER_TOKEN not in str(snapshot(store))


def test_accounts_limited_to_offices_and_unlocked_from_the_shell(
    environ: dict[str, str], store: Store
) -> None:
    """create --office, set-offices, unlock and tokens --limit-office; refusals change nothing."""
    from domain.accounts.accounts import get_account
    from store.accounts import AccountOffice, ApiTokenOffice

    made = cli(
        environ, "accounts", "create", "theo", "--role", "operator", "--office",
        "usingen-steueramt", "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "offices usingen-steueramt" in made.stdout
    listed = cli(environ, "accounts", "list")
    assert listed.stdout.split()[:4] == ["theo", "operator", "active", "usingen-steueramt"]
    before = snapshot(store)
    unknown = cli(environ, "accounts", "set-offices", "theo", "--office", "gibt-es-nicht")
    assert unknown.returncode == 3
    assert "Unbekannte Stelle" in unknown.stderr
    admin = cli(
        environ, "accounts", "create", "root2", "--role", "admin", "--office",
        "usingen-steueramt", "--password-stdin", stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert admin.returncode == 3
    assert cli(environ, "accounts", "set-offices", "theo").returncode == 2
    assert snapshot(store) == before
    lifted = cli(environ, "accounts", "set-offices", "theo", "--all")
    assert lifted.returncode == 0, lifted.stderr
    with store.read() as session:
        assert list(session.scalars(select(AccountOffice))) == []
    with store.session() as session:
        account = get_account(store, "theo")
        assert account is not None
        live = session.merge(account)
        live.failed_logins = 5
    assert cli(environ, "accounts", "unlock", "theo").returncode == 0
    unlocked = get_account(store, "theo")
    assert unlocked is not None
    assert unlocked.failed_logins == 0
    token = cli(
        environ, "tokens", "create", "steuer", "--role", "operator",
        "--limit-office", "usingen-steueramt",
    )  # fmt: skip
    assert token.returncode == 0, token.stderr
    assert "limited to usingen-steueramt" in token.stderr
    with store.read() as session:
        assert list(session.scalars(select(ApiTokenOffice.office_id))) == ["usingen-steueramt"]
        kinds = list(session.scalars(select(Event.kind).order_by(Event.id)))
    assert {"account.offices_set", "account.unlocked", "token.created"} <= set(kinds)
