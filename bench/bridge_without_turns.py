"""A bench variant: the bridge with SQLite's own busy handling instead of the writers' turns.

`store/sqlite_turns.py` makes every SQLite writer take its turn on a lock file before
``BEGIN IMMEDIATE`` (ADR 12). `bench.intake --compare-turns` runs this app beside the bridge to
measure what the turns do under load: here no writer waits for a turn, so concurrent writers
meet SQLite's busy handler alone (its sleeps of 1, 2, 5 ... 100 ms, up to the busy timeout), as
they did before the turns. Nothing else differs. Not for production.

    gunicorn 'bench.bridge_without_turns:create_app()'
"""

from __future__ import annotations

from flask import Flask

from store.sqlite_turns import TurnConnection


def _no_turn(self: TurnConnection) -> None:
    """Go straight to BEGIN IMMEDIATE; `give_turn` is then a no-op, as nothing was taken."""


def create_app() -> Flask:
    """The bridge from the environment, its SQLite writers without turns."""
    TurnConnection.take_turn = _no_turn  # type: ignore[method-assign]  # the variant measured
    from bridge import create_app as create_bridge

    return create_bridge()
