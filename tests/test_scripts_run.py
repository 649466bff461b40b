"""scripts/run as a newcomer uses it: in a checkout of its own, on other ports, surviving a crash.

The checkout is a copy of this one (sharing .venv); scripts/run starts its own Redis there.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from redis import Redis
from redis.exceptions import AuthenticationError

from harness.ports import free_port
from infra.crypto import generate_key
from tests.conftest import ROOT
from tests.factories import dog
from tests.quick_start import run_readme_blocks

# Written by scripts/run before lines had `export`: `. var/local.env` kept them from programs.
OLD_LOCAL_ENV = """BRIDGE_ENCRYPTION_KEYS={key}
BRIDGE_SECRET_FORMCYCLE=formcycle-secret-0123456789abcdef0123
BRIDGE_SECRET_FORMCYCLE_SIGNING=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
BRIDGE_SECRET_OFFICE_SIGNING=whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD
BRIDGE_API_TOKENS=admin:admin:{token}
"""
OLD_ADMIN_TOKEN = "admin-token-0123456789abcdef0123456789ab"


@dataclass
class Checkout:
    """A copy of the repository with scripts/run running in it."""

    root: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    output: Path

    def url(self, path: str) -> str:
        """A URL of this checkout's web process."""
        return f"http://127.0.0.1:{self.env['BRIDGE_PORT']}{path}"

    def log(self) -> str:
        """What scripts/run and its processes printed so far."""
        return self.output.read_text(errors="replace")


def _wait(condition: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except requests.RequestException:
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def checkout(tmp_path: Path) -> Iterator[Checkout]:
    """scripts/run started in a fresh copy, on free ports, with an old-style var/local.env."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (sudo apt-get install -y redis-server)")
    root = tmp_path / "checkout"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    (root / ".venv").symlink_to(ROOT / ".venv")
    (root / "var").mkdir()
    (root / "var" / "local.env").write_text(
        OLD_LOCAL_ENV.format(key=generate_key(), token=OLD_ADMIN_TOKEN)
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "BRIDGE_PORT": str(free_port()),
        "BACKOFFICE_PORT": str(free_port()),
        "BACKOFFICE_SMTP_PORT": str(free_port()),
        "PAYMENTS_PORT": str(free_port()),
        "FITCONNECT_PORT": str(free_port()),
        "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        # Two web processes start faster than one per core and a half on a loaded machine.
        "GUNICORN_CMD_ARGS": "--workers 2",
    }
    output = tmp_path / "run.log"
    with output.open("wb") as out:
        proc = subprocess.Popen(
            [str(root / "scripts" / "run")], cwd=root, env=env, stdout=out, stderr=out
        )
    run = Checkout(root, env, proc, output)
    try:
        yield run
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        pidfile = root / "var" / "redis" / "redis.pid"
        if pidfile.exists():
            os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
        print(run.log())


def _assert_redis_is_protected(checkout: Checkout, lines: list[str]) -> None:
    """The Redis scripts/run started requires the password it made once and keeps in
    var/local.env; REDIS_URL there carries it; neither the output nor `ps` shows it."""
    [password] = [
        line.split("=", 1)[1]
        for line in lines
        if line.startswith("export BRIDGE_LOCAL_REDIS_PASSWORD=")
    ]
    assert len(password) >= 32
    port = checkout.env["REDIS_URL"].rsplit(":", 1)[1].split("/")[0]
    assert f"export REDIS_URL=redis://:{password}@127.0.0.1:{port}/0" in lines
    anonymous = Redis(port=int(port), socket_connect_timeout=2)
    try:
        with pytest.raises(AuthenticationError):
            anonymous.ping()
    finally:
        anonymous.close()
    assert password not in checkout.log()
    pid = int((checkout.root / "var" / "redis" / "redis.pid").read_text().strip())
    assert password.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert (checkout.root / "var" / "redis" / "redis.conf").stat().st_mode & 0o777 == 0o600


def _assert_var_is_private(var: Path) -> None:
    """var/ and what the run wrote there (the SQLite database, the copied routing file, the
    Procfile, Redis's data) are its owner's alone: umask 077, not the login's 022."""
    assert var.stat().st_mode & 0o777 == 0o700
    for name in ("bridge.db", "routing.toml", "Procfile", "redis/appendonlydir"):
        mode = (var / name).stat().st_mode & 0o777
        assert mode & 0o077 == 0, f"var/{name} is {oct(mode)}"


def test_scripts_setup_makes_var_private_even_if_it_exists(tmp_path: Path) -> None:
    """An older checkout's world-readable var/ becomes its owner's alone (nothing installed:
    the lock file's stamp in the shared .venv matches)."""
    root = tmp_path / "checkout"
    for name in ("scripts/setup", "requirements/dev.txt"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, root / name)
    (root / ".venv").symlink_to(ROOT / ".venv")
    (root / "var").mkdir(mode=0o755)
    (root / "var").chmod(0o755)
    done = subprocess.run(
        [str(root / "scripts" / "setup")], cwd=root, env={"PATH": os.environ["PATH"]},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (root / "var").stat().st_mode & 0o777 == 0o700


def test_scripts_run_on_other_ports_survives_a_crashed_worker(checkout: Checkout) -> None:
    """Every port follows the environment (the demo offices' URLs too); var/local.env gets
    `export` lines, so the README's CLI lines work in a fresh shell; the Redis it starts has a
    password; a killed worker is started again while everything else keeps running; then the
    README's blocks after the quick start run as written against it."""
    ready = _wait(
        lambda: requests.get(checkout.url("/readyz"), timeout=2).status_code == 200,
        "the service to be ready",
    )
    assert ready

    local_env_path = checkout.root / "var" / "local.env"
    assert local_env_path.stat().st_mode & 0o777 == 0o600
    _assert_var_is_private(checkout.root / "var")
    local_env = local_env_path.read_text()
    lines = [line for line in local_env.splitlines() if line.strip()]
    assert all(line.startswith("export ") for line in lines), local_env
    assert f"export BRIDGE_PORT={checkout.env['BRIDGE_PORT']}" in lines
    _assert_redis_is_protected(checkout, lines)
    cli = subprocess.run(
        ["bash", "-c", ". var/local.env && .venv/bin/python -m bridge check-config"],
        cwd=checkout.root, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr

    # The old file's BRIDGE_API_TOKENS went into the database (and out of the file); the
    # fresh database got its first admin, with password and a token in var/local-admin.txt.
    assert "BRIDGE_API_TOKENS" not in local_env
    old = requests.get(
        checkout.url("/api/v1/me"),
        headers={"Authorization": f"Bearer {OLD_ADMIN_TOKEN}"},
        timeout=5,
    )
    assert old.json()["role"] == "admin", old.text
    credentials_path = checkout.root / "var" / "local-admin.txt"
    assert credentials_path.stat().st_mode & 0o777 == 0o600
    credentials = dict(
        line.split(": ", 1) for line in credentials_path.read_text().splitlines() if line
    )
    assert credentials["user"] == "admin"
    assert len(credentials["password"]) >= 12
    assert credentials["password"] not in checkout.log()
    me = requests.get(
        checkout.url("/api/v1/me"),
        headers={"Authorization": f"Bearer {credentials['token']}"},
        timeout=5,
    )
    assert me.json() == {
        "name": "local-admin",
        "role": "admin",
        "via": "token",
        "office_id": None,
        "offices": None,
    }
    assert "var/local-admin.txt" in checkout.log()

    # A case reaches the demo office on its changed port.
    answer = requests.post(
        checkout.url("/webhooks/formcycle/dog-registration"),
        json=dog(),
        headers={"X-Bridge-Secret": "formcycle-secret-0123456789abcdef0123"},
        timeout=10,
    )
    assert answer.status_code == 202, answer.text
    office = f"http://127.0.0.1:{checkout.env['BACKOFFICE_PORT']}/cases/usingen-steueramt"
    _wait(lambda: requests.get(office, timeout=2).json(), "the case at the demo office")
    # The demo payment provider runs on its changed port too.
    payments = f"http://127.0.0.1:{checkout.env['PAYMENTS_PORT']}/_control/transactions"
    assert _wait(lambda: requests.get(payments, timeout=2).ok, "the demo payment provider")
    assert f"export PAYMENTS_PORT={checkout.env['PAYMENTS_PORT']}" in lines
    # So does the FIT-Connect stand-in (its Routing API needs no token).
    routes = (
        f"http://127.0.0.1:{checkout.env['FITCONNECT_PORT']}/routing-api/v1/routes"
        "?leikaKey=99102013104000&ars=064340011011"
    )
    assert _wait(lambda: requests.get(routes, timeout=2).ok, "the FIT-Connect stand-in")
    assert f"export FITCONNECT_PORT={checkout.env['FITCONNECT_PORT']}" in lines

    # The worker crashes: it is started again, and nothing else stopped.
    pids = [int(p) for p in re.findall(r"started with PID (\d+)", checkout.log())]
    assert len(pids) == 1, checkout.log()
    os.kill(pids[0], signal.SIGKILL)
    _wait(
        lambda: len(re.findall(r"started with PID (\d+)", checkout.log())) == 2,
        "the worker to be started again",
    )
    assert "respawn: 'python' ended with status 137" in checkout.log()
    assert checkout.proc.poll() is None
    assert requests.get(checkout.url("/healthz"), timeout=2).status_code == 200
    answer = requests.post(
        checkout.url("/webhooks/formcycle/dog-registration"),
        json=dog(),
        headers={"X-Bridge-Secret": "formcycle-secret-0123456789abcdef0123"},
        timeout=10,
    )
    assert answer.status_code == 202
    _wait(lambda: len(requests.get(office, timeout=2).json()) == 2, "the second case delivered")

    # The README's blocks after the quick start work as written in a fresh shell (issue 17).
    outputs = run_readme_blocks(checkout.root, checkout.root.parent)
    assert '"status": "awaiting_payment"' in "".join(outputs) or '"status":"awaiting_payment"' in (
        "".join(outputs)
    )
    _wait(lambda: len(requests.get(office, timeout=2).json()) == 3, "the README's case delivered")
