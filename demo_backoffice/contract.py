"""The demo back office holds every document it receives to the published delivery contract.

A JSON envelope is checked against the JSON Schema the bridge publishes for it (made by the
bridge's own generator, `integrations.channels.contract`, not a copy), an XML document against
the published XSD (`documents.read_xml`). What does not fit is recorded here, per process, with
the place and the rule that failed but never a value (those are the citizen's data); the test
suite fails any test during which a violation was recorded (tests/conftest.py).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache
from typing import Any

from jsonschema import (  # type: ignore[import-untyped]  # the lock has no types-jsonschema
    Draft202012Validator,
    ValidationError,
)

from integrations.channels.contract import delivery_schema, schema_name_of

#: At most this many problems are kept per document; the first ones tell what broke.
MAX_PROBLEMS = 10


@dataclass(frozen=True)
class Violation:
    """A received document that does not fit the published contract."""

    office: str
    delivery_id: str
    format: str
    schema: str
    problems: tuple[str, ...]

    def describe(self) -> str:
        """One line per problem, headed by where the document went."""
        head = f"{self.format} {self.delivery_id} to {self.office} ({self.schema}):"
        return "\n".join([head, *(f"  {p}" for p in self.problems)])


class Recorder:
    """The violations of this process, from every demo back office in it (thread-safe)."""

    def __init__(self) -> None:
        """Start empty."""
        self._lock = threading.Lock()
        self._found: list[Violation] = []

    def record(self, violation: Violation) -> None:
        """Remember a violation."""
        with self._lock:
            self._found.append(violation)

    def peek(self) -> list[Violation]:
        """The violations recorded so far, kept."""
        with self._lock:
            return list(self._found)

    def take(self) -> list[Violation]:
        """The violations recorded so far, forgotten here."""
        with self._lock:
            found, self._found = self._found, []
            return found


RECORDER = Recorder()


@cache
def validator(name: str) -> Draft202012Validator | None:
    """The compiled validator of a published delivery schema (once per process); None if unknown."""
    try:
        schema = delivery_schema(name)
    except KeyError:
        return None
    return Draft202012Validator(schema)


def json_problems(document: Any) -> tuple[str, list[str]]:
    """(schema name, problems) of a JSON envelope: where it breaks which rule, without values."""
    name = schema_name_of(document) if isinstance(document, dict) else None
    if name is None:
        return "?", ["service.schema: missing, so no published schema applies"]
    check = validator(name)
    if check is None:
        return name, [f"service.schema: no published schema {name!r}"]
    errors = sorted(check.iter_errors(document), key=lambda e: list(map(str, e.path)))
    # One missing key fails each branch of a condition alike: say it once.
    problems = list(dict.fromkeys(_problem(e) for e in errors))
    return name, problems[:MAX_PROBLEMS]


def _problem(error: ValidationError) -> str:
    """Where and which rule: key names and the rule's own value, never a received value."""
    where = ".".join(str(p) for p in error.absolute_path) or "(document)"
    instance = error.instance if isinstance(error.instance, dict) else {}
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in instance]
        return f"{where}: missing {', '.join(missing)}"
    if error.validator == "additionalProperties":
        known = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        extra = sorted(str(k) for k in instance if k not in known)
        return f"{where}: not published {', '.join(extra)}"
    return f"{where}: {error.validator} {error.validator_value!r}"[:300]


def check_json(office: str, delivery_id: str, document: Any) -> list[str]:
    """Check a JSON envelope; a misfit is recorded and its problems returned."""
    name, problems = json_problems(document)
    if problems:
        RECORDER.record(Violation(office, delivery_id, "json", name, tuple(problems)))
    return problems


def record_xml(office: str, delivery_id: str, problem: str) -> None:
    """Record an XML document the XSD refused (`documents.read_xml` checked it)."""
    RECORDER.record(Violation(office, delivery_id, "xml", "bridge-case-1.xsd", (problem,)))
