"""Settings and routing configuration: built once from the environment, every problem reported at once."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from domain.config import ConfigError, parse_config
from domain.settings import Settings, SettingsError
from infra.crypto import generate_key
from tests.conftest import (
    ADMIN_TOKEN,
    EPAY21_PASSWORD,
    FORMCYCLE_SECRET,
    OFFICE_SIGNING_SECRET,
    READER_TOKEN,
    ROOT,
    SIGNING_SECRET,
)

ROUTING = ROOT / "config" / "routing.toml"
SECRETS = {
    "BRIDGE_SECRET_FORMCYCLE": FORMCYCLE_SECRET,
    "BRIDGE_SECRET_FORMCYCLE_SIGNING": SIGNING_SECRET,
    "BRIDGE_SECRET_OFFICE_SIGNING": OFFICE_SIGNING_SECRET,
    "BRIDGE_SECRET_EPAY21_PASSWORD": EPAY21_PASSWORD,
}


def _environ(**changes: str | None) -> dict[str, str]:
    """A complete, valid environment; a change to None removes the variable."""
    env = {
        "DATABASE_URL": "sqlite:////tmp/bridge-settings-test.db",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "BRIDGE_CONFIG": str(ROUTING),
        "BRIDGE_ENCRYPTION_KEYS": generate_key(),
        "BRIDGE_API_TOKENS": f"ops:reader:{READER_TOKEN},admin:admin:{ADMIN_TOKEN}",
        **SECRETS,
    }
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def _problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)
    assert str(caught.value).startswith("invalid settings:")
    return caught.value.problems


def _config_file(tmp_path: Path, *edits: tuple[str, str]) -> str:
    """The shipped routing.toml with some edits, written to a file of the test's own."""
    source = ROUTING.read_text(encoding="utf-8")
    for old, new in edits:
        assert source.count(old) == 1, old
        source = source.replace(old, new)
    path = tmp_path / "routing.toml"
    path.write_text(source, encoding="utf-8")
    return str(path)


def _raw_config() -> dict[str, Any]:
    raw: dict[str, Any] = tomllib.loads(ROUTING.read_text(encoding="utf-8"))
    return copy.deepcopy(raw)


def _config_problems(raw: dict[str, Any], environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, SECRETS if environ is None else environ)
    return caught.value.problems


def test_valid_environment_gives_typed_settings() -> None:
    """The shipped configuration with a complete environment loads, typed and complete."""
    key = generate_key()
    settings = Settings.from_env(
        _environ(
            BRIDGE_ENCRYPTION_KEYS=f" {key} , {generate_key()} ",
            BRIDGE_MAX_BODY_BYTES="4096",
            BRIDGE_RETRY_SCHEDULE="5s,1m,2h",
        )
    )
    assert settings.encryption_keys[0] == key
    assert len(settings.encryption_keys) == 2
    assert settings.max_body_bytes == 4096
    assert settings.retry_schedule == (5.0, 60.0, 7200.0)
    assert settings.config_path == ROUTING
    assert set(settings.config.services) == {"dog-registration", "traffic-order"}
    assert settings.secrets["BRIDGE_SECRET_FORMCYCLE"] == FORMCYCLE_SECRET
    # The retired BRIDGE_API_TOKENS is still read, only for `tokens import-env`.
    assert [(t.name, t.role, t.token) for t in settings.legacy_api_tokens] == [
        ("ops", "reader", READER_TOKEN),
        ("admin", "admin", ADMIN_TOKEN),
    ]
    assert settings.admin_session_hours == 8
    assert settings.admin_idle_minutes == 30
    assert settings.password_kdf.n == 2**17
    assert settings.fetch_link_hours == 168
    assert settings.is_sqlite
    # Secrets and keys never appear in the settings' repr (e.g. in a traceback).
    assert FORMCYCLE_SECRET not in repr(settings)
    assert key not in repr(settings)
    assert READER_TOKEN not in repr(settings)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    """Environment and configuration problems come together, not one per start attempt."""
    config = _config_file(
        tmp_path,
        # an unknown office
        (
            '[responsibilities.public-order]\nusingen = "neu-anspach-ordnungsamt"\n'
            'neu-anspach = "neu-anspach-ordnungsamt"',
            '[responsibilities.public-order]\nusingen = "neu-anspach-ordnungsamt"\n'
            'neu-anspach = "neu-anspach-buergerbuero"',
        ),
        # a gap: nobody collects Usingen's dog tax
        ('[responsibilities.tax]\nusingen = "usingen-steueramt"\n', "[responsibilities.tax]\n"),
        # an inline secret
        (
            'url = "http://127.0.0.1:8090/cases/usingen-steueramt",',
            'url = "http://127.0.0.1:8090/cases/usingen-steueramt", password = "hunter2",',
        ),
    )
    env = _environ(
        BRIDGE_ENCRYPTION_KEYS=None,
        DATABASE_URL="mysql://root@localhost/bridge",
        BRIDGE_API_TOKENS="ops:reader:short",
        BRIDGE_CONFIG=config,
        BRIDGE_SECRET_FORMCYCLE=None,
    )
    problems = _problems(env)
    where = f"{config}: "
    assert sorted(problems) == sorted(
        [
            "BRIDGE_ENCRYPTION_KEYS: Missing data for required field.",
            "DATABASE_URL: must be sqlite:///PATH or postgresql://...",
            "BRIDGE_API_TOKENS: entry 1 must be name:role:token with role in "
            "('reader', 'admin') and a token of at least 32 characters",
            where + "responsibilities.public-order.neu-anspach: unknown office "
            "'neu-anspach-buergerbuero'",
            where + "responsibilities.tax: no office is responsible for Usingen (usingen)",
            where + "offices.usingen-steueramt.options.password: secrets never go into the "
            "file; name an environment variable with password_env instead",
            where + "environment variable BRIDGE_SECRET_FORMCYCLE (a secret named in the "
            "file) is not set",
        ]
    )
    assert "hunter2" not in "\n".join(problems)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param(
            {"BRIDGE_ENCRYPTION_KEYS": None},
            "BRIDGE_ENCRYPTION_KEYS: Missing data for required field.",
            id="keys-missing",
        ),
        pytest.param(
            {"BRIDGE_ENCRYPTION_KEYS": " , "},
            "BRIDGE_ENCRYPTION_KEYS: at least one Fernet key is required",
            id="keys-empty",
        ),
        pytest.param(
            {"BRIDGE_ENCRYPTION_KEYS": "not-a-fernet-key"},
            "BRIDGE_ENCRYPTION_KEYS: key number 1 is not a valid Fernet key",
            id="key-invalid",
        ),
        pytest.param(
            {"DATABASE_URL": "postgres://x"},
            "DATABASE_URL: must be sqlite:///PATH or postgresql://...",
            id="database-url-scheme",
        ),
        pytest.param(
            {"REDIS_URL": "http://127.0.0.1:6379"},
            "REDIS_URL: must be redis://host:port/db",
            id="redis-url-scheme",
        ),
        pytest.param(
            {"BRIDGE_API_TOKENS": f"ops:superuser:{READER_TOKEN}"},
            "BRIDGE_API_TOKENS: entry 1 must be name:role:token",
            id="token-role",
        ),
        pytest.param(
            {"BRIDGE_API_TOKENS": f"ops:reader:{READER_TOKEN},broken"},
            "BRIDGE_API_TOKENS: entry 2 must be name:role:token",
            id="token-shape",
        ),
        pytest.param(
            {"BRIDGE_PASSWORD_SCRYPT_N": "1000"},
            "BRIDGE_PASSWORD_SCRYPT_N: must be a power of two from 16384 to 1048576",
            id="scrypt-cost",
        ),
        pytest.param(
            {"BRIDGE_ADMIN_IDLE_MINUTES": "0"},
            "BRIDGE_ADMIN_IDLE_MINUTES: Must be greater than or equal to 1",
            id="idle-minutes",
        ),
        pytest.param(
            {"BRIDGE_MAX_BODY_BYTES": "lots"},
            "BRIDGE_MAX_BODY_BYTES: Not a valid integer.",
            id="body-limit-not-int",
        ),
        pytest.param(
            {"BRIDGE_RETRY_SCHEDULE": "5s,soon"},
            "BRIDGE_RETRY_SCHEDULE: 'soon' is not a duration like 5s, 5m, 2h",
            id="retry-schedule",
        ),
        pytest.param(
            {"BRIDGE_LOG_LEVEL": "CHATTY"},
            "BRIDGE_LOG_LEVEL: Must be one of: DEBUG, INFO, WARNING, ERROR.",
            id="log-level",
        ),
        pytest.param(
            {"BRIDGE_CONFIG": "/nonexistent/routing.toml"},
            "BRIDGE_CONFIG: file /nonexistent/routing.toml does not exist",
            id="config-missing",
        ),
    ],
)
def test_single_environment_problem(changes: dict[str, str | None], expected: str) -> None:
    """Each bad variable is named with what is wrong, and nothing else is reported."""
    problems = _problems(_environ(**changes))
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected)


def test_secret_values_are_not_echoed_in_problems() -> None:
    """A malformed token entry is reported by its position, never by its value."""
    problems = _problems(_environ(BRIDGE_API_TOKENS="ops:reader:short-secret-value"))
    assert "short-secret-value" not in "\n".join(problems)


def test_unknown_office_references() -> None:
    """Responsibilities naming offices that do not exist are refused, each one named."""
    raw = _raw_config()
    raw["responsibilities"]["tax"]["usingen"] = "usingen-kasse"
    raw["responsibilities"]["public-order"]["neu-anspach"] = "na-ordnungsamt"
    problems = _config_problems(raw)
    assert "responsibilities.tax.usingen: unknown office 'usingen-kasse'" in problems
    assert "responsibilities.public-order.neu-anspach: unknown office 'na-ordnungsamt'" in problems
    assert len(problems) == 2


def test_office_of_the_wrong_task_area() -> None:
    """A tax case must not be routed to the public-order office."""
    raw = _raw_config()
    raw["responsibilities"]["tax"]["usingen"] = "neu-anspach-ordnungsamt"
    problems = _config_problems(raw)
    assert problems == [
        "responsibilities.tax.usingen: office neu-anspach-ordnungsamt serves task area "
        "'public-order', not 'tax'"
    ]


def test_gaps_in_responsibilities() -> None:
    """Every member town needs an office for every task area a service uses."""
    raw = _raw_config()
    del raw["responsibilities"]["tax"]["neu-anspach"]
    raw["municipalities"]["wehrheim"] = {
        "name": "Wehrheim",
        "ags": "06434012",
        "ars": "064340012012",
        "postal_codes": ["61273"],
        "reference_prefix": "WH",
    }
    problems = _config_problems(raw)
    assert sorted(problems) == sorted(
        [
            "responsibilities.tax: no office is responsible for Neu-Anspach (neu-anspach)",
            "responsibilities.tax: no office is responsible for Wehrheim (wehrheim)",
            "responsibilities.public-order: no office is responsible for Wehrheim (wehrheim)",
            "responsibilities.treasury: no office is responsible for Wehrheim (wehrheim)",
        ]
    )


def test_joining_town_is_configuration_only() -> None:
    """Wehrheim joins by adding itself and its responsibilities: the configuration is valid."""
    raw = _raw_config()
    raw["municipalities"]["wehrheim"] = {
        "name": "Wehrheim",
        "ags": "06434012",
        "ars": "064340012012",
        "postal_codes": ["61273"],
        "reference_prefix": "WH",
    }
    raw["responsibilities"]["tax"]["wehrheim"] = "usingen-steueramt"
    raw["responsibilities"]["public-order"]["wehrheim"] = "neu-anspach-ordnungsamt"
    raw["responsibilities"]["treasury"]["wehrheim"] = "usingen-stadtkasse"
    config = parse_config(raw, SECRETS)
    wehrheim = config.municipality_by_ags("06434012")
    assert wehrheim is not None
    dog = config.services["dog-registration"]
    assert [o.id for o in config.route(dog, wehrheim, {})] == ["usingen-steueramt"]


@pytest.mark.parametrize("option", ["password", "api_token", "client_secret", "api_key"])
def test_inline_secrets_are_refused(option: str) -> None:
    """A secret written into the file is refused with a hint to name an environment variable."""
    raw = _raw_config()
    raw["offices"]["usingen-steueramt"]["options"][option] = "hunter2"
    problems = _config_problems(raw)
    assert problems == [
        f"offices.usingen-steueramt.options.{option}: secrets never go into the file; "
        f"name an environment variable with {option}_env instead"
    ]
    assert "hunter2" not in "\n".join(problems)


def test_missing_secret_environment_variables() -> None:
    """Every secret the file refers to must be set, each missing one named."""
    problems = _config_problems(_raw_config(), {"BRIDGE_SECRET_FORMCYCLE": FORMCYCLE_SECRET})
    assert sorted(problems) == [
        "environment variable BRIDGE_SECRET_EPAY21_PASSWORD (a secret named in the file) is not set",
        "environment variable BRIDGE_SECRET_FORMCYCLE_SIGNING (a secret named in the file) is not set",
        "environment variable BRIDGE_SECRET_OFFICE_SIGNING (a secret named in the file) is not set",
    ]


def test_several_configuration_problems_at_once() -> None:
    """Unknown municipality, unknown service, bad secret reference: all in one report."""
    raw = _raw_config()
    raw["offices"]["usingen-steueramt"]["municipality"] = "oberursel"
    raw["senders"]["formcycle"]["services"].append("cat-registration")
    raw["offices"]["neu-anspach-ordnungsamt"]["options"]["signing_secret_env"] = "lower-case"
    raw["responsibilities"]["tax"]["kronberg"] = "usingen-steueramt"
    problems = _config_problems(raw)
    assert "offices.usingen-steueramt.municipality: unknown municipality 'oberursel'" in problems
    assert "senders.formcycle.services: unknown service 'cat-registration'" in problems
    assert (
        "offices.neu-anspach-ordnungsamt.options.signing_secret_env: "
        "must name an environment variable" in problems
    )
    assert "responsibilities.tax.kronberg: unknown municipality" in problems


@pytest.mark.parametrize("name", ["BRIDGE_SECRET_OFFICE_SIGNING\n", "lower-case"])
def test_an_environment_variable_name_is_the_whole_value(name: str) -> None:
    """A name with a trailing newline passed a ``$``-anchored check; the whole value counts."""
    raw = _raw_config()
    raw["offices"]["neu-anspach-ordnungsamt"]["options"]["signing_secret_env"] = name
    assert (
        "offices.neu-anspach-ordnungsamt.options.signing_secret_env: "
        "must name an environment variable" in _config_problems(raw)
    )


def test_schema_errors_of_the_file_are_reported_with_their_path() -> None:
    """Type errors in the file name the dotted path of each bad entry."""
    raw = _raw_config()
    raw["municipalities"]["usingen"]["ags"] = "6434011"
    raw["municipalities"]["neu-anspach"]["reference_prefix"] = "na"
    problems = _config_problems(raw)
    assert any(
        p.startswith("municipalities.usingen.") and p.endswith("ags: 8 digits") for p in problems
    )
    assert any(
        p.startswith("municipalities.neu-anspach.")
        and p.endswith("reference_prefix: 2-4 capital letters")
        for p in problems
    )
    assert len(problems) == 2


def test_lead_time_is_configured_in_hours() -> None:
    """lead_hours sets the lead time; a former lead_days still counts as days x 24 hours."""
    raw = _raw_config()
    assert parse_config(raw, SECRETS).services["traffic-order"].lead_hours == 72
    raw["services"]["traffic-order"]["lead_hours"] = 96
    assert parse_config(raw, SECRETS).services["traffic-order"].lead_hours == 96
    del raw["services"]["traffic-order"]["lead_hours"]
    raw["services"]["traffic-order"]["lead_days"] = 2
    assert parse_config(raw, SECRETS).services["traffic-order"].lead_hours == 48
    raw["services"]["traffic-order"]["lead_hours"] = 96
    assert _config_problems(raw) == [
        "services.traffic-order.lead_days: give only lead_hours (lead_days is replaced)"
    ]
