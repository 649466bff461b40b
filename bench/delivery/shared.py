"""What every part of the delivery benchmark shares: options, CPU accounting, the surroundings.

The surroundings are a temporary folder, a private redis-server (the harness's), the fast
office and, optionally, the DemoBackOffice; every process is stopped by its own handle.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import re
import secrets
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from bench.common import (
    CLK_TCK,
    ROOT,
    Snapshot,
    busy_cpu_s,
    descendants,
    read_text,
)
from harness.ports import free_port
from harness.postgres import DEFAULT_ADMIN_URL, drop_databases
from harness.processes import Processes, without
from harness.redis_servers import RedisServer, redis_binary
from infra.crypto import generate_key

RESULTS = ROOT / "bench" / "results"


DOG_OFFICE = "usingen-steueramt"  # a dog registration from Neu-Anspach goes to the tax office


TRAFFIC_OFFICE = "neu-anspach-ordnungsamt"  # a traffic order in Usingen goes to public order


OFFICE_LABEL = {DOG_OFFICE: "tax", TRAFFIC_OFFICE: "public order"}


SHIPPED_OFFICE_URL = "http://127.0.0.1:8090"


SENDER_HEADER = "X-Bridge-Secret"


AIM_RATE = 500.0


AIM_RATIO = 0.65


AIM_P50_MS = 20.0


DEFAULT_POSTGRES = DEFAULT_ADMIN_URL


PG_PREFIX = "bench_delivery_"


OWN_ENV = ("BRIDGE_", "DATABASE_URL", "REDIS_URL", "GUNICORN")


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
    procs: Processes
    keys: Keys
    redis: RedisServer  # db 0: the runs, db 1: preparation
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
        return f"{self.redis.base_url}/0"

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
        self.redis.flush(db)


@contextmanager
def surroundings(opts: Options) -> Iterator[Bench]:
    """A temporary folder, a private redis-server, the fast office and (optionally) the demo."""
    if redis_binary() is None:
        raise SystemExit("redis-server is not installed (apt-get install -y redis-server)")
    with tempfile.TemporaryDirectory(prefix="bench-delivery-") as tmp:
        workdir = Path(tmp)
        (workdir / "logs").mkdir()
        # The measured processes get none of our own settings, only the run's.
        procs = Processes(workdir / "logs", without(os.environ, OWN_ENV), stop_timeout_s=20)
        keys = Keys.new()
        redis = RedisServer(workdir=workdir, log=workdir / "logs" / "000-redis.log")
        try:
            redis.start()
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
                redis,
                OfficeClient(office_url),
                office_proc.pid,
                demo_url,
            )
        finally:
            procs.stop_all()
            redis.stop()
            if "postgres" in opts.stores:
                drop_databases(opts.postgres_url, PG_PREFIX)


def fmt_cpu(cpu: dict[str, float], keys: Sequence[str]) -> str:
    """CPU seconds of the named groups, `/`-separated."""
    return " / ".join(f"{cpu.get(k, 0.0):.1f}" for k in keys)
