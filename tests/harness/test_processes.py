"""Started processes: logs of their own, stopped by their handles, restarted when supervised."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from harness.processes import Managed, Processes, Supervisor, without
from harness.waiting import wait_for

SLEEPER = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"]


def test_group_logs_and_stops_everything(tmp_path: Path) -> None:
    """Each process writes to its own log; stop_all ends them all; env reaches the process."""
    procs = Processes(tmp_path, {"GREETING": "hello"}, stop_timeout_s=5)
    printer = procs.launch(
        "printer", [sys.executable, "-c", "import os; print(os.environ['GREETING'])"]
    )
    printer.wait(10)
    sleeper = procs.launch("sleeper", SLEEPER)
    wait_for(lambda: "up" in (tmp_path / "002-sleeper.log").read_text(), what="the sleeper")
    procs.stop_all()
    assert sleeper.poll() is not None
    assert procs.running == []
    assert (tmp_path / "001-printer.log").read_text() == "hello\n"
    assert "hello" in procs.logs()


def test_without_drops_variables_by_prefix() -> None:
    """The project's own variables are left out of a copied environment."""
    env = {"BRIDGE_X": "1", "REDIS_URL": "r", "PATH": "/bin"}
    assert without(env, ("BRIDGE_", "REDIS_URL")) == {"PATH": "/bin"}


def test_supervisor_restarts_and_tells_expected_from_unexpected(tmp_path: Path) -> None:
    """A process that dies on its own is restarted and reported; one killed on purpose is not."""
    sup = Supervisor()
    m = sup.add(Managed("sleeper", SLEEPER, {}, tmp_path / "sleeper.log", tmp_path))
    sup.watch()
    try:
        m.wait_ready()
        m.kill()
        wait_for(lambda: m.restarts == 1 and m.alive(), what="the restart after a kill")
        assert m.proc is not None
        m.proc.kill()  # not through Managed: a death the supervisor did not cause
        wait_for(lambda: m.restarts == 2 and m.alive(), what="the restart after a crash")
    finally:
        sup.shutdown()
    assert [e.expected for e in sup.exits] == [True, False]
    assert [e.name for e in sup.unexpected_exits()] == ["sleeper"]
    time.sleep(0.2)
    assert sup.dead() == ["sleeper"]
