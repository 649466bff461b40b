"""The operator CLI: check-config prints who handles what and refuses a broken file."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ROOT, bridge_cli


def test_check_config_prints_the_routing_table(environ: dict[str, str]) -> None:
    """Every service and member town with the office of each task area."""
    result = bridge_cli(environ, "check-config")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Hund anmelden (dog-registration, dog-registration@1, LeiKa 99102013104000)" in out
    assert "Neu-Anspach          tax -> Steueramt Usingen [http-json]" in out
    assert "public-order -> Ordnungsamt Neu-Anspach (when dangerous_dog)" in out
    assert "Usingen              public-order -> Ordnungsamt Neu-Anspach [http-json]" in out


def test_check_config_lists_every_problem(environ: dict[str, str], tmp_path: Path) -> None:
    """One run names every problem of every class: a bad environment value, a malformed
    entry, an unknown office, a missing secret and a channel's bad options; an entry that is
    malformed itself is not reported again as unknown where it is used."""
    text = (ROOT / "config" / "routing.toml").read_text(encoding="utf-8")
    text = text.replace('neu-anspach = "usingen-steueramt"', 'neu-anspach = "steueramt-xyz"')
    text = text.replace('url = "http://127.0.0.1:8090/cases/usingen-steueramt"', 'url = "ftp:/x"')
    assert 'ags = "06434011"' in text
    text = text.replace('ags = "06434011"', 'ags = "0643"', 1)  # Usingen's AGS: 4 digits
    path = tmp_path / "broken.toml"
    path.write_text(text, encoding="utf-8")
    env = {k: v for k, v in environ.items() if k != "BRIDGE_SECRET_FORMCYCLE"}
    env = {**env, "BRIDGE_CONFIG": str(path), "BRIDGE_MAX_FILES": "viele"}
    result = bridge_cli(env, "check-config")
    assert result.returncode == 2
    problems = result.stderr
    assert "BRIDGE_MAX_FILES: Not a valid integer." in problems
    assert "municipalities.usingen.value.ags: 8 digits" in problems
    assert "responsibilities.tax.neu-anspach: unknown office 'steueramt-xyz'" in problems
    assert "BRIDGE_SECRET_FORMCYCLE (a secret named in the file) is not set" in problems
    assert "offices.usingen-steueramt.options.url" in problems
    # Usingen is malformed, not unknown: its offices and responsibilities raise nothing more.
    assert "unknown municipality 'usingen'" not in problems
    assert "responsibilities.tax.usingen: unknown municipality" not in problems


def test_generate_key_makes_a_usable_key(environ: dict[str, str]) -> None:
    """generate-key prints a key the settings accept."""
    from domain.settings import Settings

    result = bridge_cli(environ, "generate-key")
    assert result.returncode == 0
    key = result.stdout.strip()
    settings = Settings.from_env({**environ, "BRIDGE_ENCRYPTION_KEYS": key})
    assert settings.encryption_keys == (key,)


def _head() -> str:
    from alembic.script import ScriptDirectory

    from store.migrations import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def test_migrate_says_what_it_did(environ: dict[str, str], tmp_path: Path) -> None:
    """A new database is created at the head revision; a second run says it is up to date."""
    env = {**environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'new.db'}"}
    head = _head()
    first = bridge_cli(env, "migrate")
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"created the database schema at revision {head}"
    again = bridge_cli(env, "migrate")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"database schema is up to date (revision {head})"


def test_migrate_names_the_revisions_it_upgraded(environ: dict[str, str], tmp_path: Path) -> None:
    """A database at an older revision is upgraded, and the answer names both revisions."""
    from store.engine import make_engine
    from store.migrations import upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    upgrade(engine, "0001")
    engine.dispose()
    result = bridge_cli({**environ, "DATABASE_URL": url}, "migrate")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"upgraded the database schema from revision 0001 to {_head()}"


def test_check_config_warns_about_mail_without_tls(environ: dict[str, str], tmp_path: Path) -> None:
    """Plain SMTP is allowed only when asked for, and check-config names who asked."""
    text = (ROOT / "config" / "routing.toml").read_text(encoding="utf-8")
    text = text.replace(
        'channel = "http-json"\n'
        'options = { url = "http://127.0.0.1:8090/cases/usingen-steueramt", '
        'signing_secret_env = "BRIDGE_SECRET_OFFICE_SIGNING" }',
        'channel = "email"\noptions = { host = "127.0.0.1", port = 8025, tls = "insecure", '
        'sender = "bruecke@usingen.test", to = "steueramt@usingen.test" }',
    )
    assert 'tls = "insecure"' in text
    path = tmp_path / "plain.toml"
    path.write_text(text, encoding="utf-8")
    env = {**environ, "BRIDGE_CONFIG": str(path)}
    result = bridge_cli(env, "check-config")
    assert result.returncode == 0, result.stderr
    assert (
        "warning: office usingen-steueramt (Steueramt Usingen) sends e-mail without TLS "
        '(tls = "insecure")'
    ) in result.stderr
    quiet = bridge_cli(environ, "check-config")
    assert "warning" not in quiet.stderr
    digest = bridge_cli({**environ, "BRIDGE_SMTP_TLS": "insecure"}, "check-config")
    assert digest.returncode == 0, digest.stderr
    assert "warning: BRIDGE_SMTP_TLS=insecure: the daily digest is sent without TLS" in (
        digest.stderr
    )


def _revision(url: str) -> str | None:
    from sqlalchemy import text

    from store.engine import make_engine

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            return None if found is None else str(found)
    finally:
        engine.dispose()


def test_downgrade_goes_back_and_migrate_forward_again(
    environ: dict[str, str], fresh_database_url: str
) -> None:
    """Every migration can be undone (down to no schema) and applied again, on both stores."""
    env = {**environ, "DATABASE_URL": fresh_database_url}
    head = _head()
    assert bridge_cli(env, "migrate").returncode == 0
    unconfirmed = bridge_cli(env, "downgrade", "0005")
    assert unconfirmed.returncode == 1
    assert "Aborted" in unconfirmed.stderr
    assert _revision(fresh_database_url) == head
    back = bridge_cli(env, "downgrade", "--yes", "0005")
    assert back.returncode == 0, back.stderr
    assert back.stdout.strip() == f"downgraded the database schema from revision {head} to 0005"
    assert _revision(fresh_database_url) == "0005"
    ahead = bridge_cli(env, "downgrade", "--yes", head)
    assert ahead.returncode == 1
    assert f"cannot downgrade to '{head}'" in ahead.stderr
    assert _revision(fresh_database_url) == "0005"
    gone = bridge_cli(env, "downgrade", "--yes", "base")
    assert gone.returncode == 0, gone.stderr
    assert gone.stdout.strip() == "removed the database schema (it was at revision 0005)"
    again = bridge_cli(env, "migrate")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"created the database schema at revision {head}"


def test_migrate_refuses_a_schema_of_a_newer_release(
    environ: dict[str, str], fresh_database_url: str
) -> None:
    """A database a newer release migrated is named as such, with the two ways back."""
    from sqlalchemy import text

    from store.engine import make_engine

    env = {**environ, "DATABASE_URL": fresh_database_url}
    assert bridge_cli(env, "migrate").returncode == 0
    engine = make_engine(fresh_database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0999'"))
    engine.dispose()
    result = bridge_cli(env, "migrate")
    assert result.returncode == 1
    assert "0999" in result.stderr
    assert "migrated by a newer release than this one" in result.stderr
    assert "Traceback" not in result.stderr
    assert _revision(fresh_database_url) == "0999"
