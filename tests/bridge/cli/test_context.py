"""The commands' one context: settings read only when asked, store and Redis opened once, closed at the end."""

from __future__ import annotations

import sys

import click
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.pool import Pool

from bridge.cli.context import Context, pass_context
from store.engine import Store


def test_settings_are_read_only_when_a_command_asks(environ: dict[str, str]) -> None:
    """Bad settings stop the command that reads them (exit 2, the problem printed), not others."""
    asked: list[bool] = []

    @click.command()
    @click.option("--read", is_flag=True)
    @pass_context
    def probe(ctx: Context, read: bool) -> None:
        if read:
            asked.append(ctx.settings is ctx.settings)
        click.echo("done")

    bad = {**environ, "DATABASE_URL": "mysql://nowhere/bridge"}
    quiet = CliRunner(env=bad).invoke(probe, [])
    assert (quiet.exit_code, quiet.stdout) == (0, "done\n")
    refused = CliRunner(env=bad).invoke(probe, ["--read"])
    assert refused.exit_code == 2
    assert "must be sqlite:///PATH or postgresql://..." in refused.stderr
    assert asked == []
    good = CliRunner(env=environ).invoke(probe, ["--read"])
    assert good.exit_code == 0, good.stderr
    assert asked == [True]


def test_store_and_redis_are_opened_once_and_closed_after_an_exit(
    environ: dict[str, str],
) -> None:
    """One store and one Redis per command; the store is disposed when the command exits."""
    seen: list[tuple[Store, Pool]] = []

    @click.command()
    @pass_context
    def probe(ctx: Context) -> None:
        assert ctx.store is ctx.store
        assert ctx.redis is ctx.redis
        assert ctx.redis.ping()
        with ctx.store.read() as session:
            assert session.execute(text("SELECT 1")).scalar() == 1
        seen.append((ctx.store, ctx.store.engine.pool))
        sys.exit(1)

    result = CliRunner(env=environ).invoke(probe, [])
    assert result.exit_code == 1, result.stderr
    [(store, pool)] = seen
    # Disposing an engine swaps in a fresh pool: the one the command used is closed.
    assert store.engine.pool is not pool
