"""The command line of the delivery benchmark: which parts run on which store, in order."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import PRODUCTION
from bench.delivery.databases import drop_database, postgres_notes, prepare_template, sqlite_notes
from bench.delivery.e2e import measure_e2e, summary
from bench.delivery.loops import measure_loops
from bench.delivery.phases import measure_phases, measure_variants
from bench.delivery.report import StoreResults, machine, report
from bench.delivery.shared import (
    DEFAULT_POSTGRES,
    RESULTS,
    SCENARIOS,
    Bench,
    Options,
    other_benchmarks,
    surroundings,
)
from bench.delivery.throughput import measure_throughput


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
