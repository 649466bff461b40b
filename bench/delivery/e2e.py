"""End to end: gunicorn, workers and the sweeper under an open-loop client; webhook to office."""

from __future__ import annotations

import dataclasses
import http.client
import json
import math
import os
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from redis import Redis
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from bench.common import (
    ROOT,
    descendants,
    read_text,
)
from bench.delivery.databases import count_delivered, drop_database, fresh_database, plain_engine
from bench.delivery.jobs import JobInfo, drain_jobs, settle_jobs, start_workers, worker_labels
from bench.delivery.shared import SENDER_HEADER, Bench, CpuMeter, processes, wait_http
from bench.samples import form_body
from harness.ports import free_port


@dataclasses.dataclass
class Send:
    """One webhook request of the open-loop client."""

    index: int
    lag_s: float  # how late it left against its schedule
    sent: float  # time.time() when the request started
    answered: float
    status: int
    reference: str


@dataclasses.dataclass
class E2ERun:
    """Webhook to back office under a steady submission rate."""

    store: str
    rate: float
    seconds: float
    warmup: float
    sends: list[Send]
    measured: list[Send]
    latencies_ms: list[float]
    intake_ms: list[float]
    after_ms: list[float]
    delivered_db: int
    office: dict[str, Any]
    jobs: int
    jobs_per_worker: dict[str, int]
    cpu: dict[str, float]
    gunicorn_workers: int
    busy_before: float
    notes: list[str]
    peak_rss_mb: dict[str, float] = dataclasses.field(default_factory=dict)
    backlog: list[tuple[float, int]] = dataclasses.field(default_factory=list)
    backlog_growth_per_s: float | None = None

    @property
    def accepted(self) -> int:
        """202 answers among the measured sends."""
        return sum(s.status == 202 for s in self.measured)

    @property
    def achieved_per_s(self) -> float:
        """Posts per second the client really sent while measuring: below the rate, it fell
        behind its schedule because the answers came too slowly (open loop, 8 threads)."""
        if len(self.measured) < 2:
            return math.nan
        span = max(s.sent for s in self.measured) - min(s.sent for s in self.measured)
        return (len(self.measured) - 1) / span if span > 0 else math.nan

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {
            "store": self.store,
            "rate": self.rate,
            "seconds": self.seconds,
            "warmup_s": self.warmup,
            "sent": len(self.sends),
            "measured_sent": len(self.measured),
            "measured_accepted": self.accepted,
            "measured_delivered": len(self.latencies_ms),
            "statuses": dict(Counter(str(s.status) for s in self.sends)),
            "delivered_in_db_all": self.delivered_db,
            "latency_ms": summary(self.latencies_ms),
            "intake_ms": summary(self.intake_ms),
            "after_answer_ms": summary(self.after_ms),
            "max_send_lag_ms": round(1000 * max((s.lag_s for s in self.sends), default=0), 1),
            "achieved_per_s": round(self.achieved_per_s, 1),
            "office": self.office,
            "jobs": self.jobs,
            "jobs_per_worker": self.jobs_per_worker,
            "cpu_s": {k: round(v, 2) for k, v in self.cpu.items()},
            "gunicorn_workers": self.gunicorn_workers,
            "machine_busy_before": round(self.busy_before, 3),
            "peak_rss_mb": {k: round(v, 1) for k, v in self.peak_rss_mb.items()},
            "backlog_pending": self.backlog,
            "backlog_growth_per_s": self.backlog_growth_per_s,
            "notes": self.notes,
        }


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(math.ceil(q / 100 * len(ordered)) - 1, 0)
    return ordered[min(rank, len(ordered) - 1)]


def summary(values: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/max (rounded)."""
    return {
        "p50": round(percentile(values, 50), 2),
        "p90": round(percentile(values, 90), 2),
        "p99": round(percentile(values, 99), 2),
        "max": round(max(values), 2) if values else math.nan,
        "n": len(values),
    }


def gunicorn_config(port: int, workers: int, errorlog: Path) -> str:
    """The project's gunicorn.conf.py with the benchmark's overrides appended."""
    base = (ROOT / "gunicorn.conf.py").read_text()
    return base + (
        "\n# --- bench.delivery overrides ---\n"
        f'bind = "127.0.0.1:{port}"\n'
        f"workers = {workers}\n"
        "accesslog = None\n"
        f"errorlog = {str(errorlog)!r}\n"
        'loglevel = "warning"\n'
    )


def open_loop(
    port: int, body: str, secret: str, rate: float, total: int, threads: int, run_id: str
) -> list[Send]:
    """Post `total` dog registrations at `rate`/s on schedule, whatever the answers take."""
    path = "/webhooks/formcycle/dog-registration"
    sends: list[Send | None] = [None] * total
    payload = body.encode()
    start = time.perf_counter() + 0.2

    def run(k: int) -> None:
        for i in range(k, total, threads):
            due = start + i / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            lag = time.perf_counter() - due
            sent = time.time()
            status, reference = 0, ""
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request(
                    "POST",
                    path,
                    payload,
                    {
                        "Content-Type": "application/x-www-form-urlencoded",
                        "Accept": "application/json",
                        SENDER_HEADER: secret,
                        "Idempotency-Key": f"{run_id}-{i}",
                    },
                )
                response = conn.getresponse()
                data = response.read()
                status = response.status
                conn.close()
                if status == 202:
                    reference = str(json.loads(data).get("reference", ""))
            except (OSError, http.client.HTTPException, ValueError):
                status = status or -1
            sends[i] = Send(i, lag, sent, time.time(), status, reference)

    pool = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return [s for s in sends if s is not None]


def peak_rss_mb(pids: set[int]) -> dict[int, float]:
    """Each live process's peak resident set (VmHWM) in MiB, read before it is stopped."""
    out: dict[int, float] = {}
    for pid in pids:
        for line in read_text(f"/proc/{pid}/status").splitlines():
            if line.startswith("VmHWM:"):
                out[pid] = int(line.split()[1]) / 1024
    return out


class Backlog:
    """Samples the pending deliveries twice a second while the load runs (is it flat?)."""

    def __init__(self, engine: Engine, started: float) -> None:
        """Sample `engine`'s deliveries; times are seconds since `started` (perf_counter)."""
        self.engine = engine
        self.started = started
        self.samples: list[tuple[float, int]] = []
        self.missed = 0  # samples the busy store could not answer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                with self.engine.connect() as conn:
                    query = text("SELECT count(*) FROM deliveries WHERE status = 'pending'")
                    pending = int(conn.execute(query).scalar_one())
            except SQLAlchemyError:
                self.missed += 1
                continue
            self.samples.append((round(time.perf_counter() - self.started, 2), pending))

    def start(self) -> None:
        """Start sampling."""
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join(5)

    def growth_per_s(self, after_s: float) -> float | None:
        """Least-squares slope of the backlog after the warm-up (deliveries/s; ~0 is flat)."""
        points = [(t, n) for t, n in self.samples if t >= after_s]
        if len(points) < 3:
            return None
        mean_t = sum(t for t, _ in points) / len(points)
        mean_n = sum(n for _, n in points) / len(points)
        var = sum((t - mean_t) ** 2 for t, _ in points)
        cov = sum((t - mean_t) * (n - mean_n) for t, n in points)
        return round(cov / var, 2) if var else None


@dataclasses.dataclass
class Latencies:
    """The measured sends and, for each delivered one, its three latencies in ms."""

    measured: list[Send]
    total: list[float]  # arrival at the office − send
    intake: list[float]  # answer − send
    after: list[float]  # arrival at the office − answer


def start_gunicorn(
    bench: Bench, store: str, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], int]:
    """gunicorn with the project's config and the overrides, on a free port (not yet ready)."""
    port = free_port()
    conf = bench.workdir / f"gunicorn-{store}.conf.py"
    conf.write_text(
        gunicorn_config(
            port, bench.opts.gunicorn_workers, bench.workdir / "logs" / "gunicorn-error.log"
        )
    )
    web = bench.procs.python(
        "gunicorn", ["gunicorn", "--config", str(conf), "bridge:create_app()"], env
    )
    return web, port


def wait_delivered(engine: Engine, accepted: int, timeout_s: float = 60) -> int:
    """Poll the delivered count until it reaches `accepted` or the time runs out; the count."""
    deadline = time.monotonic() + timeout_s
    delivered = count_delivered(engine)
    while delivered < accepted and time.monotonic() < deadline:
        time.sleep(0.05)
        delivered = count_delivered(engine)
    return delivered


def peak_rss_by_role(
    web: subprocess.Popen[bytes],
    workers: list[subprocess.Popen[bytes]],
    sweeper: subprocess.Popen[bytes],
) -> dict[str, float]:
    """The largest peak resident set (MiB) of a web worker, a delivery worker, the sweeper."""
    # gunicorn's arbiter is left out: its children serve the requests.
    web_pids = descendants(processes(), web.pid) - {web.pid}
    return {
        "web worker": max(peak_rss_mb(web_pids).values(), default=math.nan),
        "delivery worker": max(peak_rss_mb({p.pid for p in workers}).values(), default=math.nan),
        "sweeper": max(peak_rss_mb({sweeper.pid}).values(), default=math.nan),
    }


def delivery_latencies(
    sends: list[Send], warm: int, arrivals: list[tuple[str, str, str, float]]
) -> Latencies:
    """Each measured, accepted send against the first arrival of its reference at an office."""
    first: dict[str, float] = {}
    for _, reference, _, at in arrivals:
        first.setdefault(reference, at)
    measured = [s for s in sends if s.index >= warm]
    out = Latencies(measured, [], [], [])
    for s in measured:
        if s.status == 202 and s.reference in first:
            out.total.append(1000 * (first[s.reference] - s.sent))
            out.intake.append(1000 * (s.answered - s.sent))
            out.after.append(1000 * (first[s.reference] - s.answered))
    return out


def cpu_by_role(
    bench: Bench,
    meter: CpuMeter,
    web: subprocess.Popen[bytes],
    started: list[subprocess.Popen[bytes]],
) -> dict[str, float]:
    """CPU seconds of gunicorn, the two workers, the sweeper, the office, Redis and the bench."""
    return meter.split(
        {
            "gunicorn": {web.pid},
            "workers": {p.pid for p in started[1:3]},
            "sweeper": {started[3].pid} if len(started) > 3 else set(),
            "office": {bench.office_pid},
            "redis": {bench.redis.pid},
            "bench": {os.getpid()},
        }
    )


def run_notes(notes: list[str], office: dict[str, Any], jobs: list[JobInfo]) -> None:
    """Add what went wrong on the way: bad signatures at the office, failed drain jobs."""
    if office.get("bad_signatures"):
        notes.append(f"the office saw {office['bad_signatures']} bad signatures")
    failed = [j for j in jobs if j.status == "failed"]
    if failed:
        notes.append(f"{len(failed)} drain job(s) failed, e.g. {failed[0].error}")


def measure_e2e(bench: Bench, store: str) -> E2ERun:
    """gunicorn + 2 workers + sweeper; open-loop submissions; arrival − send per delivery."""
    opts = bench.opts
    busy_before = bench.quiet(f"{store} end to end")
    url = fresh_database(bench, store, "e2e")
    bench.flush_redis()
    bench.office.reset()
    env = bench.environ(url)
    web, port = start_gunicorn(bench, store, env)
    # Every process started so far, in order: the finally stops them whatever failed.
    started: list[subprocess.Popen[bytes]] = [web]
    redis = Redis.from_url(bench.redis_url)
    engine = plain_engine(url)
    notes: list[str] = []
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", web, "gunicorn")
        workers = start_workers(bench, env, 2)
        started += workers
        sweeper = bench.procs.python("sweeper", ["worker", "sweep"], env)
        started.append(sweeper)
        labels = worker_labels(redis)
        bench.code_note(notes)
        warm = round(opts.warmup * opts.rate)
        total = warm + round(opts.seconds * opts.rate)
        run_id = uuid.uuid4().hex[:10]
        meter = CpuMeter()
        meter.start()
        backlog = Backlog(engine, time.perf_counter())
        backlog.start()
        sends = open_loop(
            port, form_body("dog-registration"), bench.keys.formcycle, opts.rate, total,
            opts.client_threads, run_id,
        )  # fmt: skip
        backlog.stop()
        accepted_all = sum(s.status == 202 for s in sends)
        delivered = wait_delivered(engine, accepted_all)
        meter.stop()
        if delivered < accepted_all:
            notes.append(f"only {delivered} of {accepted_all} accepted were delivered after 60 s")
        settle_jobs(redis)
        rss = peak_rss_by_role(web, workers, sweeper)
        jobs = drain_jobs(redis, labels)
        office = bench.office.stats()
        arrivals = bench.office.arrivals()
    finally:
        bench.procs.stop(list(reversed(started)))
        engine.dispose()
        redis.close()
    drop_database(bench, store, "e2e")
    lat = delivery_latencies(sends, warm, arrivals)
    per_worker: Counter[str] = Counter(j.worker for j in jobs)
    cpu = cpu_by_role(bench, meter, web, started)
    run_notes(notes, office, jobs)
    return E2ERun(
        store=store,
        rate=opts.rate,
        seconds=opts.seconds,
        warmup=opts.warmup,
        sends=sends,
        measured=lat.measured,
        latencies_ms=lat.total,
        intake_ms=lat.intake,
        after_ms=lat.after,
        delivered_db=delivered,
        office=office,
        jobs=len(jobs),
        jobs_per_worker=dict(sorted(per_worker.items())),
        cpu=cpu,
        gunicorn_workers=opts.gunicorn_workers,
        busy_before=busy_before,
        notes=notes,
        peak_rss_mb=rss,
        backlog=backlog.samples,
        backlog_growth_per_s=backlog.growth_per_s(opts.warmup),
    )
