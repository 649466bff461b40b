"""Schema migrations (Alembic), run programmatically against the store's engine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config() -> AlembicConfig:
    """An Alembic configuration pointing at the project's migrations folder."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


@dataclass(frozen=True)
class Upgrade:
    """What an upgrade did: the schema revision before (None: no schema yet) and after."""

    before: str | None
    after: str | None

    def describe(self) -> str:
        """One line for the operator: created, upgraded from X to Y, or already up to date."""
        if self.before == self.after:
            return f"database schema is up to date (revision {self.after})"
        if self.before is None:
            return f"created the database schema at revision {self.after}"
        return f"upgraded the database schema from revision {self.before} to {self.after}"


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> Upgrade:
    """Bring the database schema up to `revision` (idempotent) and say what changed."""
    cfg = alembic_config()
    with engine.begin() as connection:
        before = _current(connection)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
        return Upgrade(before, _current(connection))


@dataclass(frozen=True)
class Downgrade:
    """What a downgrade did: the schema revision before and after."""

    before: str | None
    after: str | None

    def describe(self) -> str:
        """One line for the operator."""
        if self.before == self.after:
            return f"database schema is already at revision {self.after}"
        if self.after is None:
            return f"removed the database schema (it was at revision {self.before})"
        return f"downgraded the database schema from revision {self.before} to {self.after}"


def downgrade(engine: Engine, revision: str) -> Downgrade:
    """Take the schema back to `revision` with the migrations' downgrades (alembic's errors pass).

    A downgrade drops what the later revisions added, data included; it needs the code of
    the release that made the newer schema, since only that knows its migrations.
    """
    cfg = alembic_config()
    with engine.begin() as connection:
        before = _current(connection)
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, revision)
        return Downgrade(before, _current(connection))


def revision(engine: Engine, message: str) -> None:
    """Autogenerate a new revision from the models (a developer's tool)."""
    cfg = alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.revision(cfg, message=message, autogenerate=True)
