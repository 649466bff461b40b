"""The drain path step by step: `worker.jobs.drain_office` in this process, each step timed."""

from __future__ import annotations

import cProfile
import dataclasses
import io
import logging
import pstats
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import ROOT
from bench.delivery.databases import copy_database, drop_database
from bench.delivery.shared import DOG_OFFICE, Bench
from domain.settings import Settings
from infra.crypto import Vault
from infra.logs import JsonFormatter

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
