"""Waking offices after a commit, from one thread per web process, so a 202 never waits on Redis.

A committed delivery is due in the database whatever happens here: the wake-up only saves it
the wait for the sweeper (DESIGN section 3: jobs are enqueued after the commit; the sweeper
covers a crash in between, a Redis outage or flush). Requests hand their offices over and
answer; the waker sends what has gathered, one `wake_offices` per round. Every hand-over is
followed by a round that starts after it, so no committed delivery misses its wake-up unless
the process dies first, which the sweeper covers as it always did. Under load, the offices of
many submissions share one round: one SET NX per office instead of one per submission.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from redis import Redis
from redis.exceptions import RedisError

from infra.background import ProcessThread
from infra.logs import log_event
from worker.queue import wake_offices

log = logging.getLogger(__name__)


class Waker:
    """Gathers offices to wake and wakes them on its own thread."""

    def __init__(self, redis: Redis) -> None:
        """Bind to the Redis client; the thread starts with the first wake-up."""
        self.redis = redis
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        self._wanted = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread = ProcessThread(self._run, "office-waker")
        #: Rounds sent (tests read it).
        self.rounds = 0

    def wake(self, office_ids: Iterable[str]) -> None:
        """Wake these offices soon; returns at once."""
        offices = set(office_ids)
        if not offices:
            return
        with self._lock:
            self._pending |= offices
            self._idle.clear()
            self._wanted.set()
        self._thread.ensure()

    def flush(self, timeout_s: float) -> bool:
        """Wait until every office handed over so far was woken (or failed); False on timeout."""
        return self._idle.wait(timeout_s)

    def _run(self) -> None:
        """The waker's loop: one round for whatever gathered since the last one."""
        while True:
            self._wanted.wait()
            with self._lock:
                offices, self._pending = self._pending, set()
                self._wanted.clear()
            self._send(sorted(offices))
            with self._lock:
                if not self._pending:
                    self._idle.set()

    def _send(self, offices: list[str]) -> None:
        """One round; a failure is logged and left to the sweeper, never raised."""
        try:
            wake_offices(self.redis, offices)
        except Exception as exc:  # the thread must outlive any one round
            # The deliveries are committed and due; the sweeper re-enqueues them. Redis being
            # away is expected; anything else is a bug.
            log_event(
                log,
                "delivery.enqueue_failed",
                level=logging.WARNING if isinstance(exc, RedisError) else logging.ERROR,
                offices=len(offices),
                error=type(exc).__name__,
            )
        finally:
            self.rounds += 1
