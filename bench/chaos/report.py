"""The summary of a run: a table on the terminal, markdown and JSON in bench/results/.

Recovery times are worked out from the records afterwards: for an office fault, from its end
to that office's next accepted case; for a Redis restart or a killed worker, to the next case
any office accepted; for a store outage, to the next 202; for a killed web process, until its
/healthz answers again (measured live). Redis restarts also note how long the server took to
answer pings again.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.chaos.faults import Fault
from bench.chaos.invariants import Evidence, Verdict
from bench.chaos.stores import DEFAULT_POSTGRES


def recovery_times(ev: Evidence) -> dict[str, list[float]]:
    """Seconds from each fault's end until the system did its work again, by kind."""
    ok = sorted((r[4], r[2]) for r in ev.records if r[3] == "ok")
    accepted = sorted(t.end for t in ev.tries if t.status == 202)
    out: dict[str, list[float]] = defaultdict(list)
    for f in ev.faults:
        value = _recovery(f, ok, accepted)
        if value is not None:
            out[f.kind].append(round(value, 2))
    return dict(out)


def _recovery(f: Fault, ok: list[tuple[float, str]], accepted: list[float]) -> float | None:
    if f.kind == "web_kill":
        return f.recovery_s
    if f.kind == "store_down":
        return next((t - f.end for t in accepted if t >= f.end), None)
    office = f.target if f.kind.startswith("office_") else None
    after = f.start if f.kind == "worker_kill" else f.end
    return next((t - after for t, o in ok if t >= after and office in (None, o)), None)


def summary(
    store: str, ev: Evidence, verdict: Verdict, timing: dict[str, float], meta: dict[str, Any]
) -> dict[str, Any]:
    """Every figure of one store's run."""
    kinds: dict[str, int] = defaultdict(int)
    for f in ev.faults:
        kinds[f.kind] += 1
    recovery = {
        k: {"n": len(v), "median_s": round(statistics.median(v), 2), "max_s": max(v)}
        for k, v in sorted(recovery_times(ev).items())
    }
    return {
        "store": store,
        "passed": not verdict.violations,
        "figures": verdict.figures,
        "failed_reasons": dict(verdict.failed_reasons),
        "faults": dict(sorted(kinds.items())),
        "fault_log": [asdict(f) for f in ev.faults],
        "recovery": recovery,
        "process_exits": [asdict(e) for e in ev.exits],
        "timing_s": {k: round(v, 1) for k, v in timing.items()},
        "violations": verdict.violations[:200],
        "violation_count": len(verdict.violations),
        **meta,
    }


ROWS = (
    ("submissions planned", "planned"),
    ("of them sent twice", "repeated"),
    ("HTTP requests (with retries)", "requests"),
    ("accepted (202)", "accepted"),
    ("replayed answers (Idempotent-Replayed)", "replayed"),
    ("answered 503 (store down; sent again)", "answered_503"),
    ("no answer (host killed; sent again)", "no_answer"),
    ("stored, answer lost with a killed host", "stored_answer_lost"),
    ("deliveries expected", "deliveries"),
    ("delivered", "delivered"),
    ("failed (with a reason) at the end", "failed"),
    ("duplicates received (same delivery id)", "duplicates_received"),
    ("failed, but an earlier try had arrived", "failed_but_received"),
)


def markdown(runs: list[dict[str, Any]], machine: dict[str, str], command: str) -> str:
    """The results file: one column per store."""
    head = "| | " + " | ".join(r["store"] for r in runs) + " |"
    lines = [
        f"# Chaos run ({'passed' if all(r['passed'] for r in runs) else 'FAILED'})",
        "",
        f"`{command}`",
        "",
        head,
        "|---|" + "---|" * len(runs),
    ]
    for label, key in ROWS:
        lines.append(
            f"| {label} | " + " | ".join(str(r["figures"].get(key, 0)) for r in runs) + " |"
        )
    kinds = sorted({k for r in runs for k in r["faults"]})
    for kind in kinds:
        cells = []
        for r in runs:
            rec = r["recovery"].get(kind)
            extra = f" (recovery median {rec['median_s']} s, max {rec['max_s']} s)" if rec else ""
            cells.append(f"{r['faults'].get(kind, 0)}{extra}")
        lines.append(f"| fault: {kind} | " + " | ".join(cells) + " |")
    lines.append(
        "| process exits the harness did not cause | "
        + " | ".join(str(sum(not e["expected"] for e in r["process_exits"])) for r in runs)
        + " |"
    )
    lines.append(
        "| load / drain seconds | "
        + " | ".join(
            f"{r['timing_s'].get('load', 0)} / {r['timing_s'].get('drain', 0)}" for r in runs
        )
        + " |"
    )
    lines.append("| violations | " + " | ".join(str(r["violation_count"]) for r in runs) + " |")
    lines.append(
        "| failed by the redirects, then replayed | "
        + " | ".join(str(sum(r.get("failed_before_replay", {}).values())) for r in runs)
        + " |"
    )
    for r in runs:
        if r["failed_reasons"]:
            lines += ["", f"Failed deliveries on {r['store']} by reason:", ""]
            lines += [f"- {n} × {reason}" for reason, n in r["failed_reasons"].items()]
        if r["violations"]:
            lines += ["", f"Violations on {r['store']} (first {len(r['violations'])}):", ""]
            lines += [f"- {_one_line(line)}" for line in r["violations"][:40]]
    lines += ["", "Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()), ""]
    return "\n".join(lines)


def _one_line(text: str, limit: int = 300) -> str:
    """A violation on one line: a log tail keeps its last line (the exception)."""
    head, _, rest = text.partition(": ")
    lines = [line.strip() for line in rest.splitlines() if line.strip()]
    if len(lines) > 1:
        text = f"{head}: … {lines[-1]}"
    return text.replace("\n", " ")[:limit]


def write(runs: list[dict[str, Any]], machine: dict[str, str], command: str, path: Path) -> str:
    """Write `path`.md and `path`.json; returns the markdown."""
    text = markdown(runs, machine, command)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".md").write_text(text, encoding="utf-8")
    path.with_suffix(".json").write_text(
        json.dumps({"command": command, "machine": machine, "runs": runs}, indent=2, default=str),
        encoding="utf-8",
    )
    return text


def store_runs(
    argv: list[str] | None,
    prog: str,
    title: str,
    default_cases: int,
    execute: Callable[[str, int, int, str], dict[str, Any]],
) -> int:
    """The command line of a chaos run made once per store: `--store`, `--cases`, `--seed`,
    `--postgres-url`, `--output`. Runs `execute(store, cases, seed, postgres_url)` for each
    store (a result with store, passed, seconds, table, violations and run_dir), prints the
    report, writes it as .md and .json; 1 when an invariant failed, else 0."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--store", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument("--cases", type=int, default=default_cases)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    parser.add_argument("--output", default=None, help="results path without suffix")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else int(time.time())
    stores = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    runs = [execute(store, args.cases, seed, args.postgres_url) for store in stores]
    lines = [f"# {title} (seed {seed}, {args.cases} cases per store)", ""]
    for run in runs:
        verdict = "passed" if run["passed"] else f"FAILED ({len(run['violations'])} violations)"
        lines += [f"## {run['store']}: {verdict}, {run['seconds']} s", "", run["table"], ""]
        lines += [f"- {v}" for v in run["violations"][:50]]
        if not run["passed"]:
            lines.append(f"- logs: {run['run_dir']}")
    report = "\n".join(lines)
    print(report)
    if args.output:
        path = Path(args.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_suffix(".md").write_text(report + "\n", encoding="utf-8")
        path.with_suffix(".json").write_text(
            json.dumps({"seed": seed, "runs": runs}, indent=2, default=str), encoding="utf-8"
        )
    return 0 if all(r["passed"] for r in runs) else 1
