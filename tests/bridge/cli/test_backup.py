"""`backup` and `restore` as an operator runs them: the round trip and every refusal, both stores."""

from __future__ import annotations

import io
import json
import stat
import tarfile
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from flask.testing import FlaskClient
from sqlalchemy import make_url

from infra.crypto import generate_key
from store.engine import Store
from store.migrations import alembic_config
from tests.conftest import base_environ, bridge_cli, snapshot
from tests.factories import PDF, dog, flatten, traffic
from tests.webhook_support import FilePart, form_body, multipart_body, post


def _two_cases(client: FlaskClient) -> None:
    """A dog registration and a traffic order with a site plan (an encrypted attachment)."""
    assert post(client, "dog-registration", form_body(dog())).status_code == 202
    body, content_type = multipart_body(
        flatten(traffic(reason="construction")),
        [FilePart("site_plan", "Lageplan.pdf", "application/pdf", PDF)],
    )
    assert post(client, "traffic-order", body, content_type).status_code == 202


@pytest.fixture
def backup_file(client: FlaskClient, environ: dict[str, str], tmp_path: Path) -> Path:
    """A backup of a store holding two cases, made with the CLI."""
    _two_cases(client)
    path = tmp_path / "bridge.backup"
    result = bridge_cli(environ, "backup", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"wrote {path}: ")
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert f"schema revision {head}" in result.stdout
    return path


def _is_empty(url: str) -> bool:
    """True when the database has no tables (SQLite: no file at all)."""
    if url.startswith("sqlite"):
        return not Path(str(make_url(url).database)).exists()
    probe = Store.from_url(url)
    try:
        with probe.engine.connect() as conn:
            return not probe.engine.dialect.get_table_names(conn)
    finally:
        probe.dispose()


def test_restore_brings_back_every_row(
    backup_file: Path, store: Store, environ: dict[str, str], fresh_database_url: str
) -> None:
    """The restored store holds exactly what the backed-up one held; the file is private."""
    assert stat.S_IMODE(backup_file.stat().st_mode) == 0o600
    result = bridge_cli(
        {**environ, "DATABASE_URL": fresh_database_url}, "restore", str(backup_file)
    )
    assert result.returncode == 0, result.stderr
    assert "restored " in result.stdout
    assert "migrate" not in result.stdout  # the backup is at this release's schema
    restored = Store.from_url(fresh_database_url)
    try:
        assert snapshot(restored) == snapshot(store)
    finally:
        restored.dispose()


def test_restore_with_other_keys_says_the_data_cannot_be_read(
    backup_file: Path, environ: dict[str, str], fresh_database_url: str
) -> None:
    """Keys that do not read the backup: a clear refusal, and the target is left untouched."""
    env = {**environ, "DATABASE_URL": fresh_database_url, "BRIDGE_ENCRYPTION_KEYS": generate_key()}
    result = bridge_cli(env, "restore", str(backup_file))
    assert result.returncode == 1
    assert "cannot be read with BRIDGE_ENCRYPTION_KEYS" in result.stderr
    assert "nothing was restored" in result.stderr
    assert _is_empty(fresh_database_url)


def test_restore_refuses_a_store_with_data_unless_forced(
    backup_file: Path, client: FlaskClient, store: Store, environ: dict[str, str]
) -> None:
    """A store holding cases is not overwritten by mistake; --force goes back to the backup."""
    assert post(client, "dog-registration", form_body(dog())).status_code == 202
    before = snapshot(store)
    refused = bridge_cli(environ, "restore", str(backup_file))
    assert refused.returncode == 1
    assert "is not empty" in refused.stderr
    assert "submissions 3 rows" in refused.stderr
    assert "--force" in refused.stderr
    assert snapshot(store) == before
    store.dispose()  # the web process is stopped before a restore
    forced = bridge_cli(environ, "restore", "--force", str(backup_file))
    assert forced.returncode == 0, forced.stderr
    assert len(snapshot(store)["submissions"]) == 2


def test_backup_never_overwrites_a_file(backup_file: Path, environ: dict[str, str]) -> None:
    """A second backup to the same name is refused and the first stays as it was."""
    first = backup_file.read_bytes()
    result = bridge_cli(environ, "backup", str(backup_file))
    assert result.returncode == 1
    assert "exists already" in result.stderr
    assert backup_file.read_bytes() == first


def _with_manifest(path: Path, target: Path, **changes: str) -> None:
    """A copy of backup `path` at `target` whose manifest has `changes`."""
    with tarfile.open(path) as tar, tarfile.open(target, "w") as out:
        for member in tar.getmembers():
            content = tar.extractfile(member)
            assert content is not None
            data = content.read()
            if member.name == "manifest.json":
                data = json.dumps({**json.loads(data), **changes}).encode()
                member.size = len(data)
            out.addfile(member, io.BytesIO(data))


@pytest.mark.parametrize(
    ("changes", "said"),
    [
        ({"bridge_version": "99.0.0"}, "made by bridge 99.0.0"),
        ({"schema_revision": "0999"}, "schema revision 0999"),
    ],
)
def test_restore_refuses_a_backup_of_a_newer_release(
    backup_file: Path,
    environ: dict[str, str],
    fresh_database_url: str,
    tmp_path: Path,
    changes: dict[str, str],
    said: str,
) -> None:
    """A backup of a later release (or of a schema this code does not know) is not restored."""
    newer = tmp_path / "newer.backup"
    _with_manifest(backup_file, newer, **changes)
    result = bridge_cli({**environ, "DATABASE_URL": fresh_database_url}, "restore", str(newer))
    assert result.returncode == 1
    assert said in result.stderr
    assert "newer than this bridge" in result.stderr
    assert _is_empty(fresh_database_url)


def test_restore_refuses_a_file_that_is_no_backup(
    environ: dict[str, str], fresh_database_url: str, tmp_path: Path
) -> None:
    """Any other file is named as not a backup."""
    other = tmp_path / "notes.txt"
    other.write_text("not a backup\n", encoding="utf-8")
    result = bridge_cli({**environ, "DATABASE_URL": fresh_database_url}, "restore", str(other))
    assert result.returncode == 1
    assert f"{other} is not a bridge backup" in result.stderr
    assert _is_empty(fresh_database_url)


@pytest.mark.postgres
def test_postgres_backup_keeps_the_password_out_of_sight(
    postgres_url: str | None, redis_url: str, tmp_path: Path
) -> None:
    """A password in DATABASE_URL is neither on pg_dump's command line nor in any message."""
    if postgres_url is None:
        pytest.skip("PostgreSQL not configured (set TEST_POSTGRES_URL; required in CI)")
    environ = base_environ(postgres_url, redis_url)
    url = postgres_url
    # The trust-authenticated test server ignores it; what matters is where it shows.
    password = "pw-Zx81:qq\\s"
    with_password = make_url(url).set(password=password).render_as_string(hide_password=False)
    good = bridge_cli({**environ, "DATABASE_URL": with_password}, "backup", str(tmp_path / "a"))
    assert good.returncode == 0, good.stderr
    missing = make_url(with_password).set(database="no_such_database_here")
    bad = bridge_cli(
        {**environ, "DATABASE_URL": missing.render_as_string(hide_password=False)},
        "backup",
        str(tmp_path / "b"),
    )
    assert bad.returncode == 1
    assert "no_such_database_here" in bad.stderr
    for result in (good, bad):
        assert password not in result.stdout + result.stderr
    no_tools = tmp_path / "bin"
    no_tools.mkdir()
    result = bridge_cli({**environ, "PATH": str(no_tools)}, "backup", str(tmp_path / "c"))
    assert result.returncode == 1
    assert "pg_dump is not installed or not on PATH" in result.stderr
    assert "apt-get install postgresql-client" in result.stderr
