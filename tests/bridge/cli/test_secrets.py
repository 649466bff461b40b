"""`python -m bridge secrets --env-file`: fresh secrets into a private file, never over a set one."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from domain.secret_inventory import NOT_MADE_SETTINGS, SETTINGS_SECRETS
from domain.settings import _EnvSchema
from tests.conftest import EPAY21_PASSWORD, ROOT, bridge_cli

SHIPPED = ROOT / "config" / "routing.toml"
MADE = (
    "BRIDGE_ENCRYPTION_KEYS",
    "BRIDGE_METRICS_TOKEN",
    "BRIDGE_SECRET_FORMCYCLE",
    "BRIDGE_SECRET_FORMCYCLE_SIGNING",
    "BRIDGE_SECRET_OFFICE_SIGNING",
)
ISSUED = "BRIDGE_SECRET_EPAY21_PASSWORD"


def _values(path: Path) -> dict[str, str]:
    """The file's assignments (`export ` or not), as systemd and the shell read them."""
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^(?:export )?([A-Z_][A-Z0-9_]*)=(.*)$", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def secrets_cli(path: Path, *extra: str) -> tuple[int, str, str]:
    """Run the command on `path` for the shipped routing file; exit code, stdout, stderr."""
    done = bridge_cli({}, "secrets", "--env-file", str(path), "--config", str(SHIPPED), *extra)
    return done.returncode, done.stdout, done.stderr


def test_a_fresh_file_gets_every_secret_of_the_shipped_config(tmp_path: Path) -> None:
    """The file is made with mode 0600 and holds a fresh value of the right kind for every
    secret the bridge makes; the provider's password (theirs to issue) is an empty line named
    on stderr; filled in, the file is all check-config needs."""
    path = tmp_path / "bridge.env"
    code, out, err = secrets_cli(path)
    assert code == 0, err
    assert path.stat().st_mode & 0o777 == 0o600
    values = _values(path)
    assert set(values) == {*MADE, ISSUED}
    Fernet(values["BRIDGE_ENCRYPTION_KEYS"].encode())
    for name in ("BRIDGE_SECRET_FORMCYCLE_SIGNING", "BRIDGE_SECRET_OFFICE_SIGNING"):
        assert values[name].startswith("whsec_")
        assert len(base64.b64decode(values[name].removeprefix("whsec_"), validate=True)) == 32
    assert len(values["BRIDGE_SECRET_FORMCYCLE"]) >= 43
    assert len(set(values.values())) == len(values)  # no value used twice
    assert values[ISSUED] == ""
    assert f"fill in {ISSUED}" in err
    assert "payment_providers.epay21-demo.options.password_env" in err
    for name in MADE:
        assert f"added {name} " in out
    assert "5 added, 0 kept" in out

    missing = bridge_cli({"BRIDGE_CONFIG": str(SHIPPED), **values}, "check-config")
    assert missing.returncode == 2
    assert f"{ISSUED} (a secret named in the file) is not set" in missing.stderr
    values[ISSUED] = EPAY21_PASSWORD  # what the provider issued, filled in by the operator
    checked = bridge_cli({"BRIDGE_CONFIG": str(SHIPPED), **values}, "check-config")
    assert checked.returncode == 0, checked.stderr


def test_existing_values_are_kept_and_only_the_missing_ones_added(tmp_path: Path) -> None:
    """A value in the file is never changed; an empty assignment is filled where it stands,
    the rest appended in the file's own style (`export` here); a second run changes nothing."""
    key = Fernet.generate_key().decode()
    before = [
        "# the town's bridge",
        f"export BRIDGE_ENCRYPTION_KEYS={key}",
        "export BRIDGE_SECRET_FORMCYCLE=",
        "export BRIDGE_SECRET_OFFICE_SIGNING='whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD'",
        f"export {ISSUED}={EPAY21_PASSWORD}",
        "export BRIDGE_LOG_FORMAT=json",
    ]
    path = tmp_path / "local.env"
    path.write_text("\n".join(before) + "\n", encoding="utf-8")
    path.chmod(0o600)

    code, out, err = secrets_cli(path)
    assert code == 0, err
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[:2] == before[:2]
    assert lines[2].startswith("export BRIDGE_SECRET_FORMCYCLE=")
    assert len(lines[2]) > 60
    assert lines[3:6] == before[3:6]
    assert lines[-1].startswith("export BRIDGE_SECRET_FORMCYCLE_SIGNING=whsec_")
    assert lines[-2].startswith("# senders.formcycle.signing_secret_env: ")
    assert len(lines) == len(before) + 4
    assert out.count("added ") == 3
    assert "3 added, 3 kept" in out
    assert "fill in" not in err
    assert path.stat().st_mode & 0o777 == 0o600

    again = path.read_bytes()
    code, out, err = secrets_cli(path)
    assert (code, path.read_bytes()) == (0, again)
    assert "0 added, 6 kept" in out


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620])
def test_a_file_others_may_open_is_refused(tmp_path: Path, mode: int) -> None:
    """Group or world access to the file: refused, exit 2, the file as it was."""
    path = tmp_path / "bridge.env"
    path.write_text("BRIDGE_LOG_FORMAT=json\n", encoding="utf-8")
    path.chmod(mode)
    code, _out, err = secrets_cli(path)
    assert code == 2
    assert f"is open to others (mode {mode:04o})" in err
    assert f"chmod 600 {path}" in err
    assert path.read_text(encoding="utf-8") == "BRIDGE_LOG_FORMAT=json\n"
    assert path.stat().st_mode & 0o777 == mode


def test_a_symbolic_link_is_refused(tmp_path: Path) -> None:
    """A link is not followed (nor replaced): exit 2, its target untouched."""
    target = tmp_path / "elsewhere.env"
    target.write_text("", encoding="utf-8")
    target.chmod(0o600)
    link = tmp_path / "bridge.env"
    link.symlink_to(target)
    code, _, err = secrets_cli(link)
    assert code == 2
    assert "is a symbolic link" in err
    assert link.is_symlink()
    assert target.read_text(encoding="utf-8") == ""


def test_a_broken_routing_file_writes_nothing(tmp_path: Path) -> None:
    """The routing file's problems are listed (exit 2) and no env file is made."""
    config = tmp_path / "routing.toml"
    config.write_text(SHIPPED.read_text(encoding="utf-8").replace("[senders.", "[sendrs."))
    path = tmp_path / "bridge.env"
    done = bridge_cli({}, "secrets", "--env-file", str(path), "--config", str(config))
    assert done.returncode == 2
    assert "sendrs" in done.stderr
    assert not path.exists()
    assert os.listdir(tmp_path) == ["routing.toml"]


def test_the_routing_file_is_found_through_the_env_file(tmp_path: Path) -> None:
    """Without --config, BRIDGE_CONFIG of the env file names the routing file; a credential
    of another party (an SMTP login, a provider's salt) gets a line to fill in, an inbox token
    a fresh value."""
    text = SHIPPED.read_text(encoding="utf-8")
    text = text.replace(
        'options = { url = "http://127.0.0.1:8090/cases/neu-anspach-ordnungsamt", '
        'signing_secret_env = "BRIDGE_SECRET_OFFICE_SIGNING" }',
        'options = { token_env = "BRIDGE_SECRET_INBOX_TOKEN", '
        'username_env = "BRIDGE_SECRET_SMTP_USER", password_env = "BRIDGE_SECRET_SMTP_PASSWORD" }',
    )
    config = tmp_path / "routing.toml"
    config.write_text(text, encoding="utf-8")
    path = tmp_path / "bridge.env"
    path.write_text(f"BRIDGE_CONFIG={config}\n", encoding="utf-8")
    path.chmod(0o600)
    done = bridge_cli({}, "secrets", "--env-file", str(path))
    assert done.returncode == 0, done.stderr
    values = _values(path)
    assert len(values["BRIDGE_SECRET_INBOX_TOKEN"]) >= 43
    assert values["BRIDGE_SECRET_SMTP_USER"] == values["BRIDGE_SECRET_SMTP_PASSWORD"] == ""
    assert "fill in BRIDGE_SECRET_SMTP_PASSWORD" in done.stderr
    assert "fill in BRIDGE_SECRET_SMTP_USER" in done.stderr


def test_every_secret_setting_is_made_or_its_absence_explained() -> None:
    """A setting whose name says key, secret, password or token is in the command's list or
    named as left out with a reason, so a new secret setting is not silently skipped."""
    names = {field.data_key for field in _EnvSchema().fields.values()}
    secretish = {n for n in names if n and re.search(r"(KEYS?|SECRET|PASSWORD|TOKENS?)$", n)}
    assert secretish == set(SETTINGS_SECRETS) | set(NOT_MADE_SETTINGS)
