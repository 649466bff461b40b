"""`python -m bench.chaos [--quick] [--store sqlite|postgres|both] [--seed N] [--sentinel]`.

Exits 1 when an invariant failed on any store, 0 when every run passed; the summary is printed
and written to bench/results/chaos-<date>[-quick|-sentinel].md and .json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import sys
import time
from pathlib import Path

from bench.chaos.report import write
from bench.chaos.run import FULL, QUICK, Run
from bench.chaos.stores import DEFAULT_POSTGRES
from bench.common import ROOT, machine, version_of

RESULTS = ROOT / "bench" / "results"


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run each store, write the results."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.chaos", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="a few hundred submissions (CI)")
    parser.add_argument("--store", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--seed", type=int, default=None, help="default: the current time")
    parser.add_argument("--workers", type=int, default=2, help="RQ worker processes")
    parser.add_argument(
        "--submissions", type=int, default=None, help="override the profile's count"
    )
    parser.add_argument(
        "--sentinel",
        action="store_true",
        help="Redis under Sentinel (primary, replica, 3 sentinels); PostgreSQL only",
    )
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES, help="administrative URL")
    parser.add_argument(
        "--output",
        default=None,
        help="results path without suffix (default bench/results/chaos-<date>[-quick|-sentinel])",
    )
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else FULL
    if args.submissions:
        profile = profile.__class__(**{**profile.__dict__, "submissions": args.submissions})
    seed = args.seed if args.seed is not None else int(time.time())
    stores = (
        ["postgres"]
        if args.sentinel
        else (["sqlite", "postgres"] if args.store == "both" else [args.store])
    )
    command = "python -m bench.chaos " + shlex.join(
        [
            *(argv if argv is not None else sys.argv[1:]),
            *([] if args.seed is not None else ["--seed", str(seed)]),
        ]
    )
    about = machine(
        redis=version_of(["redis-server", "--version"]),
        postgres=version_of(["psql", "--version"]),
        seed=str(seed),
        profile=profile.name,
    )
    runs = []
    for store in stores:
        print(f"chaos: {store} ({profile.name}, seed {seed}) ...", flush=True)
        result = Run(store, profile, seed, args.workers, args.sentinel, args.postgres_url).execute()
        print(
            json.dumps(
                {k: result[k] for k in ("store", "passed", "figures", "faults", "timing_s")}
            ),
            flush=True,
        )
        runs.append(result)
    tag = "-sentinel" if args.sentinel else ("-quick" if args.quick else "")
    path = Path(args.output) if args.output else RESULTS / f"chaos-{dt.date.today()}{tag}"
    print(write(runs, about, command, path))
    failed = [r for r in runs if not r["passed"]]
    for r in failed:
        print(
            f"FAILED on {r['store']}: {r['violation_count']} violations; logs in {r['run_dir']}",
            file=sys.stderr,
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
