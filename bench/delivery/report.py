"""The delivery benchmark's results: the tables, the JSON record and the Markdown report."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

from bench.common import machine as machine_basics
from bench.common import version_of
from bench.delivery.e2e import E2ERun, summary
from bench.delivery.loops import LoopRun
from bench.delivery.phases import PHASES, PhaseRun
from bench.delivery.shared import (
    AIM_P50_MS,
    AIM_RATE,
    AIM_RATIO,
    OFFICE_LABEL,
    PG_PREFIX,
    Options,
    disturbed,
    fmt_cpu,
)
from bench.delivery.throughput import ThroughputRun


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
