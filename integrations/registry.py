"""A small plugin registry: `register(id)` is the decorator that puts a plugin in it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

#: Plugin ids are stored in the database and written in the routing file: keep them plain.
ID_PATTERN = re.compile(r"[a-z0-9-]{1,32}")


class Registry(Generic[T]):
    """Plugins by id, e.g. `channels = Registry[type[Channel]]()` then `@channels.register("xml")`.

    A fresh instance can be created in tests, so registering test plugins never leaks into the
    process-wide registry. `check` runs on every registration and may refuse a plugin by raising.
    """

    def __init__(self, check: Callable[[str, T], None] | None = None) -> None:
        """Create an empty registry; `check(id, plugin)` validates each plugin as it registers."""
        self._plugins: dict[str, T] = {}
        self._check = check

    def register(self, plugin_id: str) -> Callable[[T], T]:
        """Return a decorator that registers its argument under `plugin_id` and returns it."""
        if not isinstance(plugin_id, str) or not ID_PATTERN.fullmatch(plugin_id):
            raise ValueError(f"invalid plugin id {plugin_id!r}: use 1-32 of [a-z0-9-]")
        if plugin_id in self._plugins:
            raise ValueError(f"plugin id {plugin_id!r} is already registered")

        def decorator(plugin: T) -> T:
            # Checked again here: two decorators may have been created before either applied.
            if plugin_id in self._plugins:
                raise ValueError(f"plugin id {plugin_id!r} is already registered")
            if self._check is not None:
                self._check(plugin_id, plugin)
            self._plugins[plugin_id] = plugin
            return plugin

        return decorator

    def __getitem__(self, plugin_id: str) -> T:
        """The plugin registered under `plugin_id`; KeyError names the known ids."""
        try:
            return self._plugins[plugin_id]
        except KeyError:
            known = ", ".join(sorted(self._plugins)) or "none"
            raise KeyError(f"unknown plugin {plugin_id!r} (known: {known})") from None

    def get(self, plugin_id: str) -> T | None:
        """The plugin registered under `plugin_id`, or None."""
        return self._plugins.get(plugin_id)

    def __iter__(self) -> Iterator[str]:
        """The registered ids, in registration order."""
        return iter(list(self._plugins))
