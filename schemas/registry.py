"""The versioned service schemas, looked up by key such as ``dog-registration@1``."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from marshmallow import EXCLUDE, RAISE

from schemas.blocks import BridgeSchema, to_jsonable, using_options
from schemas.dog_registration import DogRegistrationSchema, dog_flag_notes, dog_flags
from schemas.options import ValidationOptions
from schemas.traffic_order import TrafficOrderSchema


@dataclass(frozen=True)
class Validated:
    """The outcome of a successful validation."""

    data: dict[str, Any]
    """The validated, normalised data: JSON-serialisable, nested like the input."""
    flags: dict[str, Any]
    """Facts derived for routing, e.g. ``{"dangerous_dog": True, ...}``; ``{}`` if none."""


def drop_fields(*paths: str) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """A `ServiceSchema.to_previous` that leaves out fields a version added ("dog.tattoo").

    The data are copied, never changed in place: the stored case stays as it was received.
    """

    def convert(data: Mapping[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(dict(data))
        for path in paths:
            *parents, last = path.split(".")
            node: Any = out
            for part in parents:
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, dict):
                node.pop(last, None)
        return out

    return convert


def no_flags(data: Mapping[str, Any]) -> dict[str, Any]:
    """Flag nothing (services without derived facts)."""
    return {}


def no_flag_notes(flags: Mapping[str, Any]) -> list[str]:
    """Services without flags have nothing to tell a clerk about them."""
    return []


@dataclass(frozen=True)
class ServiceSchema:
    """One version of one service's schema, with the keys that identify the service."""

    key: str
    service: str
    version: int
    leika: str
    title_de: str
    schema_class: type[BridgeSchema]
    flagger: Callable[[Mapping[str, Any]], dict[str, Any]] = field(
        default=no_flags, compare=False, repr=False
    )
    flag_notes: Callable[[Mapping[str, Any]], list[str]] = field(
        default=no_flag_notes, compare=False, repr=False
    )
    """The flags as German sentences for clerks."""
    to_previous: Callable[[Mapping[str, Any]], dict[str, Any]] | None = field(
        default=None, compare=False, repr=False
    )
    """How valid data of this version becomes valid data of version - 1, for back offices
    that have not upgraded yet (docs/schema-versions.md); None when it cannot (version 1, or a
    change no back office can be spared)."""

    def __post_init__(self) -> None:
        """Keep the key consistent with service and version, so lookups cannot drift."""
        if self.key != f"{self.service}@{self.version}":
            raise ValueError(f"key {self.key!r} must be '{self.service}@{self.version}'")
        if self.version < 1:
            raise ValueError(f"schema {self.key!r}: versions start at 1")
        if self.version == 1 and self.to_previous is not None:
            raise ValueError(f"schema {self.key!r}: version 1 has no previous version")

    @property
    def previous_key(self) -> str:
        """The key of the version before this one ("dog-registration@1" for "@2")."""
        return f"{self.service}@{self.version - 1}"

    def validate(self, data: Mapping[str, Any], options: ValidationOptions) -> Validated:
        """Validate ``data``; raises marshmallow.ValidationError listing every failing field.

        The error's ``messages`` is a dict shaped like the input whose leaves are lists of
        `schemas.Msg` (German text, English in ``.en``).
        """
        with using_options(options):
            loaded = _schema_for(self.schema_class, options.unknown).load(data)
        return Validated(data=to_jsonable(loaded), flags=self.flagger(loaded))


@functools.lru_cache(maxsize=16)
def _schema_for(schema_class: type[BridgeSchema], unknown: str) -> BridgeSchema:
    """The shared schema instance per unknown-key policy.

    Building one copies every declared field, which costs more than validating a submission
    (bench/intake); loading keeps no state on it (the options travel in a context variable).
    """
    return schema_class(unknown=RAISE if unknown == "reject" else EXCLUDE)


class SchemaRegistry:
    """The known service schemas by key; iterating yields the `ServiceSchema` entries."""

    def __init__(self, entries: Iterable[ServiceSchema] = ()) -> None:
        """Create a registry holding ``entries``."""
        self._entries: dict[str, ServiceSchema] = {}
        for entry in entries:
            self.register(entry)

    def register(self, entry: ServiceSchema) -> ServiceSchema:
        """Add ``entry``; a key can be registered only once (versions are immutable)."""
        if entry.key in self._entries:
            raise ValueError(f"schema {entry.key!r} is already registered")
        self._entries[entry.key] = entry
        return entry

    def get(self, key: str) -> ServiceSchema:
        """The schema with ``key`` ("dog-registration@1"); KeyError if unknown."""
        try:
            return self._entries[key]
        except KeyError:
            raise KeyError(f"unknown schema {key!r}") from None

    def latest(self, service: str) -> ServiceSchema:
        """The highest version of ``service`` ("dog-registration"); KeyError if unknown."""
        versions = [entry for entry in self._entries.values() if entry.service == service]
        if not versions:
            raise KeyError(f"unknown service {service!r}")
        return max(versions, key=lambda entry: entry.version)

    def unregister(self, key: str) -> None:
        """Remove the schema ``key`` again (a test's extra version); KeyError if unknown."""
        self.get(key)
        del self._entries[key]

    def conversion_gap(self, key: str, version: int) -> str | None:
        """Why data of schema ``key`` cannot be sent as ``version`` of its service; None if
        they can (the same or an older version every step down to which declares how)."""
        try:
            self._steps(key, version)
        except (KeyError, ValueError) as exc:
            return str(exc.args[0])
        return None

    def convert(
        self, key: str, data: Mapping[str, Any], version: int
    ) -> tuple[str, dict[str, Any]]:
        """Data of schema ``key`` as data of ``version`` of the same service: (its key, data).

        Each version converts to the one before it, so the steps chain (3 -> 2 -> 1). The
        same or a newer ``version`` gives the data back unchanged under ``key``: data are
        never converted upwards. Raises KeyError or ValueError as `conversion_gap` says.
        """
        current = dict(data)
        steps = self._steps(key, version)
        for step in steps:
            assert step.to_previous is not None  # _steps checked every one
            current = step.to_previous(current)
        return (steps[-1].previous_key if steps else key), current

    def _steps(self, key: str, version: int) -> list[ServiceSchema]:
        """The schemas whose `to_previous` take data of ``key`` down to ``version``, in order."""
        entry = self.get(key)
        target = f"{entry.service}@{version}"
        if version < entry.version and target not in self._entries:
            raise KeyError(f"unknown schema {target!r}")
        steps: list[ServiceSchema] = []
        while entry.version > version:
            if entry.to_previous is None:
                raise ValueError(
                    f"{entry.key} declares no conversion to version {entry.version - 1}"
                )
            steps.append(entry)
            entry = self.get(entry.previous_key)
        return steps

    def keys(self) -> list[str]:
        """All schema keys in registration order."""
        return list(self._entries)

    def services(self) -> list[str]:
        """The distinct service names in registration order."""
        return list(dict.fromkeys(entry.service for entry in self._entries.values()))

    def __iter__(self) -> Iterator[ServiceSchema]:
        """Iterate over the entries in registration order."""
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        """Number of registered schemas."""
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        """Whether a schema with this key is registered."""
        return key in self._entries


SCHEMAS = SchemaRegistry(
    [
        ServiceSchema(
            key="dog-registration@1",
            service="dog-registration",
            version=1,
            leika="99102013104000",
            title_de="Hund anmelden",
            schema_class=DogRegistrationSchema,
            flagger=dog_flags,
            flag_notes=dog_flag_notes,
        ),
        ServiceSchema(
            key="traffic-order@1",
            service="traffic-order",
            version=1,
            leika="99108011153000",
            title_de="Verkehrsrechtliche Anordnung",
            schema_class=TrafficOrderSchema,
        ),
    ]
)
