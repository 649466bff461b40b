"""What every command works with: the settings, read once, and the store and Redis, opened when first used.

The context lives on the root click context and is closed with it, so the store is disposed
at the end of every command, after a `sys.exit` too. Nothing is read or opened before a
command asks: commands that refuse their usage first never touch the settings, and those
that need only the settings never open the database.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

import click
from redis import Redis

from domain.settings import Settings
from infra.redis_connection import connect
from integrations.checks import settings_or_exit
from store.engine import Store

P = ParamSpec("P")
R = TypeVar("R")


class Context:
    """The settings, a store and a Redis client, each made on first use."""

    def __init__(self) -> None:
        """Nothing is read yet; see the properties."""
        self._settings: Settings | None = None
        self._store: Store | None = None
        self._redis: Redis | None = None

    @property
    def settings(self) -> Settings:
        """The checked settings; on problems they are all printed and the command exits 2."""
        if self._settings is None:
            self._settings = settings_or_exit()
        return self._settings

    @property
    def store(self) -> Store:
        """The database of DATABASE_URL (disposed when the command ends)."""
        if self._store is None:
            self._store = Store.from_url(self.settings.database_url)
        return self._store

    @property
    def redis(self) -> Redis:
        """A Redis client for REDIS_URL; it connects with its first command."""
        if self._redis is None:
            self._redis = connect(self.settings.redis_url)
        return self._redis

    def close(self) -> None:
        """Dispose the store and close Redis, if they were opened."""
        if self._store is not None:
            self._store.dispose()
            self._store = None
        if self._redis is not None:
            self._redis.close()
            self._redis = None


def current_context() -> Context:
    """The running command's context, made (and set to close with the command) on first use."""
    root = click.get_current_context().find_root()
    if not isinstance(root.obj, Context):
        root.obj = Context()
        root.call_on_close(root.obj.close)
    context: Context = root.obj
    return context


def pass_context(command: Callable[Concatenate[Context, P], R]) -> Callable[P, R]:
    """Hand the command its `Context` as the first argument."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return command(current_context(), *args, **kwargs)

    return run
