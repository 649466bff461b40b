"""Backups: a consistent copy of the store while the service runs, and its restore into an empty one.

A backup is one tar file: `manifest.json` (format, bridge version, schema revision, store, time,
a few encrypted values of the copy) and the database, `database.sqlite3` (SQLite's online backup
API: one read transaction, so writers go on) or `database.pgdump` (`pg_dump --format=custom`,
run in the snapshot the manifest was read in). Attachments live in the database, so the copy
holds them. The copy is still encrypted: without the BRIDGE_ENCRYPTION_KEYS it was made with
it is useless, and restore says so before it changes anything (docs/backup.md).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, make_url, text

from infra.crypto import DecryptionError, Vault
from infra.version import VERSION, newer_than_this, parse
from store import pg_tools
from store.engine import make_engine, normalise_database_url
from store.migrations import alembic_config

FORMAT = 1
MANIFEST = "manifest.json"
MEMBERS = {"sqlite": "database.sqlite3", "postgresql": "database.pgdump"}
# Encrypted values the manifest carries from each end of the two encrypted tables: restore
# decrypts them with the configured keys before it touches the store.
SAMPLES_PER_END = 3
_SAMPLES = (
    "SELECT data FROM submissions WHERE data IS NOT NULL ORDER BY id {order} LIMIT {n}",
    "SELECT content FROM attachments WHERE content IS NOT NULL ORDER BY id {order} LIMIT {n}",
)
_TIMEOUT_S = 30.0


class BackupError(Exception):
    """A backup or restore refused or failed; the message tells the operator what to do."""


@dataclass(frozen=True)
class Manifest:
    """What a backup is: which release made it, of which schema and store, and when."""

    format: int
    bridge_version: str
    schema_revision: str
    store: str
    created_at: str
    samples: tuple[str, ...]

    def describe(self) -> str:
        """One line for the operator."""
        return (
            f"{self.store} backup of {self.created_at} "
            f"(bridge {self.bridge_version}, schema revision {self.schema_revision})"
        )


@dataclass(frozen=True)
class Restored:
    """What a restore did: the backup's manifest and whether the schema still needs `migrate`."""

    manifest: Manifest
    needs_migrate: bool


def store_kind(url: str) -> str:
    """ "sqlite" or "postgresql" for a database URL."""
    backend = make_url(normalise_database_url(url)).get_backend_name()
    if backend not in MEMBERS:
        raise BackupError(f"cannot back up a {backend} database")
    return backend


def sqlite_file(url: str) -> Path:
    """The file of a SQLite URL (an in-memory database has none to back up)."""
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(database)


def unreadable_samples(samples: Sequence[str], keys: Sequence[str]) -> int:
    """How many of the sampled encrypted values no key of `keys` decrypts."""
    vault = Vault(keys)
    failed = 0
    for token in samples:
        try:
            vault.decrypt(token.encode())
        except DecryptionError:
            failed += 1
    return failed


# --- making a backup ----------------------------------------------------------------------------


def make_backup(url: str, path: Path) -> Manifest:
    """Copy the store of `url` into a new backup file `path` (never overwritten), mode 0600."""
    if path.exists():
        raise BackupError(f"{path} exists already: a backup never overwrites a file")
    if not path.parent.is_dir():
        raise BackupError(f"{path.parent} is not a folder")
    kind = store_kind(url)
    # The copy is made beside the backup (same file system, room the operator chose), not in
    # /tmp, which may be small or a tmpfs in memory.
    with tempfile.TemporaryDirectory(prefix=".bridge-backup-", dir=path.parent) as scratch:
        copy = Path(scratch) / MEMBERS[kind]
        if kind == "sqlite":
            revision, samples = _copy_sqlite(sqlite_file(url), copy)
        else:
            revision, samples = _dump_postgres(url, copy)
        manifest = Manifest(
            format=FORMAT,
            bridge_version=VERSION,
            schema_revision=revision,
            store=kind,
            created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            samples=tuple(samples),
        )
        _write_archive(path, manifest, copy)
    return manifest


def _samples(read: Any) -> list[str]:
    """The sampled encrypted values, through `read(sql) -> rows` of one snapshot."""
    found: list[str] = []
    for sql in _SAMPLES:
        for order in ("ASC", "DESC"):
            found.extend(
                bytes(row[0]).decode("ascii")
                for row in read(sql.format(order=order, n=SAMPLES_PER_END))
            )
    return list(dict.fromkeys(found))


def _copy_sqlite(source: Path, copy: Path) -> tuple[str, list[str]]:
    """SQLite's online backup of `source` into `copy`; the schema revision and samples of it."""
    if not source.is_file():
        raise BackupError(f"the SQLite database {source} does not exist")
    # mode=rw: never create the database by backing it up. One step (pages=-1) copies every
    # page in one read transaction: a consistent snapshot while writers carry on in the WAL.
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=rw", uri=True, timeout=_TIMEOUT_S)
    with closing(src), closing(sqlite3.connect(copy)) as dst:
        src.backup(dst)
        # A self-contained file: no WAL beside it.
        dst.execute("PRAGMA journal_mode = DELETE")
        if dst.execute("PRAGMA integrity_check").fetchone() != ("ok",):
            raise BackupError(f"the copy of {source} fails SQLite's integrity check")
        revision = _sqlite_revision(dst)
        if revision is None:
            raise BackupError(f"{source} has no bridge schema: nothing to back up")
        return revision, _samples(lambda sql: dst.execute(sql).fetchall())


def _sqlite_revision(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:
        return None
    return None if row is None else str(row[0])


def _dump_postgres(url: str, copy: Path) -> tuple[str, list[str]]:
    """`pg_dump --format=custom` of `url` into `copy`, in the snapshot the revision is read in."""
    pg_tools.program("pg_dump")  # before connecting: a missing program is the likelier problem
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
                revision = _postgres_revision(conn)
                if revision is None:
                    raise BackupError("the database has no bridge schema: nothing to back up")
                samples = _samples(lambda sql: conn.execute(text(sql)).all())
                with pg_tools.libpq(url) as pg:
                    pg.run(
                        "pg_dump",
                        [
                            "--format=custom",
                            "--no-owner",
                            "--no-privileges",
                            f"--snapshot={snapshot}",
                            f"--file={copy}",
                            "--dbname={uri}",
                        ],
                        what="the dump",
                    )
    except pg_tools.ToolError as exc:
        raise BackupError(str(exc)) from None
    finally:
        engine.dispose()
    return revision, samples


def _postgres_revision(conn: Connection) -> str | None:
    exists = conn.execute(text("SELECT to_regclass('alembic_version') IS NOT NULL")).scalar_one()
    if not exists:
        return None
    found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return None if found is None else str(found)


def _write_archive(path: Path, manifest: Manifest, copy: Path) -> None:
    """The tar of manifest and copy, written beside `path`, synced, then renamed to it."""
    partial = path.with_name(f".{path.name}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as out:
            with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
                body = json.dumps(asdict(manifest), indent=2).encode()
                info = tarfile.TarInfo(MANIFEST)
                info.size, info.mode, info.mtime = len(body), 0o600, int(time.time())
                tar.addfile(info, io.BytesIO(body))
                tar.add(copy, arcname=copy.name, recursive=False, filter=_private)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _private(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mode, info.uid, info.gid, info.uname, info.gname = 0o600, 0, 0, "", ""
    return info


# --- reading and restoring ----------------------------------------------------------------------


@contextmanager
def opened(path: Path) -> Iterator[tuple[Manifest, tarfile.TarFile]]:
    """The manifest of backup `path` and its tar (members are read, never extracted by name)."""
    try:
        # Opened here, closed by the `with` below: only the opening says "not a backup".
        tar = tarfile.open(path, mode="r:")  # noqa: SIM115
    except (OSError, tarfile.TarError) as exc:
        raise BackupError(f"{path} is not a bridge backup ({exc})") from None
    with tar:
        try:
            raw = json.loads(_member(tar, MANIFEST).read())
            if raw.get("format") != FORMAT:
                raise BackupError(
                    f"{path} has backup format {raw.get('format')!r}; this release reads {FORMAT}"
                )
            raw["samples"] = tuple(raw["samples"])
            manifest = Manifest(**raw)
            parse(manifest.bridge_version)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BackupError(f"{path} is not a bridge backup (manifest: {exc})") from None
        yield manifest, tar


def _member(tar: tarfile.TarFile, name: str) -> IO[bytes]:
    try:
        info = tar.getmember(name)
    except KeyError:
        raise BackupError(f"the backup lacks {name}") from None
    found = tar.extractfile(info) if info.isfile() else None
    if found is None:
        raise BackupError(f"the backup's {name} is not a file")
    return found


def check_restorable(manifest: Manifest, url: str, keys: Sequence[str]) -> None:
    """Refuse a backup of a newer release, of another store kind, or that the keys cannot read."""
    if newer_than_this(manifest.bridge_version) or not _known_revision(manifest.schema_revision):
        raise BackupError(
            f"the backup was made by bridge {manifest.bridge_version} (schema revision "
            f"{manifest.schema_revision}), newer than this bridge {VERSION}: restore it with "
            "that release or a later one"
        )
    kind = store_kind(url)
    if manifest.store != kind:
        raise BackupError(
            f"the backup is of a {manifest.store} store but DATABASE_URL names {kind}: "
            f"restore it into {manifest.store}"
        )
    failed = unreadable_samples(manifest.samples, keys)
    if failed:
        raise BackupError(
            f"the data in this backup cannot be read with BRIDGE_ENCRYPTION_KEYS: {failed} of "
            f"{len(manifest.samples)} sampled values decrypt with no configured key. Set the keys "
            "the backup was made with (all of them, if they were rotated); nothing was restored"
        )


def _known_revision(revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False


def _head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def restore(url: str, path: Path, keys: Sequence[str], *, force: bool = False) -> Restored:
    """Bring backup `path` back into the store of `url`, which must hold no rows unless `force`.

    Everything is checked before the store is touched: the backup's release, store kind, and
    that `keys` read its data. The service must be stopped (docs/backup.md).
    """
    with opened(path) as (manifest, tar):
        check_restorable(manifest, url, keys)
        # SQLite's copy is unpacked beside its target, where the database will need the room.
        near = sqlite_file(url).parent if manifest.store == "sqlite" else None
        if near is not None and not near.is_dir():
            raise BackupError(f"{near} is not a folder")
        with tempfile.TemporaryDirectory(prefix=".bridge-restore-", dir=near) as scratch:
            copy = Path(scratch) / MEMBERS[manifest.store]
            with copy.open("wb") as out:
                shutil.copyfileobj(_member(tar, MEMBERS[manifest.store]), out)
            if manifest.store == "sqlite":
                _restore_sqlite(copy, sqlite_file(url), force=force)
            else:
                _restore_postgres(copy, url, force=force)
    return Restored(manifest, needs_migrate=manifest.schema_revision != _head())


def _refuse_rows(counts: dict[str, int], where: str) -> None:
    held = {table: n for table, n in counts.items() if n and table != "alembic_version"}
    if held:
        listed = ", ".join(f"{table} {n}" for table, n in sorted(held.items()))
        raise BackupError(
            f"{where} is not empty ({listed} rows): restore into an empty store, or pass "
            "--force to replace everything in it with the backup"
        )


def _restore_sqlite(copy: Path, target: Path, *, force: bool) -> None:
    """Write the copy over `target` through SQLite's backup API (its WAL stays consistent)."""
    if not target.exists():
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    with (
        closing(sqlite3.connect(copy)) as src,
        closing(sqlite3.connect(target, timeout=_TIMEOUT_S)) as dst,
    ):
        if not force:
            tables = [
                row[0]
                for row in dst.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%'"
                )
            ]
            counts = {t: dst.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}  # noqa: S608
            _refuse_rows(counts, str(target))
        src.backup(dst)
        if _sqlite_revision(dst) is None:
            raise BackupError(f"the restored {target} has no schema revision")


def _restore_postgres(copy: Path, url: str, *, force: bool) -> None:
    """Drop the store's tables and load the dump, in one transaction (psql --single-transaction)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            tables = [
                str(t)
                for t in conn.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
                ).scalars()
            ]
            if not force:
                counts = {
                    t: int(conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar_one())  # noqa: S608
                    for t in tables
                }
                _refuse_rows(counts, pg_tools.shown(url))
            schema = str(conn.execute(text("SELECT current_schema()")).scalar_one())
    finally:
        engine.dispose()
    drops = "".join(f'DROP TABLE IF EXISTS "{schema}"."{t}" CASCADE;\n' for t in tables)
    try:
        with pg_tools.libpq(url) as pg:
            script = copy.with_suffix(".sql")
            pg.run(
                "pg_restore",
                ["--no-owner", "--no-privileges", f"--file={script}", str(copy)],
                what="reading the dump",
            )
            clear = copy.with_name("clear.sql")
            clear.write_text(drops, encoding="utf-8")
            pg.run(
                "psql",
                [
                    "--no-psqlrc",
                    "--quiet",
                    "--set=ON_ERROR_STOP=1",
                    "--single-transaction",
                    f"--file={clear}",
                    f"--file={script}",
                    "--dbname={uri}",
                ],
                what="the restore (nothing was changed)",
            )
    except pg_tools.ToolError as exc:
        raise BackupError(str(exc)) from None
