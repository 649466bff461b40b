"""The administration's steps of the sweeper loop: bulk replay progress, queue truth, digest,
purge (cases' personal data, and the payment callback journal past its days).

Each step runs at its own pace and on its own: one that fails is logged and the others (and
the sweeper's own wake-ups) go on.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable

from redis import Redis

from domain.admin import bulk_replay
from domain.delivery.retention import purge
from domain.payments.journal import purge_journal
from domain.settings import Settings
from infra.logs import log_event
from store.engine import Store
from worker import digest
from worker.queue_truth import reconcile_failed_jobs

log = logging.getLogger(__name__)

# Seconds between two runs of each step (the bulk replay's counts every sweep).
PACE = {
    "bulk_replay": 0.0,
    "queue_truth": 10.0,
    "digest": 60.0,
    "retention": 3600.0,
    "payment_journal": 3600.0,
}


class Steps:
    """When each step last ran in this sweeper process."""

    def __init__(self) -> None:
        """Nothing ran yet."""
        self.last: dict[str, float] = {}

    def run(self, settings: Settings, store: Store, redis: Redis) -> None:
        """Run every step that is due."""
        steps: dict[str, Callable[[], object]] = {
            "bulk_replay": lambda: bulk_replay.refresh_running(store),
            "queue_truth": lambda: reconcile_failed_jobs(store, redis),
            "digest": lambda: _digest(settings, store),
            "retention": lambda: _retention(settings, store),
            "payment_journal": lambda: _payment_journal(settings, store),
        }
        now = time.monotonic()
        for name, step in steps.items():
            if now - self.last.get(name, -1e9) < PACE[name]:
                continue
            self.last[name] = now
            try:
                step()
            except Exception as exc:
                log_event(
                    log, "sweeper.step_failed", level=logging.WARNING, step=name,
                    error=type(exc).__name__,
                )  # fmt: skip


def _digest(settings: Settings, store: Store) -> None:
    now = dt.datetime.now(dt.UTC)
    if digest.due(settings, now):
        digest.send_once(settings, store, now)


def _retention(settings: Settings, store: Store) -> None:
    result = purge(store, settings.config)
    if result.submissions:
        log_event(
            log, "retention.purged", submissions=result.submissions,
            attachments=result.attachments,
        )  # fmt: skip


def _payment_journal(settings: Settings, store: Store) -> None:
    deleted = purge_journal(store, settings.payment_journal_days)
    if deleted:
        log_event(log, "payment.journal_purged", rows=deleted)
