"""Started processes with their log files: a group stopped together, and a supervisor.

`Processes` is a group a test or a benchmark starts and stops as a whole; each process is
stopped by its own handle, never by name, so nothing else on the machine is touched.
`Supervisor` restarts what died (as systemd would) and tells apart the deaths the caller caused
from the ones that happened on their own: the latter are a finding of a chaos run. A supervised
process runs in a session of its own, so a SIGKILL reaches it and its children (a gunicorn
master and its workers die together, like a host's web service).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESTART_DELAY_S = 1.0  # systemd's RestartSec in deploy/systemd


def spawn(
    argv: Sequence[str],
    env: Mapping[str, str],
    log: Path,
    cwd: Path = ROOT,
    new_session: bool = False,
) -> subprocess.Popen[bytes]:
    """Start `argv` with stdout and stderr appended to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=new_session,
        )


def stop(procs: Sequence[subprocess.Popen[bytes]], timeout_s: float) -> None:
    """SIGTERM the processes, wait up to `timeout_s` for each, SIGKILL the ones still there."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def without(environ: Mapping[str, str], prefixes: tuple[str, ...]) -> dict[str, str]:
    """A copy of `environ` without the variables whose names start with one of `prefixes`."""
    return {k: v for k, v in environ.items() if not k.startswith(prefixes)}


class Processes:
    """Processes started for a test or a benchmark, each logging to a file of its own.

    Every process gets `env` (which callers may change between starts), the call's own
    variables and PYTHONPATH pointing at the project.
    """

    def __init__(self, log_dir: Path, env: Mapping[str, str], stop_timeout_s: float = 10.0) -> None:
        """Logs go to `log_dir`; `stop_timeout_s` is how long a SIGTERM gets before SIGKILL."""
        self.log_dir = log_dir
        self.env = dict(env)
        self.stop_timeout_s = stop_timeout_s
        self.running: list[subprocess.Popen[bytes]] = []
        self.counter = 0

    def launch(
        self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start `argv`; its log is `<log_dir>/<number>-<name>.log`."""
        self.counter += 1
        log = self.log_dir / f"{self.counter:03d}-{name}.log"
        proc = spawn(argv, {**self.env, **(env or {}), "PYTHONPATH": str(ROOT)}, log)
        self.running.append(proc)
        return proc

    def python(
        self, name: str, args: Sequence[str], env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start `python -m <args>` with this interpreter."""
        return self.launch(name, [sys.executable, "-m", *args], env)

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL a process (a crash, not a shutdown) and reap it."""
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop(self, procs: Sequence[subprocess.Popen[bytes]]) -> None:
        """Stop the given processes (SIGTERM, then SIGKILL) and forget them."""
        stop(procs, self.stop_timeout_s)
        for proc in procs:
            if proc in self.running:
                self.running.remove(proc)

    def stop_all(self) -> None:
        """Stop everything still running, newest first (a worker before the Redis it uses)."""
        self.stop(list(reversed(self.running)))

    def logs(self) -> str:
        """Everything the processes wrote, in the order they were started."""
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))


@dataclass
class Exit:
    """A process that ended: which, when, its exit code, whether the caller killed it."""

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
    held: bool = False  # kept down on purpose (e.g. Redis while its data is wiped)
    killed: bool = False  # the next exit is one the caller caused
    restarts: int = 0

    def start(self) -> None:
        """Start the process in a session of its own, appending to its log."""
        self.proc = spawn(self.argv, self.env, self.log, self.cwd, new_session=True)
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
        """SIGTERM, then SIGKILL after 15 s; the supervisor leaves it down."""
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
        """The exits the caller did not cause."""
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
