"""The application's long-lived parts, bound to the Flask app as one extension."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from flask import Flask, current_app
from redis import Redis

from bridge.waker import Waker
from domain.intake.pipeline import Intake
from domain.settings import Settings
from infra.crypto import Vault
from infra.redis_connection import connect
from store.engine import Store
from store.models import Submission

log = logging.getLogger(__name__)


@dataclass
class Bridge:
    """Settings, store, encryption and intake for one app; connections open on first use."""

    settings: Settings
    store: Store
    vault: Vault
    intake: Intake
    redis: Redis = field(repr=False)
    waker: Waker = field(repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Bridge:
        """Create the parts (no connection is made here)."""
        store = Store.from_url(
            settings.database_url, sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms
        )
        vault = Vault(settings.encryption_keys)
        redis = connect(settings.redis_url)
        return cls(settings, store, vault, Intake(settings, store, vault), redis, Waker(redis))

    def dispatch(self, submission: Submission) -> None:
        """Wake the workers of the submission's (committed) offices without waiting on Redis."""
        self.waker.wake(d.office_id for d in submission.deliveries)

    def init_app(self, app: Flask) -> None:
        """Register with the app so that views find it through `current()`."""
        app.extensions["bridge"] = self


def current() -> Bridge:
    """The Bridge of the app handling the current request."""
    bridge = current_app.extensions["bridge"]
    assert isinstance(bridge, Bridge)
    return bridge
