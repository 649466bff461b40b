"""Delivery benchmark: deliveries per second through RQ workers, and webhook-to-office latency.

    python -m bench.delivery [--deliveries 3000] [--stores sqlite,postgres] [--rate 100]
                             [--seconds 20] [--batch N] [--profile]

Per store (SQLite, PostgreSQL), in one run:

1. **Throughput.** N submissions are stored through the service's own intake (the Flask test
   client posting to `/webhooks/formcycle/<service>`; no worker runs), so N deliveries are
   pending and due. Each measured row starts from a copy of that database, starts 1 or 2
   `python -m worker work` processes, wakes the office(s) with `worker.queue.wake_offices`
   and times until every delivery is `delivered` in the database. Scenarios: one office (all
   dog registrations, one drain job), one office with the sweeper running (it wakes the
   office again while the first job drains, so a second job can start), and two offices
   (dog registrations and traffic orders, one job each).
2. **Plain loop.** The same envelopes (`integrations.channels.envelopes.build_envelopes`, rendered by the
   http-json channel and signed as `post_signed` signs) POSTed in one `requests.Session` loop
   to the same back office, timed without building or signing; next to it the channel's own
   `deliver()` in a loop, and the plain loop against the DemoBackOffice.
3. **Phases.** `worker.jobs.drain_office` run in this process on another copy, with every
   step of the drain path timed (claim, build, decrypt, render, HTTP, answer, log, record,
   metrics); with `--profile` also a cProfile of a further drain.
4. **End to end.** gunicorn (`bridge:create_app()`), 2 workers and the sweeper on a fresh
   database; an open-loop client posts `--rate` dog registrations per second for `--seconds`
   (after `--warmup`), each with its own Idempotency-Key. The back office notes when each
   delivery arrives; latency = arrival − the moment the client started the webhook request
   (both `time.time()` on this machine).

The back office is `bench/fast_office.py` (its own process, answers 201 at once). Redis is a
private `redis-server` on a free port; PostgreSQL databases `bench_delivery_*` are created
and dropped. Results go to bench/results/delivery-<date>[-tag].md and .json.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import dataclasses
import datetime as dt
import hashlib
import http.client
import io
import json
import logging
import math
import os
import pstats
import re
import secrets
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from redis import Redis
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from bench.common import (
    CLK_TCK,
    PRODUCTION,
    ROOT,
    Snapshot,
    busy_cpu_s,
    descendants,
    free_port,
    read_text,
    version_of,
)
from bench.common import (
    machine as machine_basics,
)
from bench.samples import form_body
from domain.settings import Settings
from infra.crypto import Vault, generate_key
from infra.logs import JsonFormatter
from store.engine import Store, make_engine, normalise_database_url
from store.migrations import upgrade

RESULTS = ROOT / "bench" / "results"
DOG_OFFICE = "usingen-steueramt"  # a dog registration from Neu-Anspach goes to the tax office
TRAFFIC_OFFICE = "neu-anspach-ordnungsamt"  # a traffic order in Usingen goes to public order
OFFICE_LABEL = {DOG_OFFICE: "tax", TRAFFIC_OFFICE: "public order"}
SHIPPED_OFFICE_URL = "http://127.0.0.1:8090"
SENDER_HEADER = "X-Bridge-Secret"
AIM_RATE = 500.0
AIM_RATIO = 0.65
AIM_P50_MS = 20.0
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
PG_PREFIX = "bench_delivery_"
OWN_ENV = ("BRIDGE_", "DATABASE_URL", "REDIS_URL", "GUNICORN")


# --- options ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Scenario:
    """Which deliveries are pending, which offices are woken, whether the sweeper runs."""

    key: str
    label: str
    offices: tuple[str, ...]
    template: str  # "one": N dog registrations; "two": N/2 dog + N/2 traffic orders
    sweeper: bool


SCENARIOS = {
    "one": Scenario("one", "1 office", (DOG_OFFICE,), "one", False),
    "one-swept": Scenario("one-swept", "1 office + sweeper", (DOG_OFFICE,), "one", True),
    "two": Scenario("two", "2 offices", (DOG_OFFICE, TRAFFIC_OFFICE), "two", False),
}


@dataclasses.dataclass
class Options:
    """Parsed command line."""

    deliveries: int
    stores: list[str]
    rate: float
    seconds: float
    warmup: float
    workers: list[int]
    scenarios: list[Scenario]
    batch: int | None
    log_level: str
    sweep_interval_s: float | None
    gunicorn_workers: int
    client_threads: int
    demo_posts: int
    e2e: bool
    throughput: bool
    profile: bool
    variants: bool
    postgres_url: str
    idle_wait: float
    idle_threshold: float
    tag: str
    output: Path
    argv: list[str]


# --- machine and processes ----------------------------------------------------------------


def processes() -> Snapshot:
    """Every process as pid -> (command name, parent pid, CPU seconds used so far)."""
    out: Snapshot = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = read_text(f"/proc/{entry}/stat")
        if not stat:
            continue
        comm = stat[stat.find("(") + 1 : stat.rfind(")")]
        fields = stat[stat.rfind(")") + 2 :].split()
        out[int(entry)] = (comm, int(fields[1]), (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return out


def ancestors(procs: Snapshot, pid: int) -> set[int]:
    """The parents of `pid` up to init."""
    found: set[int] = set()
    while pid in procs and pid not in found and pid > 1:
        found.add(pid)
        pid = procs[pid][1]
    return found


class CpuMeter:
    """CPU seconds used between `start()` and `stop()`, split by groups of processes."""

    def __init__(self) -> None:
        """Nothing measured yet."""
        self.before: Snapshot = {}
        self.after: Snapshot = {}
        self.busy = 0.0
        self.wall = 0.0

    def start(self) -> None:
        """Take the first snapshot."""
        self.before = processes()
        self.busy = busy_cpu_s()
        self.wall = time.perf_counter()

    def stop(self) -> None:
        """Take the second snapshot (before stopping the measured processes)."""
        self.after = processes()
        self.busy = busy_cpu_s() - self.busy
        self.wall = time.perf_counter() - self.wall

    def split(self, groups: dict[str, set[int]]) -> dict[str, float]:
        """CPU seconds per group (roots expanded to their descendants), postgres and the rest."""

        def used(pids: set[int]) -> float:
            # A process that started meanwhile (a database connection, the sweeper) used all
            # of its CPU time during the measurement; one that ended meanwhile is not seen.
            return sum(
                self.after[p][2] - (self.before[p][2] if p in self.before else 0.0)
                for p in pids
                if p in self.after
            )

        out: dict[str, float] = {}
        taken: set[int] = set()
        for name, roots in groups.items():
            pids: set[int] = set()
            for root in roots:
                pids |= descendants(self.after, root)
            pids -= taken
            taken |= pids
            out[name] = used(pids)
        pg = {p for p, (comm, _, _) in self.after.items() if comm.startswith("postgres")}
        out["postgres"] = used(pg - taken)
        out["other"] = max(self.busy - sum(out.values()), 0.0)
        out["machine"] = self.busy
        out["wall"] = self.wall
        return out


def disturbed(cpu: dict[str, float]) -> bool:
    """Whether processes not part of the measurement took over a tenth of the machine."""
    capacity = (os.cpu_count() or 1) * cpu.get("wall", 0.0)
    return cpu.get("other", 0.0) > 0.1 * capacity


WATCHED = ("bridge", "domain", "worker", "schemas", "config")


def code_hashes() -> dict[str, str]:
    """A hash of every source file of the service (others may edit it while this runs)."""
    out = {}
    for folder in WATCHED:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in (".py", ".toml") and "__pycache__" not in path.parts:
                out[str(path.relative_to(ROOT))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


BENCH_ARG = re.compile(r"^bench[./][A-Za-z_]\w*")


def other_benchmarks() -> list[str]:
    """Command lines of benchmarks (`python -m bench.X`, `bench/X.py`) that are not ours."""
    procs = processes()
    mine = descendants(procs, os.getpid()) | ancestors(procs, os.getpid())
    found = []
    for pid in procs:
        if pid in mine:
            continue
        raw = Path(f"/proc/{pid}/cmdline")
        try:
            args = raw.read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in args if a]
        if any(BENCH_ARG.match(w) for w in words[1:]) and "python" in " ".join(words[:2]):
            found.append(f"{pid} {' '.join(words)[:120]}")
    return found


def wait_until_alone(max_wait_s: float, threshold: float) -> tuple[float, list[str]]:
    """Wait until no other benchmark runs and the machine is nearly idle.

    Returns the busy share (0..1) of the last 2-second sample and the benchmarks still
    running when the wait gave up (empty when it did not).
    """
    deadline = time.monotonic() + max_wait_s
    cpus = os.cpu_count() or 1
    said = False
    while True:
        others = other_benchmarks()
        before = busy_cpu_s()
        time.sleep(2.0)
        share = (busy_cpu_s() - before) / (2.0 * cpus)
        if (not others and share <= threshold) or time.monotonic() >= deadline:
            if said:
                print("] ", end="", flush=True)
            return share, others
        if not said:
            print("[waiting: ", end="", flush=True)
            said = True
        print(f"{'other benchmark, ' if others else ''}{share:.0%} ", end="", flush=True)


class Procs:
    """Processes this benchmark started; each is stopped by its own handle, never by name."""

    def __init__(self, log_dir: Path) -> None:
        """Logs of the processes go to `log_dir`."""
        self.log_dir = log_dir
        self.running: list[subprocess.Popen[bytes]] = []
        self.counter = 0

    def start(
        self, name: str, argv: Sequence[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a process with the given environment added to a cleaned copy of ours."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(OWN_ENV)}
        base.update(env or {})
        base["PYTHONPATH"] = str(ROOT)
        self.counter += 1
        log = (self.log_dir / f"{self.counter:03d}-{name}.log").open("ab")
        proc = subprocess.Popen(
            list(argv), cwd=ROOT, env=base, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        self.running.append(proc)
        return proc

    def python(
        self, name: str, args: Sequence[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start `python -m <args>`."""
        return self.start(name, [sys.executable, "-m", *args], env)

    def stop(self, procs: Sequence[subprocess.Popen[bytes]]) -> None:
        """SIGTERM the given processes and wait; SIGKILL those that do not end."""
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            if proc in self.running:
                self.running.remove(proc)

    def stop_all(self) -> None:
        """Stop everything still running (newest first)."""
        self.stop(list(reversed(self.running)))


def wait_http(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 60) -> None:
    """Wait until GET `url` answers at all, or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise SystemExit(f"{what} did not start ({url})")


# --- the bench's surroundings ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Keys:
    """Secrets shared by every process of the run (so that copied databases decrypt)."""

    encryption: str
    formcycle: str
    formcycle_signing: str
    office_signing: str

    @classmethod
    def new(cls) -> Keys:
        """Fresh random keys."""

        def whsec() -> str:
            return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()

        return cls(generate_key(), secrets.token_urlsafe(32), whsec(), whsec())


class OfficeClient:
    """Talks to the fast office's control endpoints."""

    def __init__(self, url: str) -> None:
        """`url` like http://127.0.0.1:8091."""
        self.url = url
        self.http = requests.Session()

    def reset(self) -> None:
        """Forget every arrival."""
        self.http.post(f"{self.url}/_reset", timeout=10).raise_for_status()

    def stats(self) -> dict[str, Any]:
        """Counts and first/last arrival."""
        answer: dict[str, Any] = self.http.get(f"{self.url}/_stats", timeout=10).json()
        return answer

    def arrivals(self) -> list[tuple[str, str, str, float]]:
        """Every arrival as (delivery id, reference, office, time)."""
        rows = self.http.get(f"{self.url}/_arrivals", timeout=60).json()
        return [(str(a), str(b), str(c), float(d)) for a, b, c, d in rows]


@dataclasses.dataclass
class Bench:
    """What every measurement shares: options, folders, keys, Redis, the back offices."""

    opts: Options
    workdir: Path
    procs: Procs
    keys: Keys
    redis_base: str  # redis://127.0.0.1:<port> (db 0: the runs, db 1: preparation)
    redis_pid: int
    office: OfficeClient
    office_pid: int
    demo_url: str | None
    notes: list[str] = dataclasses.field(default_factory=list)
    waits: list[str] = dataclasses.field(default_factory=list)
    code_start: dict[str, str] = dataclasses.field(default_factory=code_hashes)

    def code_changes(self) -> list[str]:
        """Service files changed since the benchmark started (processes started now load them)."""
        now = code_hashes()
        names = set(now) | set(self.code_start)
        return sorted(n for n in names if now.get(n) != self.code_start.get(n))

    def code_note(self, notes: list[str]) -> None:
        """Add a note when the processes just started run on code changed since the start."""
        changed = self.code_changes()
        if changed:
            notes.append(
                "ran on service code changed since the benchmark started: " + ", ".join(changed)
            )

    @property
    def redis_url(self) -> str:
        """The Redis database the measured processes use."""
        return f"{self.redis_base}/0"

    def config_for(self, office_base: str) -> Path:
        """The shipped routing configuration pointed at a back office (default timeouts)."""
        name = re.sub(r"\W", "_", office_base)
        path = self.workdir / f"routing-{name}.toml"
        if not path.exists():
            shipped = (ROOT / "config" / "routing.toml").read_text(encoding="utf-8")
            path.write_text(shipped.replace(SHIPPED_OFFICE_URL, office_base), encoding="utf-8")
        return path

    def environ(
        self, database_url: str, redis_url: str | None = None, log_level: str | None = None
    ) -> dict[str, str]:
        """The service's environment (like tests.conftest.base_environ, keys of the run)."""
        env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url or self.redis_url,
            "BRIDGE_CONFIG": str(self.config_for(self.office.url)),
            "BRIDGE_ENCRYPTION_KEYS": self.keys.encryption,
            "BRIDGE_SECRET_FORMCYCLE": self.keys.formcycle,
            "BRIDGE_SECRET_FORMCYCLE_SIGNING": self.keys.formcycle_signing,
            "BRIDGE_SECRET_OFFICE_SIGNING": self.keys.office_signing,
            "BRIDGE_SECRET_EPAY21_PASSWORD": self.keys.formcycle,  # no provider is called
            "BRIDGE_LOG_LEVEL": log_level or self.opts.log_level,
            "BRIDGE_LOG_FORMAT": "json",
            "BRIDGE_PUBLIC_URL": "http://127.0.0.1:8000",
        }
        if self.opts.batch is not None:
            env["BRIDGE_DELIVERY_BATCH"] = str(self.opts.batch)
        if self.opts.sweep_interval_s is not None:
            env["BRIDGE_SWEEP_INTERVAL_S"] = str(self.opts.sweep_interval_s)
        return env

    def quiet(self, what: str) -> float:
        """Wait for no other benchmark and an idle machine; note it if the wait gave up."""
        if self.opts.idle_wait <= 0:
            return 0.0
        share, others = wait_until_alone(self.opts.idle_wait, self.opts.idle_threshold)
        if others:
            self.waits.append(f"{what}: other benchmark(s) still running: {'; '.join(others)}")
        elif share > self.opts.idle_threshold:
            self.waits.append(f"{what}: the machine was {share:.0%} busy before the run")
        return share

    def flush_redis(self, db: int = 0) -> None:
        """Empty one of the private Redis databases."""
        client = Redis.from_url(f"{self.redis_base}/{db}")
        try:
            client.flushdb()
        finally:
            client.close()


@contextmanager
def surroundings(opts: Options) -> Iterator[Bench]:
    """A temporary folder, a private redis-server, the fast office and (optionally) the demo."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install -y redis-server)")
    with tempfile.TemporaryDirectory(prefix="bench-delivery-") as tmp:
        workdir = Path(tmp)
        (workdir / "logs").mkdir()
        procs = Procs(workdir / "logs")
        keys = Keys.new()
        try:
            port = free_port()
            redis_proc = procs.start(
                "redis",
                [
                    binary,
                    *("--port", str(port), "--bind", "127.0.0.1"),
                    *("--save", "", "--appendonly", "no"),
                ],
            )
            redis_base = f"redis://127.0.0.1:{port}"
            for _ in range(200):
                try:
                    Redis.from_url(redis_base).ping()
                    break
                except Exception:
                    time.sleep(0.05)
            office_port = free_port()
            office_proc = procs.python(
                "fast-office",
                [
                    "bench.fast_office",
                    f"--port={office_port}",
                    f"--signing-secret={keys.office_signing}",
                ],
            )
            office_url = f"http://127.0.0.1:{office_port}"
            wait_http(f"{office_url}/healthz", office_proc, "the fast office")
            demo_url = None
            if opts.demo_posts > 0:
                demo_port = free_port()
                demo_proc = procs.python(
                    "demo-backoffice",
                    [
                        "demo_backoffice",
                        f"--port={demo_port}",
                        f"--smtp-port={free_port()}",
                        f"--signing-secret={keys.office_signing}",
                    ],
                )
                demo_url = f"http://127.0.0.1:{demo_port}"
                wait_http(f"{demo_url}/healthz", demo_proc, "the demo back office")
            yield Bench(
                opts,
                workdir,
                procs,
                keys,
                redis_base,
                redis_proc.pid,
                OfficeClient(office_url),
                office_proc.pid,
                demo_url,
            )
        finally:
            procs.stop_all()
            if "postgres" in opts.stores:
                drop_postgres_databases(opts.postgres_url)


# --- stores ---------------------------------------------------------------------------------


def pg_url(admin_url: str, name: str) -> str:
    """The URL of database `name` on the admin URL's server."""
    return normalise_database_url(admin_url).rsplit("/", 1)[0] + f"/{PG_PREFIX}{name}"


def pg_admin(admin_url: str, *statements: str) -> None:
    """Run statements in autocommit on the admin database."""
    admin = create_engine(normalise_database_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        admin.dispose()


def drop_postgres_databases(admin_url: str) -> None:
    """Drop every bench_delivery_* database."""
    admin = create_engine(normalise_database_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            names = conn.execute(
                text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
                {"p": f"{PG_PREFIX}%"},
            ).scalars()
            for name in list(names):
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def sqlite_path(bench: Bench, name: str) -> Path:
    """Where database `name` lives on SQLite."""
    return bench.workdir / f"{name}.db"


def remove_sqlite(path: Path) -> None:
    """Delete a SQLite database and its WAL files."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def fresh_database(bench: Bench, store: str, name: str) -> str:
    """A new, migrated, empty database called `name`; returns its URL."""
    if store == "sqlite":
        path = sqlite_path(bench, name)
        remove_sqlite(path)
        url = f"sqlite:///{path}"
    else:
        pg_admin(
            bench.opts.postgres_url,
            f'DROP DATABASE IF EXISTS "{PG_PREFIX}{name}" WITH (FORCE)',
            f'CREATE DATABASE "{PG_PREFIX}{name}"',
        )
        url = pg_url(bench.opts.postgres_url, name)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def seal_template(store: str, url: str) -> None:
    """Make a prepared database copyable: SQLite's WAL folded into the main file."""
    if store == "sqlite":
        conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()


def copy_database(bench: Bench, store: str, template: str, name: str) -> str:
    """A copy of database `template` called `name`; returns its URL."""
    if store == "sqlite":
        source, target = sqlite_path(bench, template), sqlite_path(bench, name)
        remove_sqlite(target)
        shutil.copyfile(source, target)
        return f"sqlite:///{target}"
    pg_admin(
        bench.opts.postgres_url,
        f'DROP DATABASE IF EXISTS "{PG_PREFIX}{name}" WITH (FORCE)',
        f'CREATE DATABASE "{PG_PREFIX}{name}" TEMPLATE "{PG_PREFIX}{template}"',
    )
    return pg_url(bench.opts.postgres_url, name)


def drop_database(bench: Bench, store: str, name: str) -> None:
    """Remove database `name`."""
    if store == "sqlite":
        remove_sqlite(sqlite_path(bench, name))
    else:
        pg_admin(
            bench.opts.postgres_url, f'DROP DATABASE IF EXISTS "{PG_PREFIX}{name}" WITH (FORCE)'
        )


def plain_engine(url: str) -> Engine:
    """An engine for the benchmark's own reads: no BEGIN IMMEDIATE, so it never takes the
    SQLite write lock that the workers need (the service's `make_engine` does at every BEGIN)."""
    return create_engine(normalise_database_url(url))


def delivery_statuses(engine: Engine) -> dict[str, int]:
    """Deliveries per status."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT status, count(*) FROM deliveries GROUP BY status"))
        return {str(s): int(n) for s, n in rows}


def count_delivered(engine: Engine) -> int:
    """Deliveries in status delivered."""
    with engine.connect() as conn:
        query = text("SELECT count(*) FROM deliveries WHERE status = 'delivered'")
        return int(conn.execute(query).scalar_one())


def sqlite_notes() -> dict[str, str]:
    """The pragmas the service's engine sets on SQLite (read back, not assumed)."""
    with tempfile.TemporaryDirectory(prefix="bench-delivery-probe-") as tmp:
        engine = make_engine(f"sqlite:///{tmp}/probe.db")
        try:
            with engine.connect() as conn:
                names = ("journal_mode", "synchronous", "busy_timeout")
                found = {n: str(conn.exec_driver_sql(f"PRAGMA {n}").scalar()) for n in names}
        finally:
            engine.dispose()
    levels = {"0": "OFF", "1": "NORMAL", "2": "FULL", "3": "EXTRA"}
    found["synchronous"] = levels.get(found["synchronous"], found["synchronous"])
    return found


def postgres_notes(url: str) -> dict[str, str]:
    """Server settings that decide the cost of a commit."""
    names = ("server_version", "synchronous_commit", "fsync", "shared_buffers")
    engine = create_engine(normalise_database_url(url))
    try:
        with engine.connect() as conn:
            return {n: str(conn.execute(text(f"SHOW {n}")).scalar()) for n in names}
    finally:
        engine.dispose()


# --- preparation ----------------------------------------------------------------------------


def prepare_template(bench: Bench, store: str, kind: str, n: int) -> tuple[str, float]:
    """Store `n` submissions through the intake (no worker runs); returns (URL, seconds)."""
    from bridge import create_app

    name = f"tpl_{kind}"
    url = fresh_database(bench, store, name)
    bench.flush_redis(1)
    settings = Settings.from_env(
        bench.environ(url, redis_url=f"{bench.redis_base}/1", log_level="WARNING")
    )
    app = create_app(settings)
    client = app.test_client()
    bodies = {s: form_body(s) for s in ("dog-registration", "traffic-order")}
    started = time.perf_counter()
    try:
        for i in range(n):
            service = "dog-registration" if kind == "one" or i % 2 == 0 else "traffic-order"
            answer = client.post(
                f"/webhooks/formcycle/{service}",
                data=bodies[service],
                headers={
                    SENDER_HEADER: bench.keys.formcycle,
                    "Idempotency-Key": f"prep-{kind}-{i}",
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Accept": "application/json",
                },
            )
            if answer.status_code != 202 or answer.headers.get("Idempotent-Replayed"):
                raise SystemExit(
                    f"preparation: submission {i} got {answer.status_code}: "
                    f"{answer.get_data(as_text=True)[:500]}"
                )
    finally:
        bridge = app.extensions["bridge"]
        bridge.store.dispose()
        bridge.redis.close()
    seconds = time.perf_counter() - started
    bench.flush_redis(1)
    engine = plain_engine(url)
    try:
        statuses = delivery_statuses(engine)
    finally:
        engine.dispose()
    if statuses != {"pending": n}:
        raise SystemExit(f"preparation: expected {n} pending deliveries, found {statuses}")
    seal_template(store, url)
    return url, seconds


# --- throughput with worker processes --------------------------------------------------------


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


def steady_rate(times: list[float]) -> float | None:
    """Arrivals per second between the 10th and the 90th percentile arrival."""
    if len(times) < 20:
        return None
    times = sorted(times)
    lo, hi = len(times) // 10, len(times) * 9 // 10
    span = times[hi] - times[lo]
    return (hi - lo) / span if span > 0 else None


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
        "redis": {bench.redis_pid},
        "bench": {os.getpid()},
    }
    per_worker: Counter[str] = Counter()
    for job in jobs:
        per_worker[job.worker] += job.attempts or 0
    failed = [j for j in jobs if j.status == "failed"]
    if failed:
        notes.append(f"{len(failed)} drain job(s) failed, e.g. {failed[0].error}")
    if office.get("duplicates"):
        notes.append(f"the office saw {office['duplicates']} duplicate deliveries")
    if office.get("bad_signatures"):
        notes.append(f"the office saw {office['bad_signatures']} bad signatures")
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


# --- plain loops ----------------------------------------------------------------------------


@dataclasses.dataclass
class LoopRun:
    """One single-process loop posting the same envelopes."""

    store: str
    name: str
    office: str
    posts: int
    seconds: float
    statuses: dict[int, int]
    cpu_s: float

    @property
    def per_s(self) -> float:
        """Posts per second."""
        return self.posts / self.seconds if self.seconds else 0.0

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {
            "store": self.store,
            "loop": self.name,
            "office": self.office,
            "posts": self.posts,
            "seconds": round(self.seconds, 3),
            "per_s": round(self.per_s, 1),
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "bench_cpu_s": round(self.cpu_s, 2),
        }


@dataclasses.dataclass
class Posts:
    """The envelopes of a prepared database, with the bytes and headers the channel sends."""

    office_id: str
    envelopes: list[Any]
    bodies: list[tuple[bytes, dict[str, str]]]
    channel: Any
    case_path: str  # /cases/<office>
    build_seconds: float
    render_seconds: float


def build_posts(bench: Bench, url: str, office_id: str) -> Posts:
    """Build every pending envelope of `office_id` and render and sign it like the channel."""
    from sqlalchemy import select

    from infra.standard_webhooks import sign
    from integrations.channels import channels
    from integrations.channels.envelopes import build_envelopes
    from integrations.channels.webhook import USER_AGENT, WebhookChannel, signing_key
    from store.models import Delivery

    settings = Settings.from_env(bench.environ(url))
    store = Store.from_url(url)
    vault = Vault(settings.encryption_keys)
    office = settings.config.offices[office_id]
    channel = channels[office.channel](office.id, office.options, settings.secrets)
    if not isinstance(channel, WebhookChannel):
        raise SystemExit(f"office {office_id} does not use a webhook channel")
    try:
        with store.read() as session:
            ids = list(
                session.scalars(
                    select(Delivery.id)
                    .where(Delivery.office_id == office_id)
                    .order_by(Delivery.next_attempt_at)
                )
            )
        t0 = time.perf_counter()
        envelopes = []
        for i in range(0, len(ids), 500):
            envelopes += build_envelopes(settings, store, vault, ids[i : i + 500])
        t1 = time.perf_counter()
    finally:
        store.dispose()
    key = signing_key(settings.secrets["BRIDGE_SECRET_OFFICE_SIGNING"])
    bodies = []
    for envelope in envelopes:
        body = channel.render(envelope)
        stamp = int(time.time())
        headers = {
            "Content-Type": channel.content_type,
            "User-Agent": USER_AGENT,
            "webhook-id": envelope.delivery_id,
            "webhook-timestamp": str(stamp),
            "Idempotency-Key": envelope.delivery_id,
            "webhook-signature": sign(key, envelope.delivery_id, stamp, body),
        }
        bodies.append((body, headers))
    t2 = time.perf_counter()
    path = urlsplit(str(channel.options["url"])).path
    return Posts(office_id, envelopes, bodies, channel, path, t1 - t0, t2 - t1)


def own_cpu_s() -> float:
    """CPU seconds of this process so far (all threads)."""
    return time.process_time()


def plain_loop(
    store: str,
    posts: Posts,
    base: str,
    office: str,
    limit: int | None = None,
    trust_env: bool = True,
) -> LoopRun:
    """POST the prepared bodies one after the other over one keep-alive session."""
    session = requests.Session()
    session.trust_env = trust_env
    url = base + posts.case_path
    statuses: Counter[int] = Counter()
    bodies = posts.bodies[:limit]
    cpu0 = own_cpu_s()
    t0 = time.perf_counter()
    for body, headers in bodies:
        response = session.post(url, data=body, headers=headers, timeout=(5, 30))
        _ = response.content
        statuses[response.status_code] += 1
    seconds = time.perf_counter() - t0
    cpu = own_cpu_s() - cpu0
    session.close()
    name = "plain requests loop" + ("" if trust_env else ", Session.trust_env = False")
    return LoopRun(store, name, office, len(bodies), seconds, dict(statuses), cpu)


def channel_loop(store: str, posts: Posts, office: str) -> LoopRun:
    """`channel.deliver()` (render, sign, post_signed, read the answer) in a loop."""
    from integrations.channels import DeliveryError

    session = requests.Session()
    statuses: Counter[int] = Counter()
    cpu0 = own_cpu_s()
    t0 = time.perf_counter()
    for envelope in posts.envelopes:
        try:
            receipt = posts.channel.deliver(envelope, session)
            statuses[int(receipt.status_code or 0)] += 1
        except DeliveryError as exc:
            statuses[int(exc.status_code or 0)] += 1
    seconds = time.perf_counter() - t0
    cpu = own_cpu_s() - cpu0
    session.close()
    return LoopRun(
        store, "channel.deliver() loop", office, len(posts.envelopes), seconds, dict(statuses), cpu
    )


def measure_loops(bench: Bench, store: str, template: str) -> tuple[list[LoopRun], Posts]:
    """The plain loop and the channel loop to the fast office; the plain loop to the demo."""
    url = copy_database(bench, store, template, "loop")
    try:
        posts = build_posts(bench, url, DOG_OFFICE)
    finally:
        drop_database(bench, store, "loop")
    runs = []
    bench.quiet(f"{store} plain loop")
    bench.office.reset()
    runs.append(plain_loop(store, posts, bench.office.url, "fast office"))
    bench.quiet(f"{store} plain loop without trust_env")
    bench.office.reset()
    runs.append(plain_loop(store, posts, bench.office.url, "fast office", trust_env=False))
    bench.quiet(f"{store} channel loop")
    bench.office.reset()
    runs.append(channel_loop(store, posts, "fast office"))
    if bench.demo_url is not None:
        bench.quiet(f"{store} plain loop to the demo")
        requests.post(f"{bench.demo_url}/_reset", timeout=10)
        runs.append(
            plain_loop(store, posts, bench.demo_url, "DemoBackOffice", bench.opts.demo_posts)
        )
        requests.post(f"{bench.demo_url}/_reset", timeout=10)
    bench.office.reset()
    for run in runs:
        print(f"  {run.name} → {run.office}: {run.per_s:,.0f}/s {dict(run.statuses)}", flush=True)
    return runs, posts


# --- the drain path in this process ---------------------------------------------------------


PHASES = (
    ("claim", "claim_due (lease a batch: SELECT + UPDATE, one transaction)"),
    ("build", "build_envelopes (read deliveries, submissions, attachments)"),
    ("decrypt", "  of which Vault.decrypt_json (Fernet)"),
    ("render", "render (envelope_json + json.dumps)"),
    ("post", "session.post (requests + HTTP round trip + office)"),
    ("answer", "_interpret (read the answer, parse the case number)"),
    ("sign", "rest of post_signed (headers, HMAC signature, error mapping)"),
    ("log", "log_event per attempt (JSON log line)"),
    ("record", "record_outcomes (one transaction: attempt, event, submission status)"),
    ("metrics", "telemetry.count_attempts (one Redis pipeline per batch)"),
    ("other", "the rest (deliver() checks, secret, signing key, dataclasses, loop)"),
)


@dataclasses.dataclass
class PhaseRun:
    """`drain_office` in this process, with each step of the drain path timed."""

    store: str
    deliveries: int
    seconds: float
    phases: dict[str, float]
    calls: dict[str, int]
    profile: str = ""
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def per_s(self) -> float:
        """Deliveries per second of the in-process drain."""
        return self.deliveries / self.seconds if self.seconds else 0.0

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {
            "store": self.store,
            "deliveries": self.deliveries,
            "seconds": round(self.seconds, 3),
            "per_s": round(self.per_s, 1),
            "phases_s": {k: round(v, 4) for k, v in self.phases.items()},
            "calls": self.calls,
        }


#: In-process drains that show what batch size and requests' environment look-ups cost:
#: (label, BRIDGE_DELIVERY_BATCH or None for the default, requests Session.trust_env).
VARIANTS: tuple[tuple[str, int | None, bool], ...] = (
    ("batch 1 (a drain job at a low submission rate)", 1, True),
    ("batch 100", 100, True),
    ("default batch, Session.trust_env = False", None, False),
)


def measure_variants(bench: Bench, store: str, template: str) -> list[tuple[str, PhaseRun]]:
    """The in-process drain under each of VARIANTS (next to the default in `phases`)."""
    saved = bench.opts.batch
    out = []
    try:
        for label, batch, trust_env in VARIANTS:
            bench.opts.batch = batch
            out.append((label, measure_phases(bench, store, template, trust_env)))
            print(f"{label}: {out[-1][1].per_s:,.0f}/s; ", end="", flush=True)
    finally:
        bench.opts.batch = saved
    return out


class Timers:
    """Wraps module attributes with timing wrappers and puts the originals back afterwards."""

    def __init__(self) -> None:
        """No wrappers yet."""
        self.totals: defaultdict[str, float] = defaultdict(float)
        self.calls: defaultdict[str, int] = defaultdict(int)
        self._undo: list[tuple[object, str, object]] = []

    def wrap(self, owner: object, attribute: str, phase: str) -> None:
        """Time every call of `owner.attribute` under `phase`."""
        original = getattr(owner, attribute)
        totals, calls = self.totals, self.calls

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                totals[phase] += time.perf_counter() - t0
                calls[phase] += 1

        self._undo.append((owner, attribute, original))
        setattr(owner, attribute, timed)

    def undo(self) -> None:
        """Restore every wrapped attribute."""
        for owner, attribute, original in reversed(self._undo):
            setattr(owner, attribute, original)
        self._undo.clear()


@contextmanager
def in_process_worker(
    bench: Bench, url: str, log_path: Path, trust_env: bool = True
) -> Iterator[Any]:
    """A WorkerContext for `url` that `worker.jobs.drain_office` uses, logging to a file."""
    import worker.jobs as jobs

    settings = Settings.from_env(bench.environ(url))
    ctx = jobs.WorkerContext(settings)
    ctx.http.trust_env = trust_env
    original = jobs.context
    setattr(jobs, "context", lambda: ctx)  # noqa: B010 - the module attribute drain_office reads
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    handler = logging.FileHandler(log_path)
    handler.setFormatter(JsonFormatter())
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    try:
        yield ctx
    finally:
        setattr(jobs, "context", original)  # noqa: B010
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        handler.close()
        ctx.store.dispose()
        ctx.redis.close()
        ctx.http.close()


def measure_phases(bench: Bench, store: str, template: str, trust_env: bool = True) -> PhaseRun:
    """Drain the one-office copy in this process with the drain path's steps timed."""
    import infra.telemetry
    import integrations.channels.http_json
    import integrations.channels.webhook
    import worker.jobs as jobs

    bench.quiet(f"{store} in-process drain")
    url = copy_database(bench, store, template, "phases")
    bench.flush_redis()
    bench.office.reset()
    timers = Timers()
    try:
        log = bench.workdir / "logs" / f"in-process-{store}.log"
        with in_process_worker(bench, url, log, trust_env) as ctx:
            timers.wrap(jobs, "claim_due", "claim")
            timers.wrap(jobs, "build_envelopes", "build")
            timers.wrap(Vault, "decrypt_json", "decrypt")
            timers.wrap(integrations.channels.http_json.HttpJsonChannel, "render", "render")
            timers.wrap(integrations.channels.webhook, "post_signed", "post_signed")
            timers.wrap(ctx.http, "post", "post")
            timers.wrap(integrations.channels.webhook, "_interpret", "answer")
            timers.wrap(jobs, "log_event", "log")
            timers.wrap(jobs, "record_outcomes", "record")
            timers.wrap(infra.telemetry, "count_attempts", "metrics")
            t0 = time.perf_counter()
            done = jobs.drain_office(DOG_OFFICE)
            seconds = time.perf_counter() - t0
    finally:
        timers.undo()
        drop_database(bench, store, "phases")
    t = timers.totals
    phases = {
        "claim": t["claim"],
        "build": t["build"],
        "decrypt": t["decrypt"],
        "render": t["render"],
        "post": t["post"],
        "answer": t["answer"],
        "sign": t["post_signed"] - t["post"] - t["answer"],
        "log": t["log"],
        "record": t["record"],
        "metrics": t["metrics"],
    }
    counted = sum(v for k, v in phases.items() if k != "decrypt")
    phases["other"] = max(seconds - counted, 0.0)
    run = PhaseRun(store, done, seconds, phases, dict(timers.calls))
    bench.code_note(run.notes)
    if bench.opts.profile and trust_env and bench.opts.batch is None:
        run.profile = profile_drain(bench, store, template)
    return run


def profile_drain(bench: Bench, store: str, template: str, top: int = 30) -> str:
    """A cProfile of one more in-process drain: the top functions by own time."""
    import worker.jobs as jobs

    url = copy_database(bench, store, template, "profile")
    bench.flush_redis()
    bench.office.reset()
    profiler = cProfile.Profile()
    try:
        with in_process_worker(bench, url, bench.workdir / "logs" / f"profile-{store}.log"):
            profiler.enable()
            done = jobs.drain_office(DOG_OFFICE)
            profiler.disable()
    finally:
        drop_database(bench, store, "profile")
    stats = pstats.Stats(profiler)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    rows = sorted(raw.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    out = io.StringIO()
    out.write(
        f"cProfile of drain_office on {store}, {done} deliveries in this process "
        "(profiling slows it down); top functions by own time, per delivery:\n\n"
        "| function | calls/delivery | own µs/delivery | incl. µs/delivery |\n"
        "|---|--:|--:|--:|\n"
    )
    for (filename, line, name), (_, ncalls, tottime, cumtime, _) in rows:
        where = _short_path(filename)
        label = f"`{where}:{line} {name}`" if line else f"`{name}`"
        out.write(
            f"| {label} | {ncalls / max(done, 1):.2f} | {1e6 * tottime / max(done, 1):.1f} "
            f"| {1e6 * cumtime / max(done, 1):.1f} |\n"
        )
    return out.getvalue()


def _short_path(filename: str) -> str:
    for marker in ("site-packages/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    try:
        return str(Path(filename).relative_to(ROOT))
    except ValueError:
        return filename


# --- end to end -----------------------------------------------------------------------------


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


def measure_e2e(bench: Bench, store: str) -> E2ERun:
    """gunicorn + 2 workers + sweeper; open-loop submissions; arrival − send per delivery."""
    opts = bench.opts
    busy_before = bench.quiet(f"{store} end to end")
    url = fresh_database(bench, store, "e2e")
    bench.flush_redis()
    bench.office.reset()
    env = bench.environ(url)
    port = free_port()
    conf = bench.workdir / f"gunicorn-{store}.conf.py"
    conf.write_text(
        gunicorn_config(port, opts.gunicorn_workers, bench.workdir / "logs" / "gunicorn-error.log")
    )
    web = bench.procs.python(
        "gunicorn", ["gunicorn", "--config", str(conf), "bridge:create_app()"], env
    )
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
        deadline = time.monotonic() + 60
        delivered = count_delivered(engine)
        while delivered < accepted_all and time.monotonic() < deadline:
            time.sleep(0.05)
            delivered = count_delivered(engine)
        meter.stop()
        if delivered < accepted_all:
            notes.append(f"only {delivered} of {accepted_all} accepted were delivered after 60 s")
        settle_jobs(redis)
        web_pids = descendants(processes(), web.pid) - {web.pid}
        rss = {
            "web worker": max(peak_rss_mb(web_pids).values(), default=math.nan),
            "delivery worker": max(
                peak_rss_mb({p.pid for p in workers}).values(), default=math.nan
            ),
            "sweeper": max(peak_rss_mb({sweeper.pid}).values(), default=math.nan),
        }
        jobs = drain_jobs(redis, labels)
        office = bench.office.stats()
        arrivals = bench.office.arrivals()
    finally:
        bench.procs.stop(list(reversed(started)))
        engine.dispose()
        redis.close()
    drop_database(bench, store, "e2e")
    first: dict[str, float] = {}
    for _, reference, _, at in arrivals:
        first.setdefault(reference, at)
    measured = [s for s in sends if s.index >= warm]
    latencies, intake, after = [], [], []
    for s in measured:
        if s.status == 202 and s.reference in first:
            latencies.append(1000 * (first[s.reference] - s.sent))
            intake.append(1000 * (s.answered - s.sent))
            after.append(1000 * (first[s.reference] - s.answered))
    per_worker: Counter[str] = Counter(j.worker for j in jobs)
    cpu = meter.split(
        {
            "gunicorn": {web.pid},
            "workers": {p.pid for p in started[1:3]},
            "sweeper": {started[3].pid} if len(started) > 3 else set(),
            "office": {bench.office_pid},
            "redis": {bench.redis_pid},
            "bench": {os.getpid()},
        }
    )
    if office.get("bad_signatures"):
        notes.append(f"the office saw {office['bad_signatures']} bad signatures")
    failed = [j for j in jobs if j.status == "failed"]
    if failed:
        notes.append(f"{len(failed)} drain job(s) failed, e.g. {failed[0].error}")
    return E2ERun(
        store=store,
        rate=opts.rate,
        seconds=opts.seconds,
        warmup=opts.warmup,
        sends=sends,
        measured=measured,
        latencies_ms=latencies,
        intake_ms=intake,
        after_ms=after,
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


# --- the benchmark --------------------------------------------------------------------------


@dataclasses.dataclass
class StoreResults:
    """Everything measured on one store."""

    store: str
    prep_seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    loops: list[LoopRun] = dataclasses.field(default_factory=list)
    build_seconds: float = 0.0
    render_seconds: float = 0.0
    throughput: list[ThroughputRun] = dataclasses.field(default_factory=list)
    phases: PhaseRun | None = None
    variants: list[tuple[str, PhaseRun]] = dataclasses.field(default_factory=list)
    e2e: E2ERun | None = None

    def plain(self) -> LoopRun | None:
        """The plain loop to the fast office (the ratio's denominator)."""
        return next(
            (
                r
                for r in self.loops
                if r.name == "plain requests loop" and r.office == "fast office"
            ),
            None,
        )


def run_throughput(bench: Bench, store: str, out: StoreResults) -> None:
    """Prepare the databases, run the loops, the worker rows and the in-process drain."""
    opts = bench.opts
    n = opts.deliveries
    templates: dict[str, str] = {}
    kinds = sorted({s.template for s in opts.scenarios} | {"one"})
    for kind in kinds:
        print(f"[{store}] preparing {n} submissions ({kind} office(s)) … ", end="", flush=True)
        _, seconds = prepare_template(bench, store, kind, n)
        templates[kind] = f"tpl_{kind}"
        out.prep_seconds[kind] = seconds
        print(f"{seconds:.1f} s ({n / seconds:,.0f}/s)", flush=True)
    print(f"[{store}] loops over the same {n} envelopes", flush=True)
    out.loops, posts = measure_loops(bench, store, templates["one"])
    out.build_seconds, out.render_seconds = posts.build_seconds, posts.render_seconds
    plain = out.plain()
    for scenario in opts.scenarios:
        for workers in opts.workers:
            print(f"[{store}] {scenario.label}, {workers} worker(s) … ", end="", flush=True)
            run = measure_throughput(
                bench, store, scenario, workers, templates[scenario.template], n
            )
            out.throughput.append(run)
            ratio = f" ({run.per_s / plain.per_s:.2f} × loop)" if plain else ""
            print(
                f"{run.per_s:,.0f}/s{ratio}, {len(run.jobs)} job(s), per worker "
                f"{run.per_worker}" + (f" — {'; '.join(run.notes)}" if run.notes else ""),
                flush=True,
            )
    print(f"[{store}] drain path in this process … ", end="", flush=True)
    out.phases = measure_phases(bench, store, templates["one"])
    print(f"{out.phases.per_s:,.0f}/s", flush=True)
    if opts.variants:
        print(f"[{store}] variants of the drain path in this process … ", end="", flush=True)
        out.variants = measure_variants(bench, store, templates["one"])
        print(flush=True)
    for kind in kinds:
        drop_database(bench, store, f"tpl_{kind}")


def run_store(bench: Bench, store: str) -> StoreResults:
    """Every measurement on one store."""
    opts = bench.opts
    out = StoreResults(store)
    if opts.throughput:
        run_throughput(bench, store, out)
    if opts.e2e:
        print(
            f"[{store}] end to end at {opts.rate:g}/s for {opts.seconds:g} s … ", end="", flush=True
        )
        out.e2e = measure_e2e(bench, store)
        lat = summary(out.e2e.latencies_ms)
        print(
            f"p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms, "
            f"{len(out.e2e.latencies_ms)}/{len(out.e2e.measured)} delivered",
            flush=True,
        )
    return out


# --- report ---------------------------------------------------------------------------------


def fmt_cpu(cpu: dict[str, float], keys: Sequence[str]) -> str:
    """CPU seconds of the named groups, `/`-separated."""
    return " / ".join(f"{cpu.get(k, 0.0):.1f}" for k in keys)


def throughput_table(results: Sequence[StoreResults]) -> str:
    """Deliveries per second with worker processes, next to the plain loop."""
    head = (
        "| store | scenario | workers | delivered | seconds | deliveries/s | ÷ plain loop "
        "| steady/s at office | jobs run | deliveries per worker | per office "
        "| CPU s: workers / office / postgres / redis / bench / other | aim met |\n"
        "|---|---|--:|--:|--:|--:|--:|--:|--:|---|---|---|---|\n"
    )
    lines = []
    for res in results:
        plain = res.plain()
        for run in res.throughput:
            ratio = run.per_s / plain.per_s if plain and plain.per_s else math.nan
            aim = "–"
            if run.workers == 2:
                aim = "yes" if run.per_s >= AIM_RATE and ratio >= AIM_RATIO else "no"
            jobs = len(run.jobs)
            busy = sum(1 for j in run.jobs if j.attempts)
            offices = ", ".join(f"{OFFICE_LABEL.get(k, k)}: {v}" for k, v in run.per_office.items())
            lines.append(
                f"| {run.store} | {run.scenario.label} | {run.workers} "
                f"| {run.delivered}/{run.deliveries} | {run.seconds:.2f} | {run.per_s:,.0f} "
                f"| {ratio:.2f} | {run.steady_per_s or 0:,.0f} | {jobs} ({busy} delivered) "
                f"| {', '.join(f'{k}: {v}' for k, v in run.per_worker.items()) or '–'} "
                f"| {offices} "
                f"| {fmt_cpu(run.cpu, ('workers', 'office', 'postgres', 'redis', 'bench', 'other'))}"
                f"{' ⚠' if disturbed(run.cpu) else ''} "
                f"| {aim} |"
            )
    return head + "\n".join(lines) + "\n"


def loop_table(results: Sequence[StoreResults]) -> str:
    """The single-process loops."""
    head = (
        "| store | loop | office | posts | posts/s | ms/post | loop process CPU ms/post | answers |\n"
        "|---|---|---|--:|--:|--:|--:|---|\n"
    )
    lines = []
    for res in results:
        for run in res.loops:
            lines.append(
                f"| {run.store} | {run.name} | {run.office} | {run.posts} | {run.per_s:,.0f} "
                f"| {1000 / run.per_s if run.per_s else math.nan:.2f} "
                f"| {1000 * run.cpu_s / max(run.posts, 1):.2f} "
                f"| {', '.join(f'{k}×{v}' for k, v in sorted(run.statuses.items()))} |"
            )
    return head + "\n".join(lines) + "\n"


def phase_table(results: Sequence[StoreResults]) -> str:
    """The drain path's steps, per delivery, for each store side by side."""
    runs = [r.phases for r in results if r.phases is not None]
    if not runs:
        return ""
    head = "| step | " + " | ".join(f"{r.store} µs/delivery (share)" for r in runs) + " |\n"
    head += "|---|" + "--:|" * len(runs) + "\n"
    lines = []
    for key, label in PHASES:
        cells = []
        for r in runs:
            us = 1e6 * r.phases.get(key, 0.0) / max(r.deliveries, 1)
            share = r.phases.get(key, 0.0) / r.seconds if r.seconds else 0.0
            cells.append(f"{us:,.0f} ({share:.0%})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    total = " | ".join(
        f"**{1e6 * r.seconds / max(r.deliveries, 1):,.0f}** ({r.per_s:,.0f}/s)" for r in runs
    )
    lines.append(f"| **total** (deliveries/s in one process, no RQ) | {total} |")
    return head + "\n".join(lines) + "\n"


def variants_table(results: Sequence[StoreResults]) -> str:
    """The in-process drain under the variants, per delivery, next to the default."""
    head = (
        "| store | variant | deliveries/s | µs/delivery | claim | build | render | HTTP post "
        "| record | log | metrics |\n|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n"
    )
    lines = []
    for res in results:
        rows = [("default (batch 20)", res.phases)] if res.phases else []
        for label, run in rows + res.variants:
            if run is None:
                continue
            per = {k: 1e6 * v / max(run.deliveries, 1) for k, v in run.phases.items()}
            lines.append(
                f"| {res.store} | {label} | {run.per_s:,.0f} "
                f"| {1e6 * run.seconds / max(run.deliveries, 1):,.0f} | {per['claim']:,.0f} "
                f"| {per['build']:,.0f} | {per['render']:,.0f} | {per['post']:,.0f} "
                f"| {per['record']:,.0f} | {per['log']:,.0f} | {per['metrics']:,.0f} |"
            )
    return head + "\n".join(lines) + "\n"


RSS_KINDS = ("web worker", "delivery worker", "sweeper")


def e2e_table(results: Sequence[StoreResults]) -> str:
    """Latency from the webhook request to the arrival at the back office."""
    head = (
        "| store | rate/s | sent/s achieved | sent | 202 | delivered | p50 ms | p90 ms | p99 ms | max ms "
        "| send→202 p50 / p99 ms | 202→office p50 / p99 ms | drain jobs (per worker) "
        "| CPU s: gunicorn / workers / sweeper / office / postgres / redis / client / other "
        "| backlog growth /s | peak RSS MiB: web worker / delivery worker / sweeper | aim met |\n"
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|---|---|--:|---|---|\n"
    )
    lines = []
    for res in results:
        e = res.e2e
        if e is None:
            continue
        lat, intake, after = summary(e.latencies_ms), summary(e.intake_ms), summary(e.after_ms)
        cpu = fmt_cpu(
            e.cpu,
            ("gunicorn", "workers", "sweeper", "office", "postgres", "redis", "bench", "other"),
        ) + (" ⚠" if disturbed(e.cpu) else "")
        lines.append(
            f"| {e.store} | {e.rate:g} | {e.achieved_per_s:.0f} | {len(e.measured)} | {e.accepted} "
            f"| {len(e.latencies_ms)} "
            f"| {lat['p50']:.1f} | {lat['p90']:.1f} | {lat['p99']:.1f} | {lat['max']:.1f} "
            f"| {intake['p50']:.1f} / {intake['p99']:.1f} | {after['p50']:.1f} / {after['p99']:.1f} "
            f"| {e.jobs} ({', '.join(f'{k}: {v}' for k, v in e.jobs_per_worker.items())}) "
            f"| {cpu} | {e.backlog_growth_per_s if e.backlog_growth_per_s is not None else '–'} "
            f"| {' / '.join(f'{e.peak_rss_mb.get(k, math.nan):.0f}' for k in RSS_KINDS)} "
            f"| {'yes' if lat['p50'] < AIM_P50_MS else 'no'} |"
        )
    return head + "\n".join(lines) + "\n"


def machine() -> dict[str, str]:
    """What the figures were measured on, with RQ's, requests' and Redis' versions."""
    import rq

    return machine_basics(
        rq=str(rq.__version__),
        requests=str(requests.__version__),
        redis_server=version_of(["redis-server", "--version"]),
    )


def report(
    opts: Options, results: Sequence[StoreResults], meta: dict[str, Any], waits: list[str]
) -> tuple[Path, Path, str]:
    """Write the JSON and Markdown results; return their paths and the printed tables."""
    today = dt.date.today().isoformat()
    stem = f"delivery-{today}" + (f"-{opts.tag}" if opts.tag else "")
    opts.output.mkdir(parents=True, exist_ok=True)
    json_path, md_path = opts.output / f"{stem}.json", opts.output / f"{stem}.md"
    command = ("python -m bench.delivery " + shlex.join(opts.argv)).strip()
    batch = opts.batch if opts.batch is not None else "20 (default)"
    record = {
        "date": today,
        "command": command,
        "deliveries": opts.deliveries,
        "batch": opts.batch,
        "log_level": opts.log_level,
        "machine": meta["machine"],
        "postgres": meta.get("postgres"),
        "sqlite": meta.get("sqlite"),
        "aim": {"deliveries_per_s": AIM_RATE, "ratio_to_loop": AIM_RATIO, "p50_ms": AIM_P50_MS},
        "stores": [
            {
                "store": r.store,
                "prep_seconds": r.prep_seconds,
                "envelope_build_s": round(r.build_seconds, 3),
                "render_sign_s": round(r.render_seconds, 3),
                "loops": [x.as_json() for x in r.loops],
                "throughput": [x.as_json() for x in r.throughput],
                "phases": r.phases.as_json() if r.phases else None,
                "variants": [{"variant": label, **v.as_json()} for label, v in r.variants],
                "e2e": r.e2e.as_json() if r.e2e else None,
            }
            for r in results
        ],
        "waits": waits,
    }
    json_path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    m = meta["machine"]
    pg = meta.get("postgres") or {}
    tables = []
    if any(r.throughput for r in results):
        tables += [
            "## Throughput: worker processes draining due deliveries",
            "",
            throughput_table(results),
        ]
    tables += ["## Plain loops (one process) over the same envelopes", "", loop_table(results)]
    if any(r.phases for r in results):
        tables += [
            "## The drain path, step by step (`drain_office` in the benchmark's process)",
            "",
            phase_table(results),
        ]
    if any(r.variants for r in results):
        tables += [
            "## Variants of the drain path (in this process; µs per delivery)",
            "",
            variants_table(results),
        ]
    if any(r.e2e for r in results):
        tables += [
            "## End to end: webhook request → arrival at the back office",
            "",
            e2e_table(results),
        ]
    md = [
        f"# Delivery benchmark, {today}",
        "",
        f"Command: `{command}`  ",
        f"Machine: {m['cpus']} CPUs ({m['cpu_model']}), Linux {m['kernel']}, Python "
        f"{m['python']}, RQ {m['rq']}, requests {m['requests']}, {m['redis_server'][:40]}; "
        f"load average at start {m['load_average_at_start']}.  ",
        f"Code: {m['code']}.  ",
        f"Deliveries per throughput row: {opts.deliveries}; BRIDGE_DELIVERY_BATCH={batch}; "
        f"BRIDGE_LOG_LEVEL={opts.log_level} (JSON logs to a file). "
        f"Back office: bench/fast_office.py (asyncio, HTTP/1.1 keep-alive, 201 at once, "
        "checks the signatures).  ",
        f"Aim: ≥ {AIM_RATE:,.0f} deliveries/s with 2 worker processes and ≥ {AIM_RATIO} × the "
        f"plain loop; end-to-end p50 < {AIM_P50_MS:g} ms at 100 submissions/s.",
        "",
        *tables,
        "How to read it:",
        "",
        "- **deliveries/s**: deliveries from `wake_offices()` to the moment the benchmark sees "
        "every delivery `delivered` in the database (polled every 20 ms), worker start-up "
        "excluded (the workers are idle and registered with RQ before the wake-up), the first "
        "job's set-up (connections, keys) included. **steady/s at office**: arrivals per second "
        "between the 10th and 90th percentile arrival at the office. **÷ plain loop**: "
        "deliveries/s divided by the plain loop's posts/s on the same store and envelopes.",
        "- **jobs run**: drain jobs RQ ran (finished, failed or still running) and how many of "
        "them delivered anything; **deliveries per worker** sums the jobs' return values "
        "(attempts) per worker process (w1, w2 in order of process id).",
        "- **1 office**: one `wake_offices()` call enqueues one drain job; a second worker "
        "helps only if another job of that office is enqueued while the first runs (**jobs "
        "run** shows whether it happened; since commit fd593eb a job that claims a full batch "
        "wakes one more job). "
        "**1 office + sweeper**: `python -m worker sweep` runs as in production; it wakes the "
        "office every BRIDGE_SWEEP_INTERVAL_S (2 s) while due, unleased deliveries remain, and "
        "the first job has already cleared the waiting mark, so a second job starts on the "
        "idle worker. **2 offices**: half dog registrations (tax office), half traffic orders "
        "(public-order office), one job per office.",
        "- **plain requests loop**: the same envelopes, rendered by the http-json channel and "
        "signed like `post_signed` beforehand (not timed), POSTed one after the other over one "
        "`requests.Session`, reading each answer. **channel.deliver() loop**: the channel's own "
        "code per envelope (render, sign, post_signed with stream=True, answer parsing), "
        "no database. Building the envelopes from the database took "
        + ", ".join(
            f"{r.store} {1e6 * r.build_seconds / max(opts.deliveries, 1):,.0f} µs" for r in results
        )
        + " per envelope (batches of 500); rendering and signing "
        + ", ".join(
            f"{r.store} {1e6 * r.render_seconds / max(opts.deliveries, 1):,.0f} µs" for r in results
        )
        + ".",
        "- **step by step**: `worker.jobs.drain_office` run in the benchmark process (no RQ) "
        "with each step wrapped in a timer; the shares are of the in-process drain's wall time.",
        "- **end to end**: gunicorn (`bridge:create_app()`, the project's gunicorn.conf.py with "
        f"{opts.gunicorn_workers} sync workers and the access log off), 2 `worker work` "
        "processes and the sweeper on a fresh database. An open-loop client "
        f"({opts.client_threads} threads, a new connection per request as gunicorn's sync "
        f"workers close it) posts {opts.rate:g} dog registrations/s for {opts.warmup:g} s "
        f"warm-up (not counted) and {opts.seconds:g} s measured, each with its own "
        "Idempotency-Key. Latency = arrival at the office − the client's `time.time()` just "
        "before opening the request; split into send→202 (the intake) and 202→office "
        "(queue, drain job, delivery).",
        "- **CPU s**: CPU seconds used during the measurement by each group of processes; "
        "`other` is everything else on the machine (⚠: over a tenth of the machine, so the "
        "row was disturbed by something else and its figures are a lower bound).",
        "",
        "Stores: SQLite is a file in a temporary folder ("
        + ", ".join(f"{k}={v}" for k, v in (meta.get("sqlite") or {}).items())
        + ", as the service's engine sets them); "
        + (
            f"PostgreSQL {pg.get('server_version', '?')} on 127.0.0.1 "
            f"(synchronous_commit={pg.get('synchronous_commit')}, fsync={pg.get('fsync')}, "
            f"shared_buffers={pg.get('shared_buffers')}), scratch databases `{PG_PREFIX}*`. "
            if pg
            else ""
        )
        + "Redis: a private redis-server (no persistence) on a free port.",
    ]
    notes = [
        f"{r.store} {t.scenario.key} ×{t.workers}: {n}"
        for r in results
        for t in r.throughput
        for n in t.notes
    ]
    notes += [f"{r.store} end to end: {n}" for r in results if r.e2e for n in r.e2e.notes]
    notes += [
        f"{r.store} in-process drain: {n}" for r in results if r.phases for n in r.phases.notes
    ]
    if notes or waits:
        md += ["", "Notes:", "", *(f"- {n}" for n in notes + waits)]
    profiles = [r.phases.profile for r in results if r.phases and r.phases.profile]
    if profiles:
        md += ["", "## cProfile of the drain path", "", *profiles]
    md_path.write_text("\n".join(md) + "\n")
    return json_path, md_path, "\n".join(tables)


def parse_args(argv: Sequence[str]) -> Options:
    """The command line."""
    p = argparse.ArgumentParser(
        prog="python -m bench.delivery",
        description="Deliveries per second through RQ workers and webhook-to-office latency.",
    )
    p.add_argument("--deliveries", type=int, default=3000, help="deliveries per throughput row")
    p.add_argument("--stores", default="sqlite,postgres", help="sqlite, postgres or both")
    p.add_argument("--rate", type=float, default=100.0, help="end-to-end submissions per second")
    p.add_argument("--seconds", type=float, default=20.0, help="end-to-end measured seconds")
    p.add_argument("--warmup", type=float, default=2.0, help="end-to-end warm-up seconds")
    p.add_argument("--workers", default="1,2", help="worker process counts for throughput")
    p.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"throughput scenarios: {', '.join(SCENARIOS)}",
    )
    p.add_argument("--batch", type=int, default=None, help="BRIDGE_DELIVERY_BATCH (default 20)")
    p.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="BRIDGE_LOG_LEVEL of the measured processes (INFO: a JSON line per attempt)",
    )
    p.add_argument(
        "--sweep-interval", type=float, default=None, help="BRIDGE_SWEEP_INTERVAL_S (default 2)"
    )
    p.add_argument(
        "--gunicorn-workers",
        type=int,
        default=PRODUCTION["workers"],
        help="end to end: gunicorn workers (default: gunicorn.conf.py's)",
    )
    p.add_argument("--client-threads", type=int, default=8, help="end to end: client threads")
    p.add_argument(
        "--demo-posts",
        type=int,
        default=200,
        help="posts of the plain loop to the DemoBackOffice (0: skip it; it is slow)",
    )
    p.add_argument("--no-e2e", action="store_true", help="skip the end-to-end latency")
    p.add_argument("--no-throughput", action="store_true", help="skip throughput and phases")
    p.add_argument("--profile", action="store_true", help="add a cProfile of the drain path")
    p.add_argument(
        "--variants",
        action="store_true",
        help="also drain in-process with batch 1 and 100 and with requests' trust_env off",
    )
    p.add_argument("--postgres-url", default=DEFAULT_POSTGRES, help="administrative URL")
    p.add_argument(
        "--idle-wait",
        type=float,
        default=900.0,
        help="seconds to wait before each measurement for other benchmarks to end and the "
        "machine to be idle (0: do not wait)",
    )
    p.add_argument("--idle-threshold", type=float, default=0.15, help="busy share that is idle")
    p.add_argument("--tag", default="", help="suffix of the results file names")
    p.add_argument("--output", type=Path, default=RESULTS, help="folder for the results")
    a = p.parse_args(argv)
    stores = [s.strip() for s in a.stores.split(",") if s.strip()]
    if not stores or any(s not in ("sqlite", "postgres") for s in stores):
        p.error("--stores takes sqlite, postgres or both")
    try:
        workers = [int(w) for w in a.workers.split(",") if w.strip()]
    except ValueError:
        p.error("--workers takes numbers, e.g. 1,2")
    names = [s.strip() for s in a.scenarios.split(",") if s.strip()]
    if any(s not in SCENARIOS for s in names):
        p.error(f"--scenarios takes {', '.join(SCENARIOS)}")
    if a.deliveries < 20 or a.rate <= 0 or a.seconds <= 0 or not workers:
        p.error("need --deliveries ≥ 20, positive --rate and --seconds, and worker counts")
    return Options(
        deliveries=a.deliveries,
        stores=stores,
        rate=a.rate,
        seconds=a.seconds,
        warmup=a.warmup,
        workers=workers,
        scenarios=[SCENARIOS[s] for s in names],
        batch=a.batch,
        log_level=a.log_level,
        sweep_interval_s=a.sweep_interval,
        gunicorn_workers=a.gunicorn_workers,
        client_threads=a.client_threads,
        demo_posts=a.demo_posts,
        e2e=not a.no_e2e,
        throughput=not a.no_throughput,
        profile=a.profile,
        variants=a.variants,
        postgres_url=a.postgres_url,
        idle_wait=a.idle_wait,
        idle_threshold=a.idle_threshold,
        tag=a.tag,
        output=a.output,
        argv=list(argv),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write its results."""
    opts = parse_args(sys.argv[1:] if argv is None else argv)

    def _stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)  # unwinds, so every started process is stopped

    signal.signal(signal.SIGTERM, _stop)
    # Also when started in the background, where a shell leaves SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    meta: dict[str, Any] = {"machine": machine()}
    if "postgres" in opts.stores:
        meta["postgres"] = postgres_notes(opts.postgres_url)
    if "sqlite" in opts.stores:
        meta["sqlite"] = sqlite_notes()
    others = other_benchmarks()
    if others:
        print("other benchmarks are running; each measurement waits for them:", *others, sep="\n  ")
    results = []
    with surroundings(opts) as bench:
        for store in opts.stores:
            results.append(run_store(bench, store))
        waits = bench.waits
    json_path, md_path, tables = report(opts, results, meta, waits)
    print()
    print(tables)
    print(f"written: {md_path}, {json_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
