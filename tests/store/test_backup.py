"""store.backup's refusals that need no running service: nothing to copy, nowhere to write, wrong kind."""

from __future__ import annotations

import io
import json
import sqlite3
import tarfile
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


def test_restore_refuses_a_manifest_it_cannot_read(tmp_path: Path) -> None:
    """A manifest with a malformed version or missing fields is no backup of ours."""
    url = _migrated_sqlite(tmp_path / "bridge.db")
    make_backup(url, tmp_path / "b.backup")
    with tarfile.open(tmp_path / "b.backup") as tar:
        member = tar.extractfile("manifest.json")
        assert member is not None
        manifest = json.loads(member.read())
    for name, broken, said in (
        ("version", {**manifest, "bridge_version": "latest"}, "is not a bridge backup"),
        ("fields", {k: v for k, v in manifest.items() if k != "store"}, "is not a bridge backup"),
        ("format", {**manifest, "format": 2}, "has backup format 2; this release reads 1"),
    ):
        path = tmp_path / f"{name}.backup"
        body = json.dumps(broken).encode()
        with tarfile.open(path, "w") as out:
            info = tarfile.TarInfo("manifest.json")
            info.size = len(body)
            out.addfile(info, io.BytesIO(body))
        with pytest.raises(BackupError, match=said):
            restore(f"sqlite:///{tmp_path / 'r.db'}", path, [generate_key()])
    assert not (tmp_path / "r.db").exists()
