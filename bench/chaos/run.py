"""One chaos run on one store: bring everything up, load and break it, drain, check, tear down.

Processes (each in its own session, under the supervisor): Redis (one server, or a primary, a
replica and three sentinels), two capture offices, two gunicorn "hosts" on their own ports,
`--workers` RQ workers and the sweeper, all against one store. The routing configuration is the
shipped one with the offices pointed at the capture offices (the public-order office through
the xml channel) and short channel timeouts; retries are quick so that the run settles in
minutes.
"""

from __future__ import annotations

import base64
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from bench.chaos.bodies import ORDER_OFFICE, TAX_OFFICE, plan
from bench.chaos.faults import KINDS, SENTINEL_KINDS, Injector, Targets
from bench.chaos.invariants import DbDelivery, DbSubmission, Evidence, check
from bench.chaos.load import Load
from bench.chaos.redis_nodes import RedisSetup
from bench.chaos.report import summary
from bench.chaos.stores import RunStore
from bench.common import ROOT
from harness.ports import free_port
from harness.processes import Managed, Supervisor
from infra.crypto import generate_key
from store.models import format_reference

OWN_ENV = ("BRIDGE_", "DATABASE_URL", "REDIS_URL", "GUNICORN")
HANG_S = 4.0  # a "timeout" office holds the request past the channel's read timeout (2 s)


@dataclass(frozen=True)
class Profile:
    """How big a run is."""

    name: str
    submissions: int
    rate: float  # submissions per second the client aims at
    threads: int
    gap_s: tuple[float, float]  # pause between two faults
    drain_s: float  # how long the deliveries may take to settle after the load


QUICK = Profile("quick", 300, 8.0, 4, (0.5, 1.5), 180.0)
FULL = Profile("full", 10_000, 40.0, 8, (1.0, 4.0), 600.0)


def routing_config(run_dir: Path, office_ports: dict[str, int]) -> Path:
    """config/routing.toml with the offices at the capture offices and short timeouts."""
    text_ = (ROOT / "config" / "routing.toml").read_text(encoding="utf-8")
    for office, port in office_ports.items():
        text_ = text_.replace(
            f'url = "http://127.0.0.1:8090/cases/{office}"',
            f'url = "http://127.0.0.1:{port}/cases/{office}", connect_timeout_s = 1, read_timeout_s = 2',
        )
    # The public-order office takes XML, so both webhook channels are under load.
    text_ = re.sub(
        r'(\[offices\.neu-anspach-ordnungsamt\][^\[]*?channel = )"http-json"', r'\1"xml"', text_
    )
    # The chaos run is about delivery: the traffic order's fee does not hold it back here.
    text_ = text_.replace("before_delivery = true", "before_delivery = false")
    path = run_dir / "routing.toml"
    path.write_text(text_, encoding="utf-8")
    return path


def base_env() -> dict[str, str]:
    """Our environment without the bridge's own variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith(OWN_ENV)}


def bridge_env(store: RunStore, redis_url: str, config: Path, secret: str) -> dict[str, str]:
    """The environment of every bridge process of the run."""
    return base_env() | {
        "DATABASE_URL": store.url,
        "REDIS_URL": redis_url,
        "BRIDGE_CONFIG": str(config),
        "BRIDGE_ENCRYPTION_KEYS": generate_key(),
        "BRIDGE_SECRET_FORMCYCLE": secret,
        "BRIDGE_SECRET_FORMCYCLE_SIGNING": "whsec_"
        + base64.b64encode(secrets.token_bytes(32)).decode(),
        "BRIDGE_SECRET_OFFICE_SIGNING": "whsec_"
        + base64.b64encode(secrets.token_bytes(32)).decode(),
        "BRIDGE_SECRET_EPAY21_PASSWORD": secrets.token_urlsafe(24),
        # Quick retries, many of them: a flapping office must not exhaust the schedule.
        "BRIDGE_RETRY_SCHEDULE": "1s,2s,3s,5s,5s,5s,5s,5s,5s,5s,10s,10s",
        "BRIDGE_SWEEP_INTERVAL_S": "1",
        "BRIDGE_LEASE_MARGIN_S": "5",
        "BRIDGE_DELIVERY_BATCH": "5",
        "BRIDGE_LOG_LEVEL": "WARNING",
        "BRIDGE_LOG_FORMAT": "text",
    }


def http_ok(url: str) -> bool:
    """True when `url` answers 200."""
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def gunicorn_host(name: str, env: dict[str, str], log: Path) -> Managed:
    """The web process of one "host": gunicorn with the project's config, 2 workers, a free
    port and no access log; ready when /healthz answers."""
    port = free_port()
    return Managed(
        name,
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            str(ROOT / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--access-logfile",
            "/dev/null",
            "bridge:create_app()",
        ],
        env,
        log,
        ROOT,
        ready=lambda: http_ok(f"http://127.0.0.1:{port}/healthz"),
        port=port,
    )


READY_WAIT_S = 60.0  # after the last fault, e.g. for workers to register with an emptied Redis


def not_ready(webs: list[Managed]) -> list[str]:
    """The hosts whose /readyz is not 200 within READY_WAIT_S, each with its last answer."""
    deadline = time.monotonic() + READY_WAIT_S
    answers: dict[str, str] = {}
    for m in webs:
        while True:
            try:
                r = requests.get(f"http://127.0.0.1:{m.port}/readyz", timeout=5)
                answers[m.name] = f"{r.status_code} {r.text[:300]}"
                if r.status_code == 200:
                    del answers[m.name]
                    break
            except requests.RequestException as exc:
                answers[m.name] = type(exc).__name__
            if time.monotonic() > deadline:
                break
            time.sleep(1)
    return [f"{name}: {answer}" for name, answer in answers.items()]


def _probe(url: str) -> Callable[[], bool]:
    """A readiness probe: `url` answers 200."""
    return lambda: http_ok(url)


class Run:
    """The processes and evidence of one store's run."""

    def __init__(
        self,
        kind: str,
        profile: Profile,
        seed: int,
        workers: int,
        sentinel: bool,
        postgres_url: str,
    ) -> None:
        """Nothing started yet."""
        self.kind, self.profile, self.seed, self.sentinel = kind, profile, seed, sentinel
        self.n_workers = workers
        self.postgres_url = postgres_url
        self.dir = Path(tempfile.mkdtemp(prefix=f"chaos-{kind}-"))
        self.sup = Supervisor()
        self.store: RunStore | None = None
        self.secret = secrets.token_urlsafe(32)
        self.timing: dict[str, float] = {}
        self.problems: list[str] = []  # what went wrong in the harness itself (fails the run)

    def execute(self) -> dict[str, Any]:
        """Run it all; returns the summary (the run directory is kept when it failed)."""
        started = time.monotonic()
        try:
            result = self._execute()
        finally:
            self.sup.shutdown()
            if self.store is not None:
                self.store.drop()
        result["timing_s"]["total"] = round(time.monotonic() - started, 1)
        result["run_dir"] = str(self.dir)
        if result["passed"]:
            shutil.rmtree(self.dir, ignore_errors=True)
        return result

    def _execute(self) -> dict[str, Any]:
        rng = random.Random(self.seed)
        env = base_env()
        redis = (RedisSetup.sentinel if self.sentinel else RedisSetup.single)(
            self.sup, self.dir, env
        )
        self.store = RunStore.create(self.kind, self.dir, self.postgres_url)
        offices = {office: (free_port(), free_port()) for office in (TAX_OFFICE, ORDER_OFFICE)}
        for office, (port, control) in offices.items():
            m = self.sup.add(
                Managed(
                    f"office-{office}",
                    [
                        sys.executable,
                        "-m",
                        "bench.chaos.office",
                        "--port",
                        str(port),
                        "--control-port",
                        str(control),
                        "--hang-s",
                        str(HANG_S),
                    ],
                    env,
                    self.dir / f"office-{office}.log",
                    ROOT,
                    ready=_probe(f"http://127.0.0.1:{control}/records"),
                )
            )
            m.wait_ready()
        config = routing_config(self.dir, {o: p for o, (p, _) in offices.items()})
        benv = bridge_env(self.store, redis.url, config, self.secret)
        webs = [self._web(n, benv) for n in range(2)]
        workers = [
            self.sup.add(
                Managed(
                    f"worker-{n}",
                    [sys.executable, "-m", "worker", "work"],
                    benv,
                    self.dir / f"worker-{n}.log",
                    ROOT,
                )
            )
            for n in range(self.n_workers)
        ]
        self.sup.add(
            Managed(
                "sweeper",
                [sys.executable, "-m", "worker", "sweep"],
                benv,
                self.dir / "sweeper.log",
                ROOT,
            )
        )
        try:
            for m in webs:
                m.wait_ready(90)
        except RuntimeError as exc:
            return self._refused(str(exc))
        self.sup.watch()
        run_id = uuid.uuid4().hex[:8]
        load = Load(
            plan(self.profile.submissions, rng, run_id),
            [f"http://127.0.0.1:{m.port}" for m in webs],
            self.secret,
            self.profile.rate,
            self.profile.threads,
        )
        targets = Targets(
            workers,
            webs,
            redis,
            {o: f"http://127.0.0.1:{c}" for o, (_, c) in offices.items()},
            self.store,
        )
        injector = Injector(
            targets, rng, SENTINEL_KINDS if self.sentinel else KINDS, self.profile.gap_s
        )
        chaos = threading.Thread(target=injector.run, args=(load.done,), name="faults")
        t0 = time.monotonic()
        chaos.start()
        load.run()
        self.timing["load"] = time.monotonic() - t0
        chaos.join()
        self.timing["faults_done"] = time.monotonic() - t0
        for _, control in offices.values():
            requests.post(f"http://127.0.0.1:{control}/mode/ok", timeout=10)
        t1 = time.monotonic()
        settled = self._drain()
        self.timing["drain"] = time.monotonic() - t1
        # The redirects fail deliveries for good (a configuration error); an administrator
        # replays them once the office is fixed, as the README says, and they must then arrive.
        failed_before = self._failed()
        if failed_before and settled:
            t2 = time.monotonic()
            for office in offices:
                self._replay(office, benv)
            settled = self._drain()
            self.timing["replay"] = time.monotonic() - t2
        time.sleep(2)  # a process that died at the very end is seen by the supervisor
        records: list[Any] = []
        for _, control in offices.values():
            records += requests.get(f"http://127.0.0.1:{control}/records", timeout=30).json()
        ev = Evidence(
            load.plan,
            load.answers,
            load.tries,
            injector.faults,
            [tuple(r) for r in records],
            self._submissions(),
            list(self.sup.exits),
            self.sup.dead(),
            not_ready(webs),
            settled,
            injector.kinds,
            self.problems,
        )
        meta = {"sentinel": self.sentinel, "failed_before_replay": failed_before}
        return summary(self.kind, ev, check(ev), self.timing, meta)

    def _failed(self) -> dict[str, int]:
        """Failed deliveries by reason."""
        assert self.store is not None
        engine = self.store.engine()
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    text(
                        "SELECT last_error, count(*) FROM deliveries WHERE status = 'failed' "
                        "GROUP BY last_error"
                    )
                )
                return {str(reason)[:120]: int(n) for reason, n in rows}
        finally:
            engine.dispose()

    def _replay(self, office: str, env: dict[str, str]) -> None:
        """`python -m bridge replay --office` as an administrator runs it."""
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bridge",
                "replay",
                "--office",
                office,
                "--by",
                "bench.chaos",
                "--reason",
                "Stelle leitet nicht mehr um",
            ],
            env=env,
            cwd=ROOT,
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            self.problems.append(
                f"replay --office {office} failed: {(done.stdout + done.stderr)[-400:]}"
            )

    def _web(self, n: int, env: dict[str, str]) -> Managed:
        return self.sup.add(gunicorn_host(f"web-{n}", env, self.dir / f"web-{n}.log"))

    def _refused(self, why: str) -> dict[str, Any]:
        """The bridge did not start (e.g. a Redis URL it does not support)."""
        ev = Evidence([], {}, [], [], [], [], list(self.sup.exits), [], [], True)
        verdict = check(ev)
        verdict.fail(f"the bridge did not start: {why[-600:]}")
        return summary(self.kind, ev, verdict, self.timing, {"sentinel": self.sentinel})

    def _drain(self) -> bool:
        """Wait until no delivery is pending (True) or the drain time ran out (False)."""
        assert self.store is not None
        engine = self.store.engine()
        deadline = time.monotonic() + self.profile.drain_s
        try:
            while time.monotonic() < deadline:
                try:
                    with engine.connect() as conn:
                        pending = conn.execute(
                            text("SELECT count(*) FROM deliveries WHERE status = 'pending'")
                        ).scalar_one()
                except SQLAlchemyError:  # the store may still be coming back
                    pending = -1
                if pending == 0:
                    return True
                time.sleep(1)
            return False
        finally:
            engine.dispose()

    def _submissions(self) -> list[DbSubmission]:
        assert self.store is not None
        engine = self.store.engine()
        try:
            with engine.connect() as conn:
                deliveries: dict[int, list[DbDelivery]] = {}
                for row in conn.execute(
                    text(
                        "SELECT submission_id, id, office_id, status, attempts, last_error FROM deliveries"
                    )
                ):
                    deliveries.setdefault(row[0], []).append(DbDelivery(*row[1:]))
                return [
                    DbSubmission(
                        format_reference(r[1], r[2], r[0]),
                        r[3],
                        r[4],
                        r[5],
                        deliveries.get(r[0], []),
                    )
                    for r in conn.execute(
                        text(
                            "SELECT id, reference_prefix, reference_year, idempotency_key, service, status "
                            "FROM submissions"
                        )
                    )
                ]
        finally:
            engine.dispose()
