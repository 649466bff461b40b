"""The bridge's web service and command line, by feature.

Packages: `intake/` (the Formcycle webhook), `api/` (the JSON API and OpenAPI), `admin/` (the
German admin page), `payments/` (pay link, return pages, provider callbacks), `ops/` (health,
metrics), `cli/` (`python -m bridge`). Beside them the app's assembly (`app`), its long-lived
parts (`state`), answers (`respond`), who is calling (`auth`) and the web's waker (`waker`).
May import every other package of the project; nothing imports `bridge`.

`create_app` is the one application factory (gunicorn, tests and benchmarks call it); it
imports the app lazily so that importing `bridge` (e.g. from a worker) never pulls in
Flask or touches the environment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

    from domain.settings import Settings


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask application; without `settings` they are read from the environment.

    Called without settings (gunicorn's `bridge:create_app()`), this is the process's entry
    point and also sets up the structured logs; tests pass settings and keep pytest's logging.
    """
    from bridge.app import _build_app

    if settings is None:
        from domain.settings import Settings
        from infra.logs import configure_logging

        settings = Settings.from_env()
        configure_logging(settings.log_level, settings.log_format)
    return _build_app(settings)
