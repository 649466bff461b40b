"""The routing configuration (TOML): municipalities, offices, services, responsibilities, senders.

Joining a town is an edit of this file, never of code. The file is validated as a whole at
start-up and every problem is reported at once.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from schemas import SCHEMAS, Limits
from schemas.element_names import name_table

ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*\Z")
ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}\Z")
# Option names that would put a secret into the file; secrets are referenced by env var name.
INLINE_SECRET = re.compile(r"(secret|password|token|api_key)$")


class ConfigError(Exception):
    """Raised with every problem found in the routing configuration.

    `partial` is the configuration without its malformed entries (None when the file could
    not be read), so that checks needing plugins (channel options) still run over the rest.
    """

    def __init__(self, problems: list[str], partial: Config | None = None) -> None:
        super().__init__("invalid routing configuration:\n" + "\n".join(problems))
        self.problems = problems
        self.partial = partial


@dataclass(frozen=True)
class Municipality:
    """A member town: official keys, postal codes and the prefix of its public references."""

    id: str
    name: str
    ags: str
    ars: str
    postal_codes: tuple[str, ...]
    reference_prefix: str
    # The town's own E-Payment provider (a `payment_providers` id); overrides the fee's.
    payment_provider: str | None = None


@dataclass(frozen=True)
class Office:
    """A back office (Zustellpunkt) hosted by a town for one task area, with its delivery channel."""

    id: str
    name: str
    municipality: str
    task_area: str
    channel: str
    options: Mapping[str, Any] = field(default_factory=dict)
    # Service id -> the schema version this office takes (docs/schema-versions.md); a service
    # not named here goes out in the version its `schema` names.
    schema_versions: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class ConditionalTaskArea:
    """A task area a submission needs only when the schema set `flag` (e.g. a dangerous dog)."""

    task_area: str
    flag: str


@dataclass(frozen=True)
class Fee:
    """A fee due for a service, in euros, and how it is paid (domain/payments/payments.py)."""

    amount: Decimal
    currency: str
    purpose: str  # a template: "{reference}" becomes the submission's reference
    provider: str | None = None  # a `payment_providers` id; a town's own provider wins
    before_delivery: bool = False  # hold the case deliveries until the fee is paid
    expires_after_hours: int = 72  # an unpaid transaction is given up (`expired`) after this
    notice_task_area: str = "treasury"  # who gets the payment notice (the cash office)

    def purpose_for(self, reference: str) -> str:
        """The purpose text of one submission's payment."""
        return self.purpose.replace("{reference}", reference)


@dataclass(frozen=True)
class PaymentProviderConfig:
    """One configured E-Payment provider: its plugin and the plugin's options."""

    id: str
    plugin: str
    options: Mapping[str, Any] = field(default_factory=dict)
    # What clerks read (the case page); the id is the configuration's, not a name.
    name: str = "Online-Bezahldienst"


@dataclass(frozen=True)
class Service:
    """An online service: its schema, LeiKa key, task areas and intake options."""

    id: str
    schema: str
    leika: str
    title: str
    task_areas: tuple[str, ...]
    conditional_task_areas: tuple[ConditionalTaskArea, ...]
    municipality_field: str
    idempotency_field: str
    aliases: Mapping[str, str]
    unknown_fields: str
    lead_hours: int
    min_zone_m: int
    max_zone_m: int
    fee: Fee | None
    # Days after the case is finally delivered until its personal data is purged (retention).
    retention_days: int = 90

    def limits(self) -> Limits:
        """The limits of the schema's rules this service is configured with."""
        return Limits(
            lead_hours=self.lead_hours,
            min_zone_m=self.min_zone_m,
            max_zone_m=self.max_zone_m,
            unknown="reject" if self.unknown_fields == "reject" else "ignore",
        )

    @functools.cached_property
    def _element_names(self) -> dict[str, str]:
        """Element name -> field path: the schema's default names, the aliases over them."""
        return {**name_table(SCHEMAS.get(self.schema).schema_class).paths, **self.aliases}

    def field_path(self, name: str) -> str:
        """The field a posted name stands for: a configured alias first, then the schema's
        default element name (schemas/element_names.py), else the name itself (a dotted path,
        or a key the schema does not know)."""
        return self._element_names.get(name, name)


@dataclass(frozen=True)
class Sender:
    """A system allowed to post submissions (a Formcycle installation) and how it authenticates."""

    id: str
    services: frozenset[str]
    secret_header: str
    secret_env: str | None
    signing_secret_env: str | None


@dataclass(frozen=True)
class Config:
    """The validated routing configuration."""

    municipalities: Mapping[str, Municipality]
    offices: Mapping[str, Office]
    services: Mapping[str, Service]
    responsibilities: Mapping[str, Mapping[str, str]]
    senders: Mapping[str, Sender]
    payment_providers: Mapping[str, PaymentProviderConfig] = field(default_factory=dict)

    def municipality_by_ags(self, ags: str) -> Municipality | None:
        """The member municipality with this 8-digit AGS, if any."""
        for m in self.municipalities.values():
            if m.ags == ags:
                return m
        return None

    def municipalities_by_postal_code(self, postal_code: str) -> list[Municipality]:
        """Member municipalities sharing this postal code (more than one means ambiguous)."""
        return [m for m in self.municipalities.values() if postal_code in m.postal_codes]

    def task_areas(self, service: Service, flags: Mapping[str, Any]) -> list[str]:
        """The task areas a submission of `service` with these schema flags needs, in order."""
        areas = list(service.task_areas)
        for cond in service.conditional_task_areas:
            if flags.get(cond.flag) and cond.task_area not in areas:
                areas.append(cond.task_area)
        return areas

    def route(
        self, service: Service, municipality: Municipality, flags: Mapping[str, Any]
    ) -> list[Office]:
        """The offices responsible for a submission; one per task area, never the same twice."""
        offices: list[Office] = []
        for area in self.task_areas(service, flags):
            office = self.offices[self.responsibilities[area][municipality.id]]
            if office not in offices:
                offices.append(office)
        return offices

    def payment_provider_for(self, service: Service, municipality: Municipality) -> str | None:
        """The provider a citizen of `municipality` pays `service`'s fee with (town's own first)."""
        if service.fee is None:
            return None
        return municipality.payment_provider or service.fee.provider

    def notice_office(self, service: Service, municipality: Municipality) -> Office | None:
        """The cash office that gets the payment notice for a citizen of `municipality`."""
        if service.fee is None:
            return None
        office_id = self.responsibilities.get(service.fee.notice_task_area, {}).get(municipality.id)
        return self.offices.get(office_id) if office_id else None

    def secret_names(self) -> set[str]:
        """Every environment variable the configuration refers to for a secret."""
        names: set[str] = set()
        for sender in self.senders.values():
            names.update(n for n in (sender.secret_env, sender.signing_secret_env) if n)
        for office in self.offices.values():
            names.update(_secret_refs(office.options))
        for provider in self.payment_providers.values():
            names.update(_secret_refs(provider.options))
        return names


def _secret_refs(options: Mapping[str, Any]) -> Iterable[str]:
    return (str(v) for k, v in options.items() if k.endswith("_env") and v)


class _MunicipalitySchema(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    ags = fields.String(required=True, validate=validate.Regexp(r"^\d{8}\Z", error="8 digits"))
    ars = fields.String(required=True, validate=validate.Regexp(r"^\d{12}\Z", error="12 digits"))
    postal_codes = fields.List(
        fields.String(validate=validate.Regexp(r"^\d{5}\Z", error="5 digits")),
        required=True,
        validate=validate.Length(min=1),
    )
    reference_prefix = fields.String(
        required=True, validate=validate.Regexp(r"^[A-Z]{2,4}\Z", error="2-4 capital letters")
    )
    payment_provider = fields.String(load_default=None)


class _OfficeSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 200))
    municipality = fields.String(required=True)
    task_area = fields.String(required=True, validate=validate.Regexp(ID.pattern))
    channel = fields.String(required=True)
    options = fields.Dict(keys=fields.String(), load_default=dict)
    schema_versions = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(strict=True, validate=validate.Range(min=1)),
        load_default=dict,
    )


class _ConditionalSchema(Schema):
    task_area = fields.String(required=True)
    flag = fields.String(required=True)


class _FeeSchema(Schema):
    amount = fields.String(required=True)
    currency = fields.String(load_default="EUR", validate=validate.OneOf(["EUR"]))
    purpose = fields.String(required=True, validate=validate.Length(1, 140))
    provider = fields.String(load_default=None)
    before_delivery = fields.Boolean(load_default=False)
    expires_after_hours = fields.Integer(load_default=72, validate=validate.Range(1, 90 * 24))
    notice_task_area = fields.String(load_default="treasury", validate=validate.Regexp(ID.pattern))


class _PaymentProviderSchema(Schema):
    plugin = fields.String(required=True)
    name = fields.String(load_default="Online-Bezahldienst", validate=validate.Length(1, 200))
    options = fields.Dict(keys=fields.String(), load_default=dict)


class _ServiceSchema(Schema):
    schema = fields.String(required=True)
    leika = fields.String(validate=validate.Regexp(r"^\d{14}\Z", error="14 digits"))
    title = fields.String()
    task_areas = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    conditional_task_areas = fields.List(fields.Nested(_ConditionalSchema), load_default=list)
    municipality_field = fields.String(required=True)
    idempotency_field = fields.String(load_default="process_id")
    aliases = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)
    unknown_fields = fields.String(
        load_default="ignore", validate=validate.OneOf(["ignore", "reject"])
    )
    # Hours on the time line (DST included) between arrival and the earliest start.
    lead_hours = fields.Integer(load_default=None, validate=validate.Range(0, 90 * 24))
    # The former key in calendar days, still read as days x 24 hours for existing files.
    lead_days = fields.Integer(load_default=None, validate=validate.Range(0, 90))
    min_zone_m = fields.Integer(load_default=5, validate=validate.Range(1, 1000))
    max_zone_m = fields.Integer(load_default=200, validate=validate.Range(1, 10_000))
    fee = fields.Nested(_FeeSchema, load_default=None)
    retention_days = fields.Integer(load_default=90, validate=validate.Range(1, 3650))


class _SenderSchema(Schema):
    services = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    secret_header = fields.String(load_default="X-Bridge-Secret")
    secret_env = fields.String(load_default=None, validate=validate.Regexp(ENV_NAME.pattern))
    signing_secret_env = fields.String(
        load_default=None, validate=validate.Regexp(ENV_NAME.pattern)
    )


class _ConfigSchema(Schema):
    class Meta:
        unknown = RAISE

    municipalities = fields.Dict(
        keys=fields.String(validate=validate.Regexp(ID.pattern)),
        values=fields.Nested(_MunicipalitySchema),
        required=True,
    )
    offices = fields.Dict(
        keys=fields.String(validate=validate.Regexp(ID.pattern)),
        values=fields.Nested(_OfficeSchema),
        load_default=dict,
    )
    services = fields.Dict(
        keys=fields.String(validate=validate.Regexp(ID.pattern)),
        values=fields.Nested(_ServiceSchema),
        required=True,
    )
    responsibilities = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(keys=fields.String(), values=fields.String()),
        load_default=dict,
    )
    senders = fields.Dict(
        keys=fields.String(validate=validate.Regexp(ID.pattern)),
        values=fields.Nested(_SenderSchema),
        required=True,
    )
    payment_providers = fields.Dict(
        keys=fields.String(validate=validate.Regexp(ID.pattern)),
        values=fields.Nested(_PaymentProviderSchema),
        load_default=dict,
    )


def flatten_problems(messages: Any, prefix: str = "", root: str = "") -> list[str]:
    """Marshmallow's nested error messages as "dotted.path: message" lines for operators."""
    if isinstance(messages, Mapping):
        out: list[str] = []
        for key, value in messages.items():
            out.extend(flatten_problems(value, f"{prefix}.{key}" if prefix else str(key), root))
        return out
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return [f"{prefix or root}: {' '.join(messages)}"]
    if isinstance(messages, list):
        return [p for m in messages for p in flatten_problems(m, prefix, root)]
    return [f"{prefix or root}: {messages}"]


def load_config(
    path: Path | str, environ: Mapping[str, str], *, check_secrets: bool = True
) -> Config:
    """Read, validate and cross-check the routing configuration at `path`.

    `check_secrets=False` skips only the check that every secret it names is set in `environ`
    (for `python -m bridge secrets`, which is there to set them).
    """
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"BRIDGE_CONFIG: file {path} does not exist"]) from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError([f"BRIDGE_CONFIG: {path} cannot be read: {exc}"]) from None
    return parse_config(raw, environ, source=str(path), check_secrets=check_secrets)


def parse_config(
    raw: Mapping[str, Any],
    environ: Mapping[str, str],
    source: str = "",
    *,
    check_secrets: bool = True,
) -> Config:
    """Validate an already parsed configuration mapping (see `load_config`)."""
    where = f"{source}: " if source else ""
    problems, data, broken = _load_leniently(raw)
    config = _build(data, problems)
    cross: list[str] = []
    _cross_check(config, environ if check_secrets else None, cross)
    # A malformed entry is reported once, for itself, not again wherever it is named.
    problems.extend(p for p in cross if not _names_broken(p, broken))
    if problems:
        raise ConfigError([where + p for p in problems], partial=config)
    return config


# The tables whose entries are loaded one by one: a malformed entry is left out of the rest.
_TABLES = ("municipalities", "offices", "services", "senders", "payment_providers")
_SINGULAR = {
    "municipalities": "municipality",
    "offices": "office",
    "services": "service",
    "senders": "sender",
    "payment_providers": "provider",
}


def _load_leniently(
    raw: Mapping[str, Any],
) -> tuple[list[str], dict[str, Any], dict[str, set[str]]]:
    """Load the file's tables, leaving out each entry (or table) that is malformed.

    Returns the problems of the malformed parts, the data of the rest and the ids of the
    entries left out per table, so that the cross-checks still run over everything else.
    """
    problems: list[str] = []
    broken: dict[str, set[str]] = {table: set() for table in _TABLES}
    cleaned: dict[str, Any] = dict(raw)
    for _ in range(3):  # a second pass only when a table itself was malformed
        try:
            return problems, _ConfigSchema().load(cleaned), broken
        except ValidationError as exc:
            messages = exc.messages if isinstance(exc.messages, dict) else {"": exc.messages}
            problems.extend(flatten_problems(messages))
            for key, value in messages.items():
                table = cleaned.get(key)
                if isinstance(value, dict) and isinstance(table, dict):
                    cleaned[key] = {k: v for k, v in table.items() if k not in value}
                    broken.setdefault(key, set()).update(str(k) for k in value)
                else:  # unknown, missing or not a table: left out (a required one empty)
                    cleaned.pop(key, None)
                    if key in ("municipalities", "services", "senders"):
                        cleaned[key] = {}
    # Still failing after its malformed parts were left out: cross-check nothing further.
    return (
        problems,
        _ConfigSchema().load({"municipalities": {}, "services": {}, "senders": {}}),
        broken,
    )


def _names_broken(problem: str, broken: Mapping[str, set[str]]) -> bool:
    """Whether a cross-check problem only says that a malformed entry is unknown."""
    for table, ids in broken.items():
        for entry in ids:
            if f"unknown {_SINGULAR[table]} {entry!r}" in problem:
                return True
            if table == "municipalities" and problem.endswith(f".{entry}: unknown municipality"):
                return True
    return False


def _lead_hours(sid: str, service: Mapping[str, Any], problems: list[str]) -> int:
    """The service's lead time in hours, from ``lead_hours`` or the former ``lead_days``."""
    from schemas.options import DEFAULT_LEAD_HOURS

    hours, days = service["lead_hours"], service["lead_days"]
    if hours is not None and days is not None:
        problems.append(f"services.{sid}.lead_days: give only lead_hours (lead_days is replaced)")
    if hours is not None:
        return int(hours)
    return DEFAULT_LEAD_HOURS if days is None else int(days) * 24


def _build(data: dict[str, Any], problems: list[str]) -> Config:
    municipalities = {
        mid: Municipality(
            id=mid,
            name=m["name"],
            ags=m["ags"],
            ars=m["ars"],
            postal_codes=tuple(m["postal_codes"]),
            reference_prefix=m["reference_prefix"],
            payment_provider=m["payment_provider"],
        )
        for mid, m in data["municipalities"].items()
    }
    offices = {oid: Office(id=oid, **o) for oid, o in data["offices"].items()}
    services: dict[str, Service] = {}
    for sid, s in data["services"].items():
        try:
            schema = SCHEMAS.get(s["schema"])
        except KeyError:
            problems.append(f"services.{sid}.schema: unknown schema {s['schema']!r}")
            continue
        fee = None
        if s["fee"] is not None:
            try:
                amount = Decimal(s["fee"]["amount"])
            except InvalidOperation:
                amount = Decimal(-1)
            if not amount.is_finite() or amount <= 0 or amount.as_tuple().exponent < -2:  # type: ignore[operator]
                problems.append(f"services.{sid}.fee.amount: must be a positive euro amount")
            fee = Fee(amount=amount, **{k: v for k, v in s["fee"].items() if k != "amount"})
        services[sid] = Service(
            id=sid,
            schema=s["schema"],
            leika=s.get("leika", schema.leika),
            title=s.get("title", schema.title_de),
            task_areas=tuple(s["task_areas"]),
            conditional_task_areas=tuple(
                ConditionalTaskArea(**c) for c in s["conditional_task_areas"]
            ),
            municipality_field=s["municipality_field"],
            idempotency_field=s["idempotency_field"],
            aliases=dict(s["aliases"]),
            unknown_fields=s["unknown_fields"],
            lead_hours=_lead_hours(sid, s, problems),
            min_zone_m=s["min_zone_m"],
            max_zone_m=s["max_zone_m"],
            fee=fee,
            retention_days=s["retention_days"],
        )
    senders = {
        sid: Sender(
            id=sid,
            services=frozenset(s["services"]),
            secret_header=s["secret_header"],
            secret_env=s["secret_env"],
            signing_secret_env=s["signing_secret_env"],
        )
        for sid, s in data["senders"].items()
    }
    return Config(
        municipalities=municipalities,
        offices=offices,
        services=services,
        responsibilities={k: dict(v) for k, v in data["responsibilities"].items()},
        senders=senders,
        payment_providers={
            pid: PaymentProviderConfig(
                id=pid, plugin=p["plugin"], options=dict(p["options"]), name=p["name"]
            )
            for pid, p in data["payment_providers"].items()
        },
    )


def _check_secret_options(where: str, options: Mapping[str, Any], problems: list[str]) -> None:
    """A plugin's options name environment variables for secrets, never the secrets."""
    for key, value in options.items():
        if INLINE_SECRET.search(key):
            problems.append(
                f"{where}.options.{key}: secrets never go into the file; "
                f"name an environment variable with {key}_env instead"
            )
        if key.endswith("_env") and not (isinstance(value, str) and ENV_NAME.match(value)):
            problems.append(f"{where}.options.{key}: must name an environment variable")


def _check_payments(config: Config, problems: list[str]) -> None:
    """Fees name known providers, every town has a cash office, provider secrets by env var."""
    providers = config.payment_providers
    for p in providers.values():
        _check_secret_options(f"payment_providers.{p.id}", p.options, problems)
    for m in config.municipalities.values():
        if m.payment_provider is not None and m.payment_provider not in providers:
            problems.append(
                f"municipalities.{m.id}.payment_provider: unknown provider {m.payment_provider!r}"
            )
    for s in config.services.values():
        fee = s.fee
        if fee is None:
            continue
        if fee.provider is not None and fee.provider not in providers:
            problems.append(f"services.{s.id}.fee.provider: unknown provider {fee.provider!r}")
        if "{" in fee.purpose.replace("{reference}", ""):
            problems.append(f"services.{s.id}.fee.purpose: the only placeholder is {{reference}}")
        # The cash office of every town is checked with the task areas (_check_responsibilities).
        for m in config.municipalities.values():
            if config.payment_provider_for(s, m) is None:
                problems.append(
                    f"services.{s.id}.fee: no payment provider for {m.name} ({m.id}); "
                    "set fee.provider or the town's payment_provider"
                )


def _check_municipalities(config: Config, problems: list[str]) -> None:
    """AGS and reference prefixes are unique; a town's ARS lies within its AGS's district."""
    seen_ags: dict[str, str] = {}
    seen_prefix: dict[str, str] = {}
    for m in config.municipalities.values():
        if m.ags in seen_ags:
            problems.append(f"municipalities.{m.id}.ags: {m.ags} is also {seen_ags[m.ags]}'s")
        seen_ags[m.ags] = m.id
        if m.reference_prefix in seen_prefix:
            problems.append(
                f"municipalities.{m.id}.reference_prefix: {m.reference_prefix} is also "
                f"{seen_prefix[m.reference_prefix]}'s"
            )
        seen_prefix[m.reference_prefix] = m.id
        if not m.ars.startswith(m.ags[:5]):
            problems.append(f"municipalities.{m.id}.ars: does not belong to AGS {m.ags}")


def _check_offices(config: Config, problems: list[str]) -> None:
    """Offices belong to known towns and name their secrets by environment variable."""
    for o in config.offices.values():
        if o.municipality not in config.municipalities:
            problems.append(f"offices.{o.id}.municipality: unknown municipality {o.municipality!r}")
        _check_secret_options(f"offices.{o.id}", o.options, problems)


def _check_services(config: Config, problems: list[str]) -> set[str]:
    """Zones and aliases make sense; returns the task areas the services route to."""
    needed: set[str] = set()
    for s in config.services.values():
        needed.update(s.task_areas)
        needed.update(c.task_area for c in s.conditional_task_areas)
        if s.fee is not None:
            needed.add(s.fee.notice_task_area)  # the cash office gets the payment notice
        if s.min_zone_m > s.max_zone_m:
            problems.append(f"services.{s.id}: min_zone_m is larger than max_zone_m")
        _check_element_names(s, problems)
    return needed


def _check_schema_versions(config: Config, problems: list[str]) -> None:
    """An office's pinned versions exist and its services' data can be converted down to them."""
    from schemas import SCHEMAS

    for o in config.offices.values():
        for sid, version in sorted(o.schema_versions.items()):
            where = f"offices.{o.id}.schema_versions.{sid}"
            service = config.services.get(sid)
            if service is None:
                problems.append(f"{where}: unknown service {sid!r}")
                continue
            current = SCHEMAS.get(service.schema)
            pinned = f"{current.service}@{version}"
            if pinned not in SCHEMAS:
                known = ", ".join(str(e.version) for e in SCHEMAS if e.service == current.service)
                problems.append(f"{where}: unknown schema {pinned!r} (versions: {known})")
            elif version > current.version:
                problems.append(
                    f"{where}: {pinned} is newer than the service's schema {current.key}; "
                    "data are never converted upwards"
                )
            else:
                gap = SCHEMAS.conversion_gap(current.key, version)
                if gap is not None:
                    problems.append(f"{where}: cannot send {current.key} data as {pinned}: {gap}")


def _check_element_names(service: Service, problems: list[str]) -> None:
    """Every name a form may post stands for one field: aliases point at fields of the schema,
    and neither a default element name nor an alias could mean two fields."""
    table = name_table(SCHEMAS.get(service.schema).schema_class)
    where = f"services.{service.id}.aliases"
    for name, paths in table.collisions.items():
        if name not in service.aliases:
            problems.append(
                f"services.{service.id}: the element name {name!r} would stand for "
                f"{' and '.join(paths)}; set {where}.{name} to the field it means"
            )
    for alias, target in service.aliases.items():
        if not target or any(not part for part in target.split(".")):
            problems.append(f"{where}.{alias}: {target!r} is not a field path")
            continue
        if target not in table.field_paths and target != service.idempotency_field:
            problems.append(f"{where}.{alias}: {target!r} is not a field of {service.schema}")
        # A name that already stands for another field (its default element name or its
        # dotted path) would silently take that field's element away from the form.
        meant = table.paths.get(alias) or (alias if alias in table.field_paths else None)
        if meant is not None and meant != target:
            problems.append(
                f"{where}.{alias}: {alias!r} is already the element name of {meant}; "
                f"choose another name for {target}"
            )


def _check_responsibilities(config: Config, needed: set[str], problems: list[str]) -> None:
    """Every needed task area has, for every town, one known office of that task area."""
    for area in sorted(needed):
        table = config.responsibilities.get(area, {})
        for m in config.municipalities.values():
            office_id = table.get(m.id)
            if office_id is None:
                problems.append(
                    f"responsibilities.{area}: no office is responsible for {m.name} ({m.id})"
                )
            elif office_id not in config.offices:
                problems.append(f"responsibilities.{area}.{m.id}: unknown office {office_id!r}")
            elif config.offices[office_id].task_area != area:
                problems.append(
                    f"responsibilities.{area}.{m.id}: office {office_id} serves task area "
                    f"{config.offices[office_id].task_area!r}, not {area!r}"
                )
    for area, table in config.responsibilities.items():
        for mid in table:
            if mid not in config.municipalities:
                problems.append(f"responsibilities.{area}.{mid}: unknown municipality")


def _check_senders(config: Config, problems: list[str]) -> None:
    """Senders name known services and a way to authenticate."""
    for sender in config.senders.values():
        for sid in sorted(sender.services - {"*"}):
            if sid not in config.services:
                problems.append(f"senders.{sender.id}.services: unknown service {sid!r}")
        if not sender.secret_env and not sender.signing_secret_env:
            problems.append(
                f"senders.{sender.id}: needs secret_env (shared-secret header) "
                "or signing_secret_env (Standard Webhooks signature)"
            )


def _cross_check(config: Config, environ: Mapping[str, str] | None, problems: list[str]) -> None:
    """What no single table can check: references between them and the secrets they name
    (those only when `environ` is given)."""
    _check_municipalities(config, problems)
    _check_offices(config, problems)
    _check_schema_versions(config, problems)
    _check_responsibilities(config, _check_services(config, problems), problems)
    _check_payments(config, problems)
    _check_senders(config, problems)
    if environ is None:
        return
    for name in sorted(config.secret_names()):
        if not environ.get(name):
            problems.append(f"environment variable {name} (a secret named in the file) is not set")
