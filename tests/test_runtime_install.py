"""A server's install: a venv made from requirements/runtime.txt alone runs the whole service.

The venv is built as docs/install.md builds it (pip, hashes required, nothing else) and kept
under var/runtime-venv/<hash of the lock and the Python version>, so only a changed lock
builds it again. From it the test runs what a server runs: `secrets`, `migrate`,
`check-config`, the first admin account, gunicorn, a worker and the sweeper, on SQLite and
PostgreSQL, and one case reaches the demo back office (a stand-in, run from the test). A
package the service needs but the lock lacks fails here; the developer tools must be absent.
"""

from __future__ import annotations

import ast
import fcntl
import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from demo_backoffice import DemoBackOffice
from harness.ports import free_port
from harness.postgres import create_database, drop_database, unique_name
from harness.processes import Processes, without
from harness.waiting import wait_for
from infra.env_file import read_env_file
from store.engine import Store, normalise_database_url
from store.models import Delivery, DeliveryStatus
from tests.conftest import EPAY21_PASSWORD, ROOT
from tests.factories import dog

LOCK = ROOT / "requirements" / "runtime.txt"
CACHE = ROOT / "var" / "runtime-venv"
# What the service's processes import (the demo stand-ins, tests and tools are not shipped).
RUNTIME_PACKAGES = ("bridge", "worker", "integrations", "domain", "store", "infra", "schemas")
RUNTIME_FILES = ("gunicorn.conf.py", "migrations")
DEV_ONLY = ("pytest", "mypy", "ruff", "playwright", "schemathesis", "hypothesis", "honcho")
PATH = "/usr/bin:/bin"


def _venv_key() -> str:
    digest = hashlib.sha256(LOCK.read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()[:16]


def _build_venv(venv: Path) -> None:
    """python -m venv, then pip with hashes required, from the runtime lock alone."""
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "install", "--quiet", "--require-hashes", "--no-input", "-r", str(LOCK)],
        check=True, timeout=900, env=without(os.environ, ("PYTHON", "VIRTUAL_ENV")),
    )  # fmt: skip
    # Every package's own requirements are met by what the lock installed.
    subprocess.run([*pip, "check"], check=True, timeout=120, capture_output=True)
    (venv / "installed-from").write_text(LOCK.read_text(encoding="utf-8"), encoding="utf-8")


@pytest.fixture(scope="session")
def runtime_venv() -> Path:
    """The venv of the runtime lock, built once per lock (test processes wait for each other)."""
    CACHE.mkdir(mode=0o700, parents=True, exist_ok=True)
    venv = CACHE / _venv_key()
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / "installed-from").exists():
            for old in CACHE.iterdir():  # venvs of earlier locks
                if old.is_dir() and old != venv:
                    shutil.rmtree(old, ignore_errors=True)
            _build_venv(venv)
    return venv


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database (not migrated: the test runs `migrate`)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'bridge.db'}"
        return
    admin = os.environ.get("TEST_POSTGRES_URL")
    if not admin:
        if os.environ.get("CI") == "true":
            pytest.fail("CI requires TEST_POSTGRES_URL (PostgreSQL on 127.0.0.1:5432)")
        pytest.skip("PostgreSQL not configured (set TEST_POSTGRES_URL; required in CI)")
    admin = normalise_database_url(admin)
    name = unique_name("bridge_runtime_")
    yield create_database(admin, name)
    drop_database(admin, name)


def _run(venv: Path, env: dict[str, str], *args: str, stdin: str = "") -> str:
    """`python -m <args>` from the runtime venv in the checkout, as the systemd units run it."""
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-m", *args],
        cwd=ROOT, env={"PATH": PATH, **env}, input=stdin, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    return done.stdout + done.stderr


def test_the_developer_tools_are_not_in_the_runtime_venv(runtime_venv: Path) -> None:
    """The lean install has none of the test and lint tools (nor the local demo's honcho),
    and its interpreter does not see the development venv's packages."""
    python = str(runtime_venv / "bin" / "python")
    for module in DEV_ONLY:
        done = subprocess.run(
            [python, "-c", f"import {module}"], env={"PATH": PATH}, capture_output=True,
            text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 1, module
        assert f"No module named '{module}'" in done.stderr


def test_the_service_runs_from_the_runtime_lock_alone(
    runtime_venv: Path, server_database: str, redis_url: str, tmp_path: Path
) -> None:
    """The production steps with the runtime venv: secrets into a private env file, migrate,
    check-config, the first admin; web, worker and sweeper start, /readyz is green and a case
    is delivered to the back office, signed with the secret the command made."""
    office_port = free_port()
    config = tmp_path / "routing.toml"
    shipped = (ROOT / "config" / "routing.toml").read_text(encoding="utf-8")
    config.write_text(shipped.replace("127.0.0.1:8090", f"127.0.0.1:{office_port}"), "utf-8")
    env_file = tmp_path / "bridge.env"
    env_file.write_text(
        f"DATABASE_URL={server_database}\nREDIS_URL={redis_url}\nBRIDGE_CONFIG={config}\n"
        # The cheapest password hashing the settings allow: the test logs in no one.
        "BRIDGE_LOG_FORMAT=json\nBRIDGE_PASSWORD_SCRYPT_N=16384\n",
        encoding="utf-8",
    )
    env_file.chmod(0o600)
    _run(runtime_venv, {}, "bridge", "secrets", "--env-file", str(env_file))
    # The provider's password is theirs to issue; the operator fills it in.
    text = env_file.read_text(encoding="utf-8")
    env_file.write_text(text.replace("EPAY21_PASSWORD=\n", f"EPAY21_PASSWORD={EPAY21_PASSWORD}\n"))
    env = read_env_file(env_file).values()

    assert "created the database schema" in _run(runtime_venv, env, "bridge", "migrate")
    assert f"configuration {config}: valid" in _run(runtime_venv, env, "bridge", "check-config")
    created = _run(
        runtime_venv, env, "bridge", "accounts", "create", "admin", "--role", "admin",
        "--password-stdin", stdin="Brücke-zum-Kreis-2026!\n",
    )  # fmt: skip
    assert "created account admin (admin)" in created

    office = DemoBackOffice(
        port=office_port, signing_secret=env["BRIDGE_SECRET_OFFICE_SIGNING"]
    ).start()
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    processes = Processes(log_dir, {"PATH": PATH, **env})
    web_port = free_port()
    bin_dir = runtime_venv / "bin"
    try:
        processes.launch(
            "web",
            [
                str(bin_dir / "gunicorn"), "--config", "gunicorn.conf.py",
                "--bind", f"127.0.0.1:{web_port}", "--workers", "1",
                "--control-socket", str(tmp_path / "gunicorn.ctl"), "bridge:create_app()",
            ],
        )  # fmt: skip
        processes.launch("worker", [str(bin_dir / "python"), "-m", "worker", "work"])
        processes.launch("sweeper", [str(bin_dir / "python"), "-m", "worker", "sweep"])
        base = f"http://127.0.0.1:{web_port}"
        wait_for(
            lambda: _ready(base, processes),
            timeout=90,
            what="/readyz of the runtime venv's service",
        )
        answer = requests.post(
            f"{base}/webhooks/formcycle/dog-registration",
            json=dog(),
            headers={"X-Bridge-Secret": env["BRIDGE_SECRET_FORMCYCLE"]},
            timeout=10,
        )
        assert answer.status_code == 202, answer.text
        wait_for(
            lambda: office.ledger.cases("usingen-steueramt"), timeout=60, what="the delivered case"
        )
        # The office has the case before the worker commits the outcome, so wait for the row.
        store = Store.from_url(server_database)
        try:
            wait_for(
                lambda: _statuses(store) == [DeliveryStatus.DELIVERED],
                timeout=30,
                what="the delivery recorded as delivered",
            )
        finally:
            store.dispose()
        assert "Traceback" not in processes.logs()
    finally:
        processes.stop_all()
        office.stop()
        print(processes.logs())


def _statuses(store: Store) -> list[str]:
    """The statuses of all deliveries in the store, as the worker last committed them."""
    with store.read() as session:
        return [d.status for d in session.scalars(select(Delivery))]


def _ready(base: str, processes: Processes) -> bool:
    """True once /readyz is green; a process that ended (a missing module, say) fails at once."""
    ended = [p.args for p in processes.running if p.poll() is not None]
    assert not ended, f"ended: {ended}\n{processes.logs()}"
    try:
        return requests.get(f"{base}/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_every_imported_package_is_declared() -> None:
    """Each third-party package the service's code imports is a direct dependency in
    pyproject.toml (not only brought in by another one), and the runtime lock pins it."""
    declared = {
        _canonical(spec.split("==")[0].split("[")[0])
        for spec in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    distributions = importlib.metadata.packages_distributions()
    imported: dict[str, set[str]] = {}
    for path in _runtime_sources():
        for module in _imported_modules(path):
            top = module.split(".")[0]
            if top in sys.stdlib_module_names or (ROOT / top).exists() or top == "__future__":
                continue
            for dist in distributions.get(top, [top]):
                imported.setdefault(_canonical(dist), set()).add(str(path.relative_to(ROOT)))
    undeclared = {
        name: sorted(files)[:3] for name, files in imported.items() if name not in declared
    }
    assert undeclared == {}
    pinned = {
        _canonical(line.split("==")[0]) for line in LOCK.read_text().splitlines() if "==" in line
    }
    assert declared <= pinned


def _runtime_sources() -> Iterator[Path]:
    for name in (*RUNTIME_PACKAGES, *RUNTIME_FILES):
        path = ROOT / name
        yield from path.rglob("*.py") if path.is_dir() else [path]


def _imported_modules(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def _canonical(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")
