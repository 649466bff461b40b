"""The RQ side of the delivery benchmark: worker processes and the drain jobs they ran."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import time

from redis import Redis

from bench.delivery.shared import Bench


@dataclasses.dataclass
class JobInfo:
    """One drain job as RQ recorded it."""

    job_id: str
    worker: str
    status: str
    attempts: int | None
    started: float | None
    ended: float | None
    error: str | None = None


def start_workers(bench: Bench, env: dict[str, str], n: int) -> list[subprocess.Popen[bytes]]:
    """Start `n` worker processes and wait until RQ lists them all as idle."""
    from rq import Worker

    started: list[subprocess.Popen[bytes]] = [
        bench.procs.python("worker", ["worker", "work"], env) for _ in range(n)
    ]
    redis = Redis.from_url(env["REDIS_URL"])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in started):
                raise SystemExit("a worker process ended at start; see its log")
            ws = Worker.all(connection=redis)
            if len(ws) >= n and all(w.state == "idle" for w in ws):
                return started
            time.sleep(0.1)
    finally:
        redis.close()
    raise SystemExit("the workers did not register with RQ within 60 s")


def worker_labels(redis: Redis) -> dict[str, str]:
    """RQ worker name -> w1, w2, ... in order of process id."""
    from rq import Worker

    ws = sorted(Worker.all(connection=redis), key=lambda w: w.pid or 0)
    return {str(w.name): f"w{i}" for i, w in enumerate(ws, 1)}


def drain_jobs(redis: Redis, labels: dict[str, str]) -> list[JobInfo]:
    """Every drain job RQ knows of (finished, failed, running, waiting), oldest first."""
    from rq.job import Job
    from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry

    from worker.queue import delivery_queue

    queue = delivery_queue(redis)
    ids: list[str] = list(queue.get_job_ids())
    for registry in (FinishedJobRegistry, FailedJobRegistry, StartedJobRegistry):
        ids += list(registry(queue=queue).get_job_ids())
    out = []
    for job in Job.fetch_many(ids, connection=redis, serializer=queue.serializer):
        if job is None:
            continue
        status = job.get_status()
        value = job.return_value() if status == "finished" else None
        error = None
        if status == "failed":
            result = job.latest_result()
            text_ = str(getattr(result, "exc_string", "") or "").strip()
            error = text_.splitlines()[-1][:300] if text_ else "?"
        out.append(
            JobInfo(
                job_id=str(job.id),
                worker=labels.get(str(job.worker_name), str(job.worker_name or "-")),
                status=str(getattr(status, "value", status)),
                attempts=int(value) if isinstance(value, int) else None,
                started=job.started_at.timestamp() if job.started_at else None,
                ended=job.ended_at.timestamp() if job.ended_at else None,
                error=error,
            )
        )
    out.sort(key=lambda j: j.started or math.inf)
    return out


def settle_jobs(redis: Redis, timeout: float = 15.0) -> None:
    """Wait until no drain job is waiting or running (the last ones find nothing and end)."""
    from rq.registry import StartedJobRegistry

    from worker.queue import delivery_queue

    queue = delivery_queue(redis)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if queue.count == 0 and StartedJobRegistry(queue=queue).count == 0:
            return
        time.sleep(0.05)
