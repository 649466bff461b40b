"""Throughput: worker processes draining N due deliveries, timed from the wake-up."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
from collections import Counter
from typing import Any

from redis import Redis
from sqlalchemy import Engine

from bench.delivery.databases import (
    copy_database,
    count_delivered,
    delivery_statuses,
    drop_database,
    plain_engine,
)
from bench.delivery.jobs import JobInfo, drain_jobs, settle_jobs, start_workers, worker_labels
from bench.delivery.shared import Bench, CpuMeter, Scenario


@dataclasses.dataclass
class ThroughputRun:
    """One measured drain: a scenario with 1 or 2 worker processes."""

    store: str
    scenario: Scenario
    workers: int
    deliveries: int
    delivered: int
    seconds: float
    steady_per_s: float | None
    jobs: list[JobInfo]
    per_worker: dict[str, int]
    per_office: dict[str, int]
    cpu: dict[str, float]
    statuses: dict[str, int]
    office: dict[str, Any]
    busy_before: float
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def per_s(self) -> float:
        """Deliveries per second from the wake-up to the last `delivered` in the database."""
        return self.delivered / self.seconds if self.seconds else 0.0

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {
            "store": self.store,
            "scenario": self.scenario.key,
            "workers": self.workers,
            "deliveries": self.deliveries,
            "delivered": self.delivered,
            "seconds": round(self.seconds, 3),
            "per_s": round(self.per_s, 1),
            "steady_per_s": round(self.steady_per_s, 1) if self.steady_per_s else None,
            "jobs": [dataclasses.asdict(j) for j in self.jobs],
            "per_worker": self.per_worker,
            "per_office": self.per_office,
            "cpu_s": {k: round(v, 2) for k, v in self.cpu.items()},
            "statuses": self.statuses,
            "office": self.office,
            "machine_busy_before": round(self.busy_before, 3),
            "notes": self.notes,
        }


def steady_rate(times: list[float]) -> float | None:
    """Arrivals per second between the 10th and the 90th percentile arrival."""
    if len(times) < 20:
        return None
    times = sorted(times)
    lo, hi = len(times) // 10, len(times) * 9 // 10
    span = times[hi] - times[lo]
    return (hi - lo) / span if span > 0 else None


def wait_drained(engine: Engine, n: int, t0: float, notes: list[str]) -> int:
    """Poll until `n` deliveries are delivered, or none more for 30 s (noted); the count."""
    delivered, last_change, last = 0, t0, 0
    while delivered < n:
        time.sleep(0.02)
        delivered = count_delivered(engine)
        now = time.perf_counter()
        if delivered != last:
            last, last_change = delivered, now
        elif now - last_change > 30:
            notes.append(f"stalled at {delivered} of {n} delivered for 30 s")
            break
    return delivered


def attempts_per_worker(jobs: list[JobInfo]) -> Counter[str]:
    """Delivery attempts each worker made, summed over its drain jobs."""
    per_worker: Counter[str] = Counter()
    for job in jobs:
        per_worker[job.worker] += job.attempts or 0
    return per_worker


def drain_notes(notes: list[str], jobs: list[JobInfo], office: dict[str, Any]) -> None:
    """Add what went wrong on the way: failed drain jobs, duplicates and bad signatures."""
    failed = [j for j in jobs if j.status == "failed"]
    if failed:
        notes.append(f"{len(failed)} drain job(s) failed, e.g. {failed[0].error}")
    if office.get("duplicates"):
        notes.append(f"the office saw {office['duplicates']} duplicate deliveries")
    if office.get("bad_signatures"):
        notes.append(f"the office saw {office['bad_signatures']} bad signatures")


def measure_throughput(
    bench: Bench, store: str, scenario: Scenario, workers: int, template: str, n: int
) -> ThroughputRun:
    """Drain `n` due deliveries with `workers` worker processes; time wake-up to all delivered."""
    from worker.queue import wake_offices

    busy_before = bench.quiet(f"{store} {scenario.key} ×{workers}")
    url = copy_database(bench, store, template, "run")
    bench.flush_redis()
    bench.office.reset()
    env = bench.environ(url)
    redis = Redis.from_url(bench.redis_url)
    engine = plain_engine(url)
    started = start_workers(bench, env, workers)
    sweeper: subprocess.Popen[bytes] | None = None
    notes: list[str] = []
    try:
        labels = worker_labels(redis)
        bench.code_note(notes)
        meter = CpuMeter()
        meter.start()
        t0 = time.perf_counter()
        wake_offices(redis, scenario.offices)
        if scenario.sweeper:
            # Started after the wake-up: its first sweep comes when it has started (about a
            # second), then one every BRIDGE_SWEEP_INTERVAL_S, like a sweeper already running.
            sweeper = bench.procs.python("sweeper", ["worker", "sweep"], env)
        delivered = wait_drained(engine, n, t0, notes)
        seconds = time.perf_counter() - t0
        meter.stop()
        settle_jobs(redis)
        jobs = drain_jobs(redis, labels)
        statuses = delivery_statuses(engine)
        office = bench.office.stats()
        arrivals = bench.office.arrivals()
    finally:
        bench.procs.stop([*started, *([sweeper] if sweeper else [])])
        engine.dispose()
        redis.close()
    groups = {
        "workers": {p.pid for p in started},
        "sweeper": {sweeper.pid} if sweeper else set(),
        "office": {bench.office_pid},
        "redis": {bench.redis.pid},
        "bench": {os.getpid()},
    }
    per_worker = attempts_per_worker(jobs)
    drain_notes(notes, jobs, office)
    drop_database(bench, store, "run")
    return ThroughputRun(
        store=store,
        scenario=scenario,
        workers=workers,
        deliveries=n,
        delivered=delivered,
        seconds=seconds,
        steady_per_s=steady_rate([a[3] for a in arrivals]),
        jobs=jobs,
        per_worker=dict(sorted(per_worker.items())),
        per_office=dict(office.get("by_office", {})),
        cpu=meter.split(groups),
        statuses=statuses,
        office=office,
        busy_before=busy_before,
        notes=notes,
    )
