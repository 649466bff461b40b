"""Write access to Redis is no code execution: a worker runs only the bridge's own jobs.

RQ imports and calls whatever function a job names. Here jobs are put straight into a real
Redis with plain RQ, as anyone who can write to Redis could, and a real worker process of ours
must refuse every one that is not a drain job, without importing or running it.
"""

from __future__ import annotations

import json
import pickle
import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from redis import Redis
from rq import Callback, Queue
from rq.job import Job
from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry
from rq.serializers import JSONSerializer

from harness.waiting import wait_for
from store.engine import Store
from store.models import DeliveryStatus
from tests.factories import dog
from tests.worker.conftest import Processes, deliveries, submit
from worker.queue import DRAIN_JOB, QUEUE_NAME


def _refusals(logs: str) -> list[dict[str, object]]:
    found = []
    for line in logs.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == "worker.job_refused":
                found.append(record)
    return found


@pytest.mark.parametrize("fork", [False, True], ids=["no-fork", "fork"])
def test_a_job_for_another_function_is_refused_and_dropped(
    fork: bool,
    client: FlaskClient,
    store: Store,
    redis_url: str,
    processes: Processes,
    tmp_path: Path,
) -> None:
    """`os.system`, a function of ours that is no job, a pickled job and a drain job with a
    callback are each logged as refused (their function name, never their arguments) and
    removed from Redis; nothing runs, and the delivery of a case afterwards works as before
    (with and without a forked child per job)."""
    marker = tmp_path / "owned"
    command = f"touch {marker}"
    redis = Redis.from_url(redis_url)
    queue = Queue(QUEUE_NAME, connection=redis, serializer=JSONSerializer)
    shell = queue.enqueue_call("os.system", args=(command,))
    ours = queue.enqueue_call("worker.sweeper.run", args=("secret-argument",))
    # A job as RQ's default (pickle) serializer writes it: never unpickled by our worker.
    pickled = Job.create("os.system", args=(command,), connection=redis, origin=QUEUE_NAME)
    pickled.data = pickle.dumps(("os.system", None, (command,), {}))
    pickled.save()
    queue.push_job_id(pickled.id)
    # Our job, but RQ would import and call the callback by its name.
    hooked = queue.enqueue_call(
        DRAIN_JOB, args=("usingen-steueramt",), on_success=Callback("os.system")
    )

    processes.start("worker", "work", "--fork" if fork else "--no-fork")
    wait_for(lambda: len(_refusals(processes.logs())) == 4, what="four refused jobs")
    time.sleep(0.5)  # a job that ran anyway would have left its mark by now
    assert not marker.exists()
    refusals = _refusals(processes.logs())
    assert sorted((str(r["func"]), r["reason"]) for r in refusals) == [
        ("None", "unreadable"),
        ("os.system", "not_a_bridge_job"),
        (DRAIN_JOB, "callback"),
        ("worker.sweeper.run", "not_a_bridge_job"),
    ], refusals
    assert command not in processes.logs()
    assert "secret-argument" not in processes.logs()
    for job in (shell, ours, pickled, hooked):
        assert not Job.exists(job.id, connection=redis)
    assert queue.count == 0
    assert redis.llen(f"{queue.key}:intermediate") == 0
    for registry in (StartedJobRegistry, FailedJobRegistry, FinishedJobRegistry):
        assert registry(queue=queue).get_job_ids() == []

    # The worker is still there and a case is delivered as usual.
    assert submit(client, "dog-registration", dog())["deliveries"]
    wait_for(
        lambda: {d.status for d in deliveries(store)} == {DeliveryStatus.DELIVERED},
        what="the case delivered after the refusals",
    )
    assert not marker.exists()
