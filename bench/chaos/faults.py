"""The faults, injected one after another at random (seeded) while the load runs.

The first round injects every kind once in a shuffled order, later rounds pick kinds at random,
until the load has ended and every kind has been injected. Each fault is recorded with its
target and its window; the report works out the recovery times from the records.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

from bench.chaos.redis_nodes import RedisSetup
from bench.chaos.stores import RunStore
from harness.processes import Managed

OFFICE_MODES = ("500", "timeout", "429", "302", "refuse")
KINDS = (
    "worker_kill",
    "web_kill",
    "redis_restart",
    "redis_restart_empty",
    *(f"office_{mode}" for mode in OFFICE_MODES),
    "store_down",
)
SENTINEL_KINDS = ("redis_primary_kill", "worker_kill", "office_500")


@dataclass
class Fault:
    """One injected fault: kind, target, window (epoch seconds) and what was measured live."""

    kind: str
    target: str
    start: float
    end: float = 0.0
    recovery_s: float | None = None
    note: str = ""
    error: str = ""  # the harness could not inject it (a violation: the run proves less)


@dataclass
class Targets:
    """What the faults act on."""

    workers: list[Managed]
    webs: list[Managed]
    redis: RedisSetup
    offices: dict[str, str]  # office id -> control URL
    store: RunStore


@dataclass
class Injector:
    """Injects faults from `kinds` until `until` is set and each kind ran once."""

    targets: Targets
    rng: random.Random
    kinds: tuple[str, ...]
    gap_s: tuple[float, float]
    faults: list[Fault] = field(default_factory=list)

    def run(self, until: threading.Event) -> None:
        """Inject faults until the load is done and every kind was injected."""
        pending = list(self.kinds)
        self.rng.shuffle(pending)
        while True:
            if until.is_set() and not pending:
                return
            time.sleep(self.rng.uniform(*self.gap_s))
            kind = pending.pop() if pending else self.rng.choice(self.kinds)
            self.faults.append(self.inject(kind))

    def inject(self, kind: str) -> Fault:
        """Inject one fault of `kind` (blocks while it lasts)."""
        action: dict[str, Callable[[Fault], None]] = {
            "worker_kill": self._worker_kill,
            "web_kill": self._web_kill,
            "redis_restart": lambda f: self._redis(f, keep_data=True),
            "redis_restart_empty": lambda f: self._redis(f, keep_data=False),
            "redis_primary_kill": self._primary_kill,
            "store_down": self._store_down,
        }
        fault = Fault(kind, "", time.time())
        try:
            if kind.startswith("office_"):
                self._office(fault, kind.removeprefix("office_"))
            else:
                action[kind](fault)
        except Exception as exc:  # any failure to inject is recorded and fails the run
            fault.error = f"{type(exc).__name__}: {exc}"[:500]
        if not fault.end:
            fault.end = time.time()
        return fault

    def _worker_kill(self, fault: Fault) -> None:
        worker = self.rng.choice(self.targets.workers)
        fault.target = worker.name
        worker.kill()

    def _web_kill(self, fault: Fault) -> None:
        web = self.rng.choice(self.targets.webs)
        fault.target = web.name
        web.kill()
        fault.end = time.time()
        started = time.monotonic()
        web.wait_ready(120, restarting=True)
        fault.recovery_s = time.monotonic() - started

    def _redis(self, fault: Fault, keep_data: bool) -> None:
        node = self.targets.redis.nodes[0]
        fault.target = node.managed.name
        node.restart(self.rng.uniform(0.5, 3.0), keep_data)
        fault.end = time.time()
        started = time.monotonic()
        node.managed.wait_ready(60, restarting=True)
        fault.recovery_s = time.monotonic() - started

    def _primary_kill(self, fault: Fault) -> None:
        node = self.targets.redis.primary()
        fault.target = node.managed.name
        node.managed.held = True
        node.managed.kill()
        fault.end = time.time()
        started = time.monotonic()
        while time.monotonic() - started < 60:
            try:
                self.targets.redis.primary()
                break
            except RuntimeError:
                time.sleep(0.1)
        fault.recovery_s = time.monotonic() - started
        fault.note = f"new primary {self.targets.redis.primary().managed.name}"
        time.sleep(self.rng.uniform(2.0, 5.0))
        node.managed.held = False  # the old primary comes back and is made a replica

    def _office(self, fault: Fault, mode: str) -> None:
        office = self.rng.choice(sorted(self.targets.offices))
        fault.target = office
        control = self.targets.offices[office]
        requests.post(f"{control}/mode/{mode}", timeout=10).raise_for_status()
        time.sleep(self.rng.uniform(2.0, 8.0))
        requests.post(f"{control}/mode/ok", timeout=10).raise_for_status()

    def _store_down(self, fault: Fault) -> None:
        fault.target = self.targets.store.kind
        # SQLite writers wait up to their busy timeout (10 s) before giving up: hold it past that
        # now and then, so that some requests do meet the store "down".
        seconds = self.rng.uniform(2.0, 13.0 if self.targets.store.kind == "sqlite" else 5.0)
        self.targets.store.outage(seconds)
