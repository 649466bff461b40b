"""The processes of a run, under a supervisor that restarts what died (as systemd would).

Every process runs in a session of its own, so a SIGKILL reaches it and its children (a
gunicorn master and its workers die together, like a host's web service). The supervisor tells
apart the deaths the harness caused from the ones that happened on their own: the latter are a
finding of the run (e.g. a worker that exits when Redis restarts).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

RESTART_DELAY_S = 1.0  # systemd's RestartSec in deploy/systemd


@dataclass
class Exit:
    """A process that ended: which, when, its exit code, whether the harness killed it."""

    name: str
    at: float
    code: int | None
    expected: bool
    log_tail: str = ""


@dataclass
class Managed:
    """One supervised process."""

    name: str
    argv: Sequence[str]
    env: dict[str, str]
    log: Path
    cwd: Path
    ready: Callable[[], bool] | None = None
    port: int = 0  # the port it serves on, if any
    proc: subprocess.Popen[bytes] | None = None
    held: bool = False  # the harness keeps it down on purpose (e.g. Redis while wiping its data)
    killed: bool = False  # the next exit is one the harness caused
    restarts: int = 0

    def start(self) -> None:
        """Start the process, appending to its log."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                list(self.argv),
                env=self.env,
                cwd=self.cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.killed = False

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum: int) -> None:
        """Send `signum` to the process and every process of its session."""
        if self.proc is not None and self.proc.poll() is None:
            self.killed = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signum)

    def kill(self) -> None:
        """SIGKILL the whole session and reap it."""
        self.signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(30)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s."""
        self.held = True
        self.signal(signal.SIGTERM)
        if self.proc is not None:
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def wait_ready(self, timeout_s: float = 60.0, restarting: bool = False) -> float:
        """Seconds until `ready()` holds (or the process runs, without a probe); unless
        `restarting` (the supervisor brings it back), an exit is an error."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if self.alive() and (self.ready is None or self.ready()):
                return time.monotonic() - started
            if not restarting and self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}: {explain(self.log)}"
                )
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready after {timeout_s} s: {tail(self.log)}")


@dataclass
class Supervisor:
    """Restarts dead processes after RESTART_DELAY_S and records every exit."""

    processes: dict[str, Managed] = field(default_factory=dict)
    exits: list[Exit] = field(default_factory=list)
    stop_event: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    thread: threading.Thread | None = None

    def add(self, managed: Managed) -> Managed:
        """Start `managed` and watch it."""
        self.processes[managed.name] = managed
        managed.start()
        return managed

    def watch(self) -> None:
        """Start the supervising thread."""
        self.thread = threading.Thread(target=self._loop, name="supervisor", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        dead_since: dict[str, float] = {}
        while not self.stop_event.wait(0.1):
            with self.lock:
                for name, m in self.processes.items():
                    if m.proc is None or m.alive():
                        continue
                    if name not in dead_since:
                        dead_since[name] = time.monotonic()
                        self.exits.append(
                            Exit(
                                name,
                                time.time(),
                                m.proc.returncode,
                                m.killed or m.held,
                                "" if m.killed or m.held else tail(m.log),
                            )
                        )
                    if not m.held and time.monotonic() - dead_since[name] >= RESTART_DELAY_S:
                        m.start()
                        m.restarts += 1
                        del dead_since[name]

    def unexpected_exits(self) -> list[Exit]:
        """The exits the harness did not cause."""
        return [e for e in self.exits if not e.expected]

    def dead(self) -> list[str]:
        """Processes not running now."""
        return [name for name, m in self.processes.items() if not m.alive()]

    def shutdown(self) -> None:
        """Stop supervising, then every process (SIGTERM, SIGKILL after 15 s)."""
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(5)
        for m in self.processes.values():
            m.stop()


def tail(path: Path, lines: int = 12) -> str:
    """The last lines of a log."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def explain(path: Path) -> str:
    """Why a process would not start: the settings problems it listed, else its log's end."""
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    problems = list(dict.fromkeys(line for line in lines if line.startswith("- ")))
    return "; ".join(problems) if problems else tail(path)
