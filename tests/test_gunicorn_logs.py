"""gunicorn's own log lines follow BRIDGE_LOG_FORMAT, as the bridge's do (issue 17 item 8)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import requests

from harness.ports import free_port
from tests.conftest import ROOT


def _serve(environ: dict[str, str], tmp_path: Path, log_format: str) -> tuple[list[str], str]:
    """Start gunicorn as the Procfile does, ask it once, stop it: its stderr lines, its stdout."""
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        **environ,
        "BRIDGE_LOG_FORMAT": log_format,
        # One worker, and a control socket of this test's own (not the checkout's).
        "GUNICORN_CMD_ARGS": f"--workers 1 --control-socket {tmp_path / 'gunicorn.ctl'}",
    }
    err, out = tmp_path / f"{log_format}.err", tmp_path / f"{log_format}.out"
    with err.open("wb") as stderr, out.open("wb") as stdout:
        proc = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "gunicorn"), "--config", "gunicorn.conf.py",
             "--bind", f"127.0.0.1:{port}", "bridge:create_app()"],
            cwd=ROOT, env=env, stdout=stdout, stderr=stderr,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=10).ok:
                        break
                except requests.RequestException:
                    pass
                assert proc.poll() is None, err.read_text()
                assert time.monotonic() < deadline, err.read_text()
                time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    return [line for line in err.read_text().splitlines() if line.strip()], out.read_text()


def test_gunicorn_logs_json_lines(environ: dict[str, str], tmp_path: Path) -> None:
    """With json every line gunicorn writes to its error log is one JSON object with the
    bridge's keys (its start, the worker's boot, the shutdown), the access line too."""
    lines, access = _serve(environ, tmp_path, "json")
    records = [json.loads(line) for line in lines]  # fails on any line that is not JSON
    assert {"time", "level", "logger", "event"} <= set(records[0])
    events = [r["event"] for r in records if r["logger"] == "gunicorn.error"]
    assert any(e.startswith("Starting gunicorn") for e in events), events
    assert any(e.startswith("Booting worker") for e in events), events
    assert any(e.startswith("Handling signal") or "Shutting down" in e for e in events), events
    [request] = [json.loads(line) for line in access.splitlines() if "/healthz" in line]
    assert request["event"] == "http.request"
    assert request["status"] == 200


def test_gunicorn_logs_text_lines(environ: dict[str, str], tmp_path: Path) -> None:
    """With text gunicorn's lines read like the bridge's text lines: time, level, event."""
    lines, _ = _serve(environ, tmp_path, "text")
    starting = next(line for line in lines if "Starting gunicorn" in line)
    assert starting.split()[1] == "INFO", starting
    assert not starting.startswith("{")
