"""The delivery worker process: RQ workers that outlive Redis outages, and who counts as alive.

RQ's work loop quits on any Redis error outside its dequeue (the bookkeeping of a finished job,
a heartbeat) and its teardown then raises if Redis is still away, ending the process; a worker
blocked on the queue reconnects by itself but, if Redis came back empty, is missing from RQ's
registry for good. Here a supervising loop starts a fresh RQ worker after each such end (with
backoff) until the process is asked to stop, and a worker writes itself back into the registry
at its next heartbeat when Redis lost it. The deliveries of an interrupted job are safe either
way: each is leased in the database, and the sweeper wakes offices whose wake-up Redis lost.

A worker runs only the bridge's own jobs (`worker.queue.JOBS`): RQ would import and call any
function a job names, so write access to Redis would be code execution here. The check reads
the name the job stores, before anything is imported; a job that fails it is dropped.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import AuthenticationError, RedisError
from rq import Queue, SimpleWorker, Worker, worker_registration
from rq.exceptions import DeserializationError, StopRequested
from rq.intermediate_queue import IntermediateQueue
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.worker import BaseWorker

from domain.settings import Settings
from infra.logs import log_event
from infra.redis_connection import connect
from worker.queue import JOBS, delivery_queue

log = logging.getLogger(__name__)

# An idle worker heartbeats every WORKER_TTL_S - 15 s (RQ's dequeue timeout); one that died
# without a word leaves the registry WORKER_TTL_S + 60 s after its last heartbeat.
WORKER_TTL_S = 30
# Pauses between the end of a worker and the next: 1 s, 2 s, 4 s ... at most 30 s; a worker
# that ran for HEALTHY_AFTER_S starts the count again.
RESTART_DELAY_S = 1.0
RESTART_DELAY_CAP_S = 30.0
HEALTHY_AFTER_S = 60.0


def refusal(job: Job) -> str | None:
    """Why a worker must not run this job, or None when it is one of the bridge's own jobs.

    Only what the job stores as data is read (its function's dotted name is a string), so
    nothing the job names is imported. Callbacks and webhooks are refused too: RQ would import
    a callback by its name and post a webhook to any address.
    """
    func = _func_name(job)
    if func is None:
        return "unreadable"
    # The name and the instance come from the same data, deserialized once above.
    if func not in JOBS or job.instance is not None:
        return "not_a_bridge_job"
    callbacks = (job._success_callback_name, job._failure_callback_name, job._stopped_callback_name)
    if any(callbacks) or getattr(job, "webhooks", None):
        return "callback"
    return None


def _func_name(job: Job) -> str | None:
    """The function a job names, or None when its data is not JSON (e.g. pickled by RQ's
    default serializer): such data is never unpickled here."""
    try:
        return job.func_name
    except DeserializationError:
        return None


class RedisTolerantWorker(BaseWorker):
    """RQ worker behaviour that keeps a Redis outage from ending the process and runs only the
    bridge's own jobs."""

    stop_event: threading.Event

    def execute_job(self, job: Job, queue: Queue) -> None:
        """Run the job if it is one of ours (`refusal`); else log and drop it, unrun."""
        reason = refusal(job)
        if reason is None:
            super().execute_job(job, queue)
            return
        # The name only: a job's arguments may be anything, personal data included.
        log_event(
            log,
            "worker.job_refused",
            level=logging.ERROR,
            job=job.id,
            func=_func_name(job),
            reason=reason,
        )
        with self.connection.pipeline() as p:
            # Out of the queue, every registry and Redis: not retried, not kept as failed.
            job.delete(pipeline=p)
            p.lrem(IntermediateQueue(queue.key, self.connection).key, 0, job.id)
            p.execute()

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM/SIGINT: remember it for the supervising loop, then stop as RQ does."""
        self.stop_event.set()
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]  # untyped in RQ

    def set_shutdown_requested_date(self) -> None:
        """Note the shutdown request in Redis if it is there; it runs in a signal handler, which
        must not raise into the job it interrupts."""
        try:
            super().set_shutdown_requested_date()  # type: ignore[no-untyped-call]  # untyped in RQ
        except RedisError as exc:
            _unavailable(self.name, "shutdown", exc)

    def heartbeat(self, timeout: int | None = None, pipeline: Pipeline | None = None) -> None:
        """RQ's heartbeat, which also writes the worker back into the registry when Redis lost
        it (restarted empty, flushed), so that readiness and metrics count it again."""
        if pipeline is not None:
            super().heartbeat(timeout, pipeline)
            return
        with self.connection.pipeline() as p:
            super().heartbeat(timeout, p)
            worker_registration.register(self, p)
            # HSET answers how many fields it added: 1 when the worker's hash was gone.
            recreated = p.execute()[0] == 1
        if recreated:
            self.connection.hset(self.key, mapping={**self.serialize(), "state": self.get_state()})
            log_event(log, "worker.registered_again", level=logging.WARNING, worker=self.name)

    def teardown(self) -> None:
        """Unregister if Redis is there; stop listening for commands either way."""
        try:
            super().teardown()  # type: ignore[no-untyped-call]  # untyped in RQ
        except RedisError as exc:
            # The worker's key expires by itself; the command listener must not outlive it.
            _unavailable(self.name, "teardown", exc)
            if self.pubsub_thread is not None:
                self.pubsub_thread.stop()
                self.pubsub_thread.join(timeout=1)


class DeliveryWorker(RedisTolerantWorker, SimpleWorker):
    """Runs each drain job in the worker process (the default: no fork per job)."""


class ForkingDeliveryWorker(RedisTolerantWorker, Worker):
    """Runs each drain job in a forked child (`--fork`: isolation at the cost of a fork)."""


def run(
    settings: Settings,
    *,
    burst: bool = False,
    fork: bool = False,
    stop: threading.Event | None = None,
) -> None:
    """Work on the delivery queue until SIGTERM/SIGINT (or, with `burst`, an empty queue);
    after a Redis outage ends a worker, start a new one once Redis answers again."""
    stop = stop or threading.Event()
    cls = ForkingDeliveryWorker if fork else DeliveryWorker
    failures = 0
    while not stop.is_set():
        began = time.monotonic()
        redis = connect(settings.redis_url)
        try:
            worker = cls(
                [delivery_queue(redis)],
                connection=redis,
                serializer=JSONSerializer,
                worker_ttl=WORKER_TTL_S,
                # RQ's description quotes a job's arguments; its id says which job it is.
                log_job_description=False,
            )
            worker.stop_event = stop
            worker.work(burst=burst, with_scheduler=False, logging_level=settings.log_level)
            if burst:
                return
        except StopRequested:
            # A signal during the worker's start-up, before RQ's loop could catch it.
            stop.set()
        except RedisError as exc:
            _unavailable(None, "start", exc)
        finally:
            redis.close()
            _stop_on_signal(stop)
        if stop.is_set():
            break
        failures = 1 if time.monotonic() - began >= HEALTHY_AFTER_S else failures + 1
        delay = min(RESTART_DELAY_CAP_S, RESTART_DELAY_S * 2 ** (failures - 1))
        log_event(log, "worker.restarting", level=logging.WARNING, in_s=delay)
        stop.wait(delay)


def live_workers(redis: Redis) -> int:
    """Delivery workers in RQ's registry whose heartbeat has not expired (raises RedisError)."""
    keys = sorted(worker_registration.get_keys(queue=delivery_queue(redis)))
    if not keys:
        return 0
    with redis.pipeline(transaction=False) as p:
        for key in keys:
            p.exists(key)
        return sum(int(found) for found in p.execute())


def _unavailable(worker: str | None, during: str, exc: RedisError) -> None:
    # A refused login is no outage that passes: the operator has to fix REDIS_URL.
    hint = (
        {"hint": "Redis refused the login: REDIS_URL needs Redis's password"}
        if isinstance(exc, AuthenticationError)
        else {}
    )
    log_event(
        log,
        "worker.redis_unavailable",
        level=logging.ERROR if hint else logging.WARNING,
        worker=worker,
        during=during,
        error=type(exc).__name__,
        **hint,
    )


def _stop_on_signal(stop: threading.Event) -> None:
    """Between two workers nobody else listens for SIGTERM/SIGINT; the next worker takes over."""
    if threading.current_thread() is not threading.main_thread():
        return

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
