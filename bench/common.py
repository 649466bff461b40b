"""What the benchmarks share: the machine's CPU accounting and the code state measured."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
#: pid -> (command name, parent pid, CPU seconds used so far)
Snapshot = dict[int, tuple[str, int, float]]


def read_text(path: str) -> str:
    """A file's text, or empty when it cannot be read (e.g. a process that ended)."""
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def busy_cpu_s() -> float:
    """CPU seconds the whole machine has spent not idle since boot (all cores)."""
    values = [int(v) for v in read_text("/proc/stat").split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    # guest time is already part of user time
    return (sum(values[:8]) - idle) / CLK_TCK


def descendants(procs: Snapshot, root: int) -> set[int]:
    """`root` and every process below it."""
    found = {root}
    changed = True
    while changed:
        changed = False
        for pid, (_, ppid, _) in procs.items():
            if ppid in found and pid not in found:
                found.add(pid)
                changed = True
    return found


def version_of(command: Sequence[str]) -> str:
    """The first line a tool prints about its version, or `?`."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0].strip() if lines else "?"


def code_state() -> str:
    """The commit measured, and which files differed from it (others may be editing)."""
    head = version_of(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    changed = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split("\n")
    files = sorted(line[3:] for line in changed if line.strip())
    return head + (f" + uncommitted changes in {', '.join(files)}" if files else "")


def machine(**tools: str) -> dict[str, str]:
    """What the figures were measured on: CPUs, kernel, Python, the given tool versions, the
    load when the run started and the code measured."""
    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in read_text("/proc/cpuinfo").splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "?",
    )
    return {
        "cpus": str(os.cpu_count()),
        "cpu_model": cpu_model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        **tools,
        "load_average_at_start": " ".join(read_text("/proc/loadavg").split()[:3]),
        "code": code_state(),
    }


def production_gunicorn() -> dict[str, Any]:
    """The worker settings of the project's gunicorn.conf.py (the benchmarks' defaults)."""
    namespace: dict[str, Any] = {"__file__": str(ROOT / "gunicorn.conf.py")}
    exec((ROOT / "gunicorn.conf.py").read_text(), namespace)  # noqa: S102 - our own config file
    return {
        "worker_class": str(namespace.get("worker_class", "sync")),
        "workers": int(namespace.get("workers", 1)),
        "threads": int(namespace.get("threads", 1)),
        "worker_connections": int(namespace.get("worker_connections", 1000)),
    }


PRODUCTION = production_gunicorn()
