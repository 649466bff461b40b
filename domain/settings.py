"""The one typed settings object, built once from the environment; nothing else reads it."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from domain.accounts.passwords import ScryptParams
from domain.config import Config, ConfigError, load_config
from infra.redis_connection import url_problem

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "routing.toml"
# The roles of BRIDGE_API_TOKENS, read only to move its tokens into the database once.
LEGACY_ROLES = ("reader", "admin")
MIB = 1024 * 1024


class SettingsError(Exception):
    """Raised at start-up with every problem in the environment and the configuration at once."""

    def __init__(self, problems: list[str], config: Config | None = None) -> None:
        super().__init__("invalid settings:\n" + "\n".join(f"- {p}" for p in problems))
        self.problems = problems
        # The configuration as far as it could be read, for the checks that need the plugins.
        self.config = config


@dataclass(frozen=True)
class LegacyApiToken:
    """A token of the retired BRIDGE_API_TOKENS, kept only for `tokens import-env`."""

    name: str
    role: str
    token: str = field(repr=False)


@dataclass(frozen=True)
class Settings:
    """Everything the service needs to know about its surroundings; immutable once built."""

    database_url: str
    redis_url: str
    config_path: Path
    encryption_keys: tuple[str, ...] = field(repr=False)
    config: Config = field(repr=False)
    secrets: Mapping[str, str] = field(repr=False)
    max_body_bytes: int = 25 * MIB
    max_file_bytes: int = 10 * MIB
    max_files: int = 10
    max_json_depth: int = 32
    max_form_fields: int = 500
    signature_tolerance_s: int = 300
    log_level: str = "INFO"
    log_format: str = "json"
    sqlite_busy_timeout_ms: int = 10_000
    public_url: str = ""
    retry_schedule: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
    retry_jitter: float = 0.2
    sweep_interval_s: float = 2.0
    delivery_batch: int = 20
    lease_margin_s: float = 60.0
    # E-Payment: how long after creation, then between, the provider is asked about an open
    # payment (the last step repeats until the payment's expiry); see worker/reconcile_payments.
    payment_check_schedule: tuple[float, ...] = (30, 60, 120, 300, 600, 1800, 3600)
    # Days the providers' callbacks stay in the journal (payment_callbacks), then the sweeper
    # deletes them: long enough to answer a provider's or a cash office's question about a
    # payment, short enough that the callers' addresses and a flood's rows do not stay.
    payment_journal_days: int = 30
    # Administration (issue 8): bulk replay pace, daily digest, retention.
    replay_rate_per_office: float = 5.0
    digest_recipients: tuple[str, ...] = ()
    digest_hour: int = 7
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_from: str = "bridge@localhost"
    # The digest's SMTP: "starttls" (default), "implicit" or "insecure" (plain; warned of).
    smtp_tls: str = "starttls"
    smtp_ca_file: str | None = None
    # The digest's SMTP login (both or neither); sent only inside an encrypted session.
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    # Administration (issue 8): web-page sessions, password hashing, signed fetch links.
    admin_session_hours: int = 8
    admin_idle_minutes: int = 30
    password_scrypt_n: int = 2**17
    fetch_link_hours: int = 168
    # Behind a reverse proxy (docs/proxy.md): how many proxies in front of the web process set
    # X-Forwarded-For, and which peers may set them. 0 (the default): no proxy, forwarded
    # headers are ignored and every per-address rule sees the TCP peer.
    proxy_hops: int = 0
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    # GET /metrics: with a token only `Authorization: Bearer <token>`; without one only a
    # client on loopback (Prometheus on the same host).
    metrics_token: str = field(default="", repr=False)
    # POST /callbacks/fit-connect: FIT-Connect's callbacks are HMAC-SHA512-signed with this
    # secret (set with the callback URL in FIT-Connect's portal); empty: the route answers 404.
    fit_connect_callback_secret: str = field(default="", repr=False)
    legacy_api_tokens: tuple[LegacyApiToken, ...] = field(default=(), repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build the settings from `environ` (default: the process environment) or raise SettingsError."""
        env = dict(os.environ if environ is None else environ)
        problems: list[str] = []
        try:
            values: dict[str, Any] = _EnvSchema().load(env)
        except ValidationError as exc:
            messages = exc.messages if isinstance(exc.messages, dict) else {"_": exc.messages}
            for name, msgs in sorted(messages.items()):
                problems.append(f"{name}: {' '.join(str(m) for m in _as_list(msgs))}")
            values = {}
            # The configuration file is still checked, so that every problem is reported at once.
            valid = exc.valid_data if isinstance(exc.valid_data, dict) else {}
            if "BRIDGE_CONFIG" not in messages and valid.get("config_path"):
                values = {"config_path": Path(valid["config_path"])}
        config: Config | None = None
        partial: Config | None = None
        config_path = values.get("config_path")
        if config_path is not None:
            try:
                config = load_config(config_path, env)
            except ConfigError as exc:
                problems.extend(exc.problems)
                partial = exc.partial
            else:
                partial = config
        if problems or config is None:
            raise SettingsError(problems, config=partial)
        secrets = {name: env[name] for name in config.secret_names() if name in env}
        return cls(config=config, secrets=secrets, **values)

    @property
    def password_kdf(self) -> ScryptParams:
        """The scrypt cost new password hashes get (older ones are renewed at login)."""
        return ScryptParams(n=self.password_scrypt_n)

    @property
    def is_sqlite(self) -> bool:
        """True when the store is the embedded SQLite database."""
        return self.database_url.startswith("sqlite")


def config_path_from_env(environ: Mapping[str, str] | None = None) -> Path:
    """The routing file BRIDGE_CONFIG names in `environ` (default: the process environment),
    else the shipped one; for commands that need the file before the settings are complete."""
    env = os.environ if environ is None else environ
    return Path(env.get("BRIDGE_CONFIG") or DEFAULT_CONFIG)


def log_options(environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """BRIDGE_LOG_LEVEL and BRIDGE_LOG_FORMAT alone, for gunicorn's configuration file, which
    is read before (and without) the rest of the settings; unknown values fall back to the
    defaults here, and the full settings refuse them at the app's start."""
    env = os.environ if environ is None else environ
    level = env.get("BRIDGE_LOG_LEVEL", "INFO")
    fmt = env.get("BRIDGE_LOG_FORMAT", "json")
    return (
        level if level in ("DEBUG", "INFO", "WARNING", "ERROR") else "INFO",
        fmt if fmt in ("json", "text") else "json",
    )


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_durations(text: str) -> tuple[float, ...]:
    """Parse "5s,5m,30m,2h" into seconds; an empty schedule means no retries."""
    out: list[float] = []
    for item in (x.strip() for x in text.split(",")):
        if not item:
            continue
        unit = next((u for u in ("ms", "s", "m", "h", "d") if item.endswith(u)), None)
        number = item[: -len(unit)] if unit else item
        try:
            value = float(number) * _UNITS[unit or "s"]
        except ValueError:
            raise ValueError(f"{item!r} is not a duration like 5s, 5m, 2h") from None
        if not 0 < value <= 7 * 86400:
            raise ValueError(f"{item!r} must be between 0 and 7 days")
        out.append(value)
    return tuple(out)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _valid_fernet_key(key: str) -> bool:
    try:
        Fernet(key.encode())
    except (ValueError, TypeError):
        return False
    return True


def _is_network(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def _proxies_problem(text: str, hops: int | None) -> str | None:
    """What is wrong with BRIDGE_TRUSTED_PROXIES (given BRIDGE_PROXY_HOPS), if anything."""
    proxies = _split(text)
    bad = [item for item in proxies if not _is_network(item)]
    if bad:
        return f"{', '.join(bad)}: not an address or network like 127.0.0.1 or 10.0.0.0/8"
    if hops and not proxies:
        return "BRIDGE_PROXY_HOPS is set, so at least one proxy address is needed"
    return None


def _check_redis_url(url: str) -> None:
    problem = url_problem(url)
    if problem is not None:
        raise ValidationError(problem)


#: A secret that may be left empty (the feature is then off): 32 to 256 printable characters.
OPTIONAL_SECRET = validate.Regexp(
    r"^(|[\x21-\x7e]{32,256})$",
    error="must be empty or 32 to 256 printable characters without spaces",
)


class _EnvSchema(Schema):
    """Reads and checks the environment variables; every error is reported, not just the first."""

    class Meta:
        unknown = EXCLUDE

    database_url = fields.String(
        data_key="DATABASE_URL",
        load_default=f"sqlite:///{PROJECT_ROOT / 'var' / 'bridge.db'}",
        validate=validate.Regexp(
            r"^(sqlite(\+pysqlite)?:///|postgresql(\+psycopg)?://)",
            error="must be sqlite:///PATH or postgresql://...",
        ),
    )
    redis_url = fields.String(
        data_key="REDIS_URL",
        load_default="redis://127.0.0.1:6379/0",
        validate=_check_redis_url,
    )
    config_path = fields.String(data_key="BRIDGE_CONFIG", load_default=str(DEFAULT_CONFIG))
    encryption_keys = fields.String(data_key="BRIDGE_ENCRYPTION_KEYS", required=True)
    legacy_api_tokens = fields.String(data_key="BRIDGE_API_TOKENS", load_default="")
    max_body_bytes = fields.Integer(
        data_key="BRIDGE_MAX_BODY_BYTES", load_default=25 * MIB, validate=validate.Range(1024)
    )
    max_file_bytes = fields.Integer(
        data_key="BRIDGE_MAX_FILE_BYTES", load_default=10 * MIB, validate=validate.Range(1024)
    )
    max_files = fields.Integer(
        data_key="BRIDGE_MAX_FILES", load_default=10, validate=validate.Range(0, 100)
    )
    max_json_depth = fields.Integer(
        data_key="BRIDGE_MAX_JSON_DEPTH", load_default=32, validate=validate.Range(4, 256)
    )
    max_form_fields = fields.Integer(
        data_key="BRIDGE_MAX_FORM_FIELDS", load_default=500, validate=validate.Range(10, 10_000)
    )
    signature_tolerance_s = fields.Integer(
        data_key="BRIDGE_SIGNATURE_TOLERANCE_S", load_default=300, validate=validate.Range(10, 3600)
    )
    log_level = fields.String(
        data_key="BRIDGE_LOG_LEVEL",
        load_default="INFO",
        validate=validate.OneOf(["DEBUG", "INFO", "WARNING", "ERROR"]),
    )
    log_format = fields.String(
        data_key="BRIDGE_LOG_FORMAT", load_default="json", validate=validate.OneOf(["json", "text"])
    )
    public_url = fields.String(data_key="BRIDGE_PUBLIC_URL", load_default="http://127.0.0.1:8000")
    retry_schedule = fields.String(
        data_key="BRIDGE_RETRY_SCHEDULE", load_default="5s,5m,30m,2h,5h,10h,10h"
    )
    retry_jitter = fields.Float(
        data_key="BRIDGE_RETRY_JITTER", load_default=0.2, validate=validate.Range(0, 0.5)
    )
    sweep_interval_s = fields.Float(
        data_key="BRIDGE_SWEEP_INTERVAL_S", load_default=2.0, validate=validate.Range(0.05, 600)
    )
    lease_margin_s = fields.Float(
        data_key="BRIDGE_LEASE_MARGIN_S", load_default=60.0, validate=validate.Range(0.1, 3600)
    )
    delivery_batch = fields.Integer(
        data_key="BRIDGE_DELIVERY_BATCH", load_default=20, validate=validate.Range(1, 500)
    )
    replay_rate_per_office = fields.Float(
        data_key="BRIDGE_REPLAY_RATE_PER_OFFICE",
        load_default=5.0,
        # At least one per 10 s: a paced send then always fits in a drain's lease.
        validate=validate.Range(0.1, 1000),
    )
    digest_recipients = fields.String(data_key="BRIDGE_DIGEST_RECIPIENTS", load_default="")
    digest_hour = fields.Integer(
        data_key="BRIDGE_DIGEST_HOUR", load_default=7, validate=validate.Range(0, 23)
    )
    smtp_host = fields.String(data_key="BRIDGE_SMTP_HOST", load_default="127.0.0.1")
    smtp_port = fields.Integer(
        data_key="BRIDGE_SMTP_PORT", load_default=25, validate=validate.Range(1, 65535)
    )
    smtp_from = fields.String(data_key="BRIDGE_SMTP_FROM", load_default="bridge@localhost")
    smtp_tls = fields.String(
        data_key="BRIDGE_SMTP_TLS",
        load_default="starttls",
        validate=validate.OneOf(("starttls", "implicit", "insecure")),
    )
    smtp_ca_file = fields.String(data_key="BRIDGE_SMTP_CA_FILE", load_default=None)
    smtp_user = fields.String(
        data_key="BRIDGE_SMTP_USER", load_default=None, validate=validate.Length(1, 256)
    )
    smtp_password = fields.String(
        data_key="BRIDGE_SMTP_PASSWORD", load_default=None, validate=validate.Length(1, 1024)
    )
    admin_session_hours = fields.Integer(
        data_key="BRIDGE_ADMIN_SESSION_HOURS", load_default=8, validate=validate.Range(1, 168)
    )
    admin_idle_minutes = fields.Integer(
        data_key="BRIDGE_ADMIN_IDLE_MINUTES", load_default=30, validate=validate.Range(1, 1440)
    )
    password_scrypt_n = fields.Integer(
        data_key="BRIDGE_PASSWORD_SCRYPT_N",
        load_default=2**17,
        validate=validate.OneOf(
            [2**k for k in range(14, 21)], error="must be a power of two from 16384 to 1048576"
        ),
    )
    fetch_link_hours = fields.Integer(
        data_key="BRIDGE_FETCH_LINK_HOURS", load_default=168, validate=validate.Range(1, 720)
    )
    payment_check_schedule = fields.String(
        data_key="BRIDGE_PAYMENT_CHECK_SCHEDULE", load_default="30s,1m,2m,5m,10m,30m,1h"
    )
    payment_journal_days = fields.Integer(
        data_key="BRIDGE_PAYMENT_JOURNAL_DAYS", load_default=30, validate=validate.Range(1, 3650)
    )
    proxy_hops = fields.Integer(
        data_key="BRIDGE_PROXY_HOPS", load_default=0, validate=validate.Range(0, 5)
    )
    trusted_proxies = fields.String(data_key="BRIDGE_TRUSTED_PROXIES", load_default="127.0.0.1,::1")
    metrics_token = fields.String(
        data_key="BRIDGE_METRICS_TOKEN",
        load_default="",
        validate=OPTIONAL_SECRET,
    )
    fit_connect_callback_secret = fields.String(
        data_key="BRIDGE_FIT_CONNECT_CALLBACK_SECRET",
        load_default="",
        validate=OPTIONAL_SECRET,
    )

    # The list-valued variables are checked in a schema validator that also runs when other
    # fields failed (a post_load hook would not run then, hiding these problems).
    @validates_schema(skip_on_field_errors=False)
    def _check_lists(self, data: dict[str, Any], **_: Any) -> None:
        errors: dict[str, list[str]] = {}
        if "encryption_keys" in data:
            keys = _split(data["encryption_keys"])
            if not keys:
                errors["BRIDGE_ENCRYPTION_KEYS"] = ["at least one Fernet key is required"]
            bad = [i for i, k in enumerate(keys, 1) if not _valid_fernet_key(k)]
            if bad:
                errors["BRIDGE_ENCRYPTION_KEYS"] = [
                    f"key number {', '.join(map(str, bad))} is not a valid Fernet key "
                    "(32 url-safe base64 bytes; make one with `python -m bridge generate-key`)"
                ]
        if "legacy_api_tokens" in data:
            token_errors = _parse_tokens(data["legacy_api_tokens"])[1]
            if token_errors:
                errors["BRIDGE_API_TOKENS"] = token_errors
        if "retry_schedule" in data:
            try:
                parse_durations(data["retry_schedule"])
            except ValueError as exc:
                errors["BRIDGE_RETRY_SCHEDULE"] = [str(exc)]
        errors.update(_smtp_login_problems(data))
        if "payment_check_schedule" in data:
            try:
                if not parse_durations(data["payment_check_schedule"]):
                    raise ValueError("needs at least one duration")
            except ValueError as exc:
                errors["BRIDGE_PAYMENT_CHECK_SCHEDULE"] = [str(exc)]
        if errors:
            raise ValidationError(errors)

    @validates_schema(skip_on_field_errors=False)
    def _check_proxies(self, data: dict[str, Any], **_: Any) -> None:
        if "trusted_proxies" in data:
            problem = _proxies_problem(data["trusted_proxies"], data.get("proxy_hops"))
            if problem:
                raise ValidationError({"BRIDGE_TRUSTED_PROXIES": [problem]})

    @post_load
    def _parse_lists(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data["encryption_keys"] = _split(data["encryption_keys"])
        data["legacy_api_tokens"] = tuple(_parse_tokens(data["legacy_api_tokens"])[0])
        data["retry_schedule"] = parse_durations(data["retry_schedule"])
        data["payment_check_schedule"] = parse_durations(data["payment_check_schedule"])
        data["digest_recipients"] = _split(data["digest_recipients"])
        data["trusted_proxies"] = _split(data["trusted_proxies"])
        data["config_path"] = Path(data["config_path"])
        return data


def _smtp_login_problems(data: Mapping[str, Any]) -> dict[str, list[str]]:
    """The digest's login comes as user and password together, and only over TLS."""
    user, password = data.get("smtp_user"), data.get("smtp_password")
    if bool(user) != bool(password):
        missing = "BRIDGE_SMTP_PASSWORD" if user else "BRIDGE_SMTP_USER"
        return {missing: ["BRIDGE_SMTP_USER and BRIDGE_SMTP_PASSWORD must be set together"]}
    if user and data.get("smtp_tls") == "insecure":
        return {
            "BRIDGE_SMTP_USER": [
                "a login needs BRIDGE_SMTP_TLS=starttls or implicit: "
                "credentials are never sent unencrypted"
            ]
        }
    return {}


def _split(text: str) -> tuple[str, ...]:
    return tuple(k.strip() for k in text.split(",") if k.strip())


def _parse_tokens(text: str) -> tuple[list[LegacyApiToken], list[str]]:
    """The legacy API tokens of `name:role:token,...` and a problem for each malformed entry."""
    tokens: list[LegacyApiToken] = []
    errors: list[str] = []
    for i, item in enumerate(x.strip() for x in text.split(",")):
        if not item:
            continue
        parts = item.split(":", 2)
        if len(parts) != 3 or parts[1] not in LEGACY_ROLES or len(parts[2]) < 32:
            errors.append(
                f"entry {i + 1} must be name:role:token with role in {LEGACY_ROLES} "
                "and a token of at least 32 characters"
            )
            continue
        tokens.append(LegacyApiToken(name=parts[0], role=parts[1], token=parts[2]))
    return tokens, errors
