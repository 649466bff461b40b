"""store.backup's refusals that need no running service: nothing to copy, nowhere to write, wrong kind."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from infra.crypto import generate_key
from store.backup import BackupError, make_backup, restore
from store.engine import make_engine
from store.migrations import upgrade


def _migrated_sqlite(path: Path) -> str:
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def test_backup_refuses_what_it_cannot_copy(tmp_path: Path) -> None:
    """No database file, an in-memory one, one without the schema, or a missing folder."""
    target = tmp_path / "b.backup"
    with pytest.raises(BackupError, match="does not exist"):
        make_backup(f"sqlite:///{tmp_path / 'missing.db'}", target)
    assert not (tmp_path / "missing.db").exists()  # never created by looking at it
    with pytest.raises(BackupError, match="in-memory"):
        make_backup("sqlite:///:memory:", target)
    bare = tmp_path / "bare.db"
    sqlite3.connect(bare).close()
    with pytest.raises(BackupError, match="no bridge schema"):
        make_backup(f"sqlite:///{bare}", target)
    url = _migrated_sqlite(tmp_path / "bridge.db")
    with pytest.raises(BackupError, match="is not a folder"):
        make_backup(url, tmp_path / "no-such-folder" / "b.backup")
    # Neither a backup nor a partial one or a scratch folder was left behind.
    assert [p.name for p in tmp_path.iterdir() if "backup" in p.name] == []


def test_an_empty_store_backs_up_and_restores(tmp_path: Path) -> None:
    """A store without cases has no encrypted values to check: any keys restore it."""
    url = _migrated_sqlite(tmp_path / "bridge.db")
    manifest = make_backup(url, tmp_path / "b.backup")
    assert manifest.samples == ()
    assert manifest.store == "sqlite"
    target = tmp_path / "restored.db"
    restored = restore(f"sqlite:///{target}", tmp_path / "b.backup", [generate_key()])
    assert restored.manifest == manifest
    assert not restored.needs_migrate
    with sqlite3.connect(target) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (
            manifest.schema_revision,
        )


def test_restore_refuses_another_kind_of_store(tmp_path: Path) -> None:
    """A SQLite backup does not go into PostgreSQL (checked before any connection is made)."""
    url = _migrated_sqlite(tmp_path / "bridge.db")
    make_backup(url, tmp_path / "b.backup")
    with pytest.raises(BackupError, match="is of a sqlite store but DATABASE_URL names postgresql"):
        restore("postgresql://nobody@127.0.0.1:1/none", tmp_path / "b.backup", [generate_key()])
    with pytest.raises(BackupError, match="is not a folder"):
        restore(
            f"sqlite:///{tmp_path / 'nowhere' / 'x.db'}", tmp_path / "b.backup", [generate_key()]
        )
