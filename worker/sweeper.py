"""The sweeper: wakes offices whose deliveries are due and not in flight.

This one loop covers a crash between commit and enqueue, a Redis restart or flush, a lost RQ
job and a worker killed mid-delivery (its lease runs out and the delivery is due again).
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import requests
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from domain.delivery.deliveries import offices_with_due
from domain.settings import Settings
from infra.logs import log_event
from infra.redis_connection import connect
from integrations.channels import channels
from store.engine import Store
from worker.admin_steps import Steps
from worker.fit_connect_poll import poll_cases
from worker.queue import wake_offices
from worker.reconcile_payments import reconcile_payments

log = logging.getLogger(__name__)


def sweep_once(settings: Settings, store: Store, redis: Redis, steps: Steps | None = None) -> int:
    """Wake every push office with due deliveries; returns how many drain jobs were enqueued."""
    offices = [
        o
        for o in offices_with_due(store)
        if o in settings.config.offices and not channels[settings.config.offices[o].channel].pull
    ]
    woken = wake_offices(redis, offices) if offices else 0
    if woken:
        log_event(log, "sweeper.woke", offices=len(offices), jobs=woken)
    if steps is not None:
        steps.run(settings, store, redis)
    return woken


def run(settings: Settings, stop: threading.Event | None = None) -> None:
    """Sweep every `sweep_interval_s` until SIGTERM/SIGINT (or `stop` is set)."""
    stop = stop or threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
    store = Store.from_url(settings.database_url)
    redis = connect(settings.redis_url)
    http = requests.Session()
    log_event(log, "sweeper.started", interval_s=settings.sweep_interval_s)
    failed_rounds = 0
    steps = Steps()
    while not stop.is_set():
        try:
            sweep_once(settings, store, redis, steps)
            # Open payments whose check is due (issue 7); cheap when there are none.
            reconcile_payments(settings, store, redis)
            # FIT-Connect cases waiting for their destination's answer (ADR 15).
            poll_cases(settings, store, http)
        except (RedisError, SQLAlchemyError) as exc:
            # Keep sweeping: the store or Redis may be back at the next round. One line when
            # an outage starts (and one per minute while it lasts), not one per round.
            if failed_rounds % max(1, round(60 / settings.sweep_interval_s)) == 0:
                log_event(
                    log,
                    "sweeper.error",
                    level=logging.WARNING,
                    error=type(exc).__name__,
                    failed_rounds=failed_rounds + 1,
                )
            failed_rounds += 1
        else:
            if failed_rounds:
                log_event(log, "sweeper.recovered", failed_rounds=failed_rounds)
            failed_rounds = 0
        stop.wait(settings.sweep_interval_s)
    store.dispose()
    log_event(log, "sweeper.stopped")
