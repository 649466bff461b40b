"""The web process's waker: offices handed over after a commit are woken, and no 202 waits on Redis."""

from __future__ import annotations

import logging
import socket
import threading
import time

import pytest
from flask import Flask
from redis import Redis
from sqlalchemy import func, select

from bridge import create_app
from bridge.waker import Waker
from domain.settings import Settings
from infra.redis_connection import connect
from store.models import Delivery
from tests.conftest import base_environ
from tests.factories import dog
from tests.webhook_support import form_body, post
from worker.queue import delivery_queue

OFFICES = ["usingen-steueramt", "neu-anspach-ordnungsamt", "usingen-ordnungsamt"]


def test_every_office_handed_over_is_woken_once_per_waiting_job(redis_url: str) -> None:
    """Forty threads hand over offices at once: each office gets its one waiting job."""
    redis = Redis.from_url(redis_url)
    waker = Waker(connect(redis_url))
    barrier = threading.Barrier(40)

    def hand_over(i: int) -> None:
        barrier.wait(10)
        waker.wake([OFFICES[i % len(OFFICES)]])

    threads = [threading.Thread(target=hand_over, args=(i,)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert waker.flush(10)
    jobs = sorted(job.args[0] for job in delivery_queue(redis).get_jobs())
    assert jobs == sorted(OFFICES)
    # Forty hand-overs, far fewer rounds: the offices gathered while a round was sent.
    assert 1 <= waker.rounds < 40


def test_an_office_handed_over_after_a_round_started_gets_a_round_of_its_own(
    redis_url: str,
) -> None:
    """A hand-over during a round is not lost in it: the next round sends it."""
    redis = Redis.from_url(redis_url)
    waker = Waker(connect(redis_url))
    waker.wake([OFFICES[0]])
    assert waker.flush(10)
    # The job started (its mark is gone): a new delivery needs a new job.
    redis.delete(f"bridge:drain-queued:{OFFICES[0]}")
    waker.wake([OFFICES[0]])
    assert waker.flush(10)
    ids = sorted(job.id for job in delivery_queue(redis).get_jobs())
    assert ids == [f"drain-{OFFICES[0]}-1", f"drain-{OFFICES[0]}-2"]


def test_a_redis_that_does_not_answer_does_not_delay_the_202(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis accepts connections but never answers: the 202 comes at once, the miss is logged.

    Before the waker, the request itself waited for Redis's socket timeout (5 s) and retries.
    """
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # the kernel completes the handshakes; nobody ever reads or answers
        environ = base_environ(database_url, f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
        app: Flask = create_app(Settings.from_env(environ))
        bridge = app.extensions["bridge"]
        try:
            with caplog.at_level(logging.WARNING, logger="bridge.waker"):
                started = time.monotonic()
                response = post(app.test_client(), "dog-registration", form_body(dog()))
                answered = time.monotonic() - started
                assert response.status_code == 202, response.get_json()
                assert answered < 2.0
                with bridge.store.read() as session:
                    assert session.scalar(select(func.count()).select_from(Delivery)) == 1
                assert not bridge.waker.flush(0.5)  # still waiting for Redis
        finally:
            bridge.store.dispose()


def test_with_redis_refusing_the_miss_is_logged_and_left_to_the_sweeper(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A refused connection: the round fails, is logged without personal data, and the next works."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    waker = Waker(connect(f"redis://127.0.0.1:{port}/0"))
    with caplog.at_level(logging.WARNING, logger="bridge.waker"):
        waker.wake([OFFICES[0]])
        assert waker.flush(30)
    # Wakers of earlier tests may log here too; this one's own round is the one counted.
    assert waker.rounds == 1
    assert any(
        r.message == "delivery.enqueue_failed" and r.levelno == logging.WARNING
        for r in caplog.records
    )
