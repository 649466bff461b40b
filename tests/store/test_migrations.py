"""Migrations: the models and the migrated schema agree, and revision 0002 keeps old rows working."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, text

from bridge import create_app
from domain.settings import Settings
from store.engine import make_engine
from store.migrations import alembic_config, upgrade
from tests.conftest import base_environ
from tests.factories import dog
from tests.webhook_support import form_body, post

DOG = "dog-registration"
TRAFFIC = "traffic-order"


def test_models_and_migrations_agree(database_url: str) -> None:
    """`alembic check`: autogenerate finds nothing between the models and the migrated store."""
    engine = make_engine(database_url)
    try:
        cfg = alembic_config()
        with engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.check(cfg)
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database without any tables, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    pg: str | None = request.getfixturevalue("postgres_url")
    if pg is None:
        pytest.skip("PostgreSQL not configured (set TEST_POSTGRES_URL; required in CI)")
    name = f"bridge_migration_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield pg.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _legacy_rows(engine: Engine) -> None:
    """Two submissions as revision 0001 stored them (the second deleted again) and children."""
    insert = text(
        "INSERT INTO submissions (reference_prefix, reference_year, service, schema, sender, "
        "idempotency_key, municipality_ags, status, flags, received_at, updated_at) VALUES "
        "('NA', 2026, 'dog-registration', 'dog-registration@1', 'formcycle', :key, "
        "'06434007', 'routed', '{}', '2026-11-30 10:00:00', '2026-11-30 10:00:00')"
    )
    with engine.begin() as conn:
        conn.execute(insert, {"key": "fc-legacy"})
        conn.execute(insert, {"key": "fc-gone"})
        conn.execute(
            text(
                "INSERT INTO deliveries (id, submission_id, office_id, task_area, channel, "
                "status, attempts, created_at, updated_at) VALUES ('d0000000000000000000000000000001', "
                "1, 'usingen-steueramt', 'tax', 'http-json', 'delivered', 1, "
                "'2026-11-30 10:00:00', '2026-11-30 10:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO events (submission_id, kind, actor, at, detail) VALUES "
                "(1, 'submission.received', 'sender:formcycle', '2026-11-30 10:00:00', '{}')"
            )
        )
        conn.execute(text("DELETE FROM submissions WHERE id = 2"))


def test_upgrade_keeps_old_submissions_as_legacy_repeats(
    empty_database_url: str, redis_url: str
) -> None:
    """After 0002 an old row has no fingerprint: its key still answers any repeat, per service."""
    engine = make_engine(empty_database_url)
    try:
        upgrade(engine, "0001")
        _legacy_rows(engine)
        upgrade(engine)
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT id, idempotency_key, fingerprint FROM submissions")
            ).all()
            assert [tuple(r) for r in rows] == [(1, "fc-legacy", None)]
            if engine.dialect.name == "sqlite":
                assert conn.execute(text("PRAGMA foreign_key_check")).all() == []
    finally:
        engine.dispose()
    app = create_app(Settings.from_env(base_environ(empty_database_url, redis_url)))
    try:
        client = app.test_client()
        # Whatever its content, a repeat of the legacy submission is answered with it.
        repeat = post(
            client, DOG, form_body(dog({"dog.name": "Rex"}), [("process_id", "fc-legacy")])
        )
        assert repeat.status_code == 202, repeat.get_data(as_text=True)
        assert repeat.headers["Idempotent-Replayed"] == "true"
        assert repeat.get_json()["reference"].endswith("-000001")
        # The number of the deleted submission is not handed out again.
        fresh = post(client, DOG, form_body(dog(), [("process_id", "fc-gone")]))
        assert fresh.status_code == 202, fresh.get_data(as_text=True)
        assert int(fresh.get_json()["reference"].rsplit("-", 1)[1]) > 2
    finally:
        app.extensions["bridge"].store.dispose()


def test_downgrade_and_upgrade_again(empty_database_url: str) -> None:
    """0002 can be reverted and applied again; the rows survive both ways."""
    engine = make_engine(empty_database_url)
    try:
        upgrade(engine, "0001")
        _legacy_rows(engine)
        upgrade(engine)
        cfg = alembic_config()
        with engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.downgrade(cfg, "0001")
        upgrade(engine)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM submissions")).scalar() == 1
            assert conn.execute(text("SELECT count(*) FROM events")).scalar() == 1
    finally:
        engine.dispose()
