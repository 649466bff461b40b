"""The intake's CPU per submission, counted in instructions: repeatable on a busy machine.

    python -m bench.intake_cpu                         # callgrind, SQLite and PostgreSQL
    python -m bench.intake_cpu --stores sqlite --posts 100
    python -m bench.intake_cpu --profile               # cProfile of the request thread, no valgrind
    python -m bench.intake_cpu --target minimal        # the same count for bench/minimal_app.py

Throughput on a shared two-core machine moves 20-30 % from run to run; the instructions one
accepted dog registration costs do not. The driver posts the benchmark's body
(`bench/samples.py`, each post with its own Idempotency-Key) through the app's WSGI callable,
with the environ gunicorn would build (no sockets, no gunicorn, no test client), into a fresh, migrated store, with a private
redis-server. It warms up first (imports, caches, the first connections), then, under
`valgrind --tool=callgrind --instr-atstart=no`, switches instrumentation on with
`callgrind_control -i on` for the measured posts only, and divides the instructions counted by
the posts. Every thread of the process counts (the committer that writes the rows, the waker
that wakes the office), so a change that moves work to another thread does not look free.
Each post must be answered 202; anything else stops the run.

`--profile` runs the same posts in-process under cProfile instead, timed by the request
thread's own CPU time (the committer's transaction and other processes do not show), and prints
the functions by own and by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.common import ROOT
from bench.samples import form_body
from bench.stores import DEFAULT_POSTGRES, prepare_sqlite, recreate_postgres

PATH = "/webhooks/formcycle/dog-registration"
SCRATCH_DB = "bench_intake_cpu"
#: Marks the driver's result line in the child's output.
RESULT = "INTAKE_CPU"

Post = Callable[[int], None]


def make_poster(target: str, url: str, redis_url: str) -> Post:
    """A function that posts submission number i through the app and checks its 202."""
    from bench.intake import SENDER_HEADER, bridge_environ

    secret = secrets.token_urlsafe(32)
    env = bridge_environ(url, redis_url, secret)
    if target == "minimal":
        os.environ.update(env)
        from bench.minimal_app import create_app as create_minimal

        app = create_minimal()
    else:
        from bridge import create_app
        from domain.settings import Settings

        app = create_app(Settings.from_env({**os.environ, **env}))
    body = form_body("dog-registration").encode()
    run = os.urandom(4).hex()
    # The environ gunicorn builds for such a request; the app is called as gunicorn calls it,
    # so that no test-client machinery is counted with the app.
    base = {
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "",
        "PATH_INFO": PATH,
        "QUERY_STRING": "",
        "RAW_URI": PATH,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "40000",
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_ACCEPT": "application/json",
        "HTTP_" + SENDER_HEADER.upper().replace("-", "_"): secret,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
    }
    statuses: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        statuses.append(status)
        return None

    def post(i: int) -> None:
        environ = {**base, "HTTP_IDEMPOTENCY_KEY": f"{run}-{i}", "wsgi.input": io.BytesIO(body)}
        statuses.clear()
        answer = b"".join(app(environ, start_response))
        if not statuses or not statuses[0].startswith("202"):
            raise SystemExit(f"post {i}: {statuses} {answer[:500]!r}")

    return post


def callgrind(on: bool) -> None:
    """Switch callgrind's instrumentation of this process on or off (vgdb under the hood)."""
    subprocess.run(
        ["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],
        check=True,
        capture_output=True,
        timeout=120,
    )


def drive(opts: argparse.Namespace) -> None:
    """The child: prepare a store and a Redis, warm up, count or profile the measured posts."""
    from harness.redis_servers import RedisServer

    with tempfile.TemporaryDirectory(prefix="bench-intake-cpu-") as tmp:
        if opts.store == "sqlite":
            url = prepare_sqlite(Path(tmp))
        else:
            url = recreate_postgres(opts.postgres_url, SCRATCH_DB)
        redis = RedisServer().start()
        try:
            post = make_poster(opts.target, url, redis.url)
            for i in range(opts.warmup):
                post(i)
            # Let the waker and committer threads go idle, so that the count starts clean.
            time.sleep(0.5)
            if opts.mode == "profile":
                # The thread's own CPU time, so that waits (the commit, another process
                # holding the CPU) do not count as the functions' cost.
                profiler = cProfile.Profile(time.thread_time)
                profiler.enable()
                for i in range(opts.warmup, opts.warmup + opts.posts):
                    post(i)
                profiler.disable()
                out = io.StringIO()
                stats = pstats.Stats(profiler, stream=out)
                stats.sort_stats("tottime").print_stats(opts.top)
                stats.sort_stats("cumulative").print_stats(opts.top)
                print(out.getvalue())
            else:
                callgrind(True)
                for i in range(opts.warmup, opts.warmup + opts.posts):
                    post(i)
                # The waker's round for the last posts belongs to them.
                time.sleep(0.3)
                callgrind(False)
        finally:
            redis.stop()
            if opts.store == "postgres":
                recreate_postgres(opts.postgres_url, SCRATCH_DB, create=False)


def count(opts: argparse.Namespace, store: str, workdir: Path) -> float:
    """Run the child under callgrind on `store`; instructions per measured post."""
    out_file = workdir / f"callgrind.{opts.target}.{store}.out"
    command = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out_file}",
        sys.executable,
        "-m",
        "bench.intake_cpu",
        "--child",
        "--store",
        store,
        "--target",
        opts.target,
        "--posts",
        str(opts.posts),
        "--warmup",
        str(opts.warmup),
        "--postgres-url",
        opts.postgres_url,
    ]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"callgrind run failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    # The file's head has "summary: 0" (nothing counted at the start); its end the totals.
    totals = re.search(r"^totals:\s+(\d+)", out_file.read_text(), re.MULTILINE)
    if totals is None:
        raise SystemExit(f"no totals in {out_file}")
    if opts.keep:
        kept = Path(opts.keep)
        kept.mkdir(parents=True, exist_ok=True)
        shutil.copy(out_file, kept / out_file.name)
    return int(totals.group(1)) / int(opts.posts)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(
        prog="python -m bench.intake_cpu",
        description="Instructions per accepted submission (callgrind), or a cProfile.",
    )
    p.add_argument("--stores", default="sqlite,postgres", help="sqlite, postgres or both")
    p.add_argument("--target", choices=("bridge", "minimal"), default="bridge")
    p.add_argument("--posts", type=int, default=100, help="measured posts")
    p.add_argument("--warmup", type=int, default=30, help="posts before measuring")
    p.add_argument("--profile", action="store_true", help="cProfile instead of callgrind")
    p.add_argument("--top", type=int, default=35, help="--profile: functions listed")
    p.add_argument("--keep", default="", help="copy callgrind's output files to this folder")
    p.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--store", default="sqlite", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Count (or profile) the intake's instructions per submission on each store."""
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    stores = [s.strip() for s in opts.stores.split(",") if s.strip()]
    if opts.child or opts.profile:
        opts.mode = "profile" if opts.profile else "count"
        for store in [opts.store] if opts.child else stores:
            opts.store = store
            print(f"--- {opts.target} on {store} ---")
            drive(opts)
        return 0
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is not installed: apt-get install -y valgrind")
    with tempfile.TemporaryDirectory(prefix="bench-intake-cpu-") as tmp:
        for store in stores:
            per_post = count(opts, store, Path(tmp))
            print(
                f"{RESULT} {opts.target} {store}: {per_post:,.0f} instructions per accepted "
                f"submission ({opts.posts} posts after {opts.warmup} warm-up)",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
