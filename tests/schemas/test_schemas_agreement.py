"""The validator and the published JSON Schema agree on JSON bodies (property tests).

Documents generated from the published schema (hypothesis-jsonschema) are accepted by the
validator, apart from the rules JSON Schema cannot express (`RULES`); documents the schema
refuses (a value of the wrong type, a missing key, an unknown key) are refused by it.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from schemas import SCHEMAS, Limits, ValidationOptions, flatten_messages, json_schema
from schemas.blocks import LOCAL_DATETIME_PATTERN
from tests.schemas.agreement import documents, schema_validator
from tests.schemas.samples import SAMPLE_NOW

KEYS = SCHEMAS.keys()
#: Fixed options: JSON input on the samples' day, default limits, unknown keys ignored.
OPTIONS = ValidationOptions(now=SAMPLE_NOW)
#: The same, refusing unknown keys (the published schema then says additionalProperties false).
REJECTING = ValidationOptions(now=SAMPLE_NOW, unknown="reject")

#: The documented rules the JSON Schema cannot express: (where, German message start).
#: They depend on the time of arrival or compare two fields.
RULES: dict[str, tuple[str, str]] = {
    "birth and acquisition dates not after today": (
        r"(.*\.)?(birth_date|acquisition_date)",
        "Das Datum darf nicht in der Zukunft liegen.",
    ),
    "a dog is acquired not before its birth": (
        r"dog\.acquisition_date",
        "Das Datum der Anschaffung darf nicht vor dem Geburtsdatum",
    ),
    "the start of a traffic order not in the past": (
        r"period\.start",
        "Der Beginn liegt in der Vergangenheit.",
    ),
    "the start of a traffic order at least lead_hours after arrival": (
        r"period\.start",
        "Der Beginn muss mindestens 72 Stunden nach dem Eingang",
    ),
    "the end of a traffic order after its start": (
        r"period\.end",
        "Das Ende muss nach dem Beginn liegen.",
    ),
}
#: A local time (no offset) is described by a pattern, which cannot tell whether the day
#: exists (31 February): the validator's calendar check is the one documented exception.
LOCAL_DAY_CHECK = (r"period\.(start|end)", "Bitte geben Sie einen gültigen Zeitpunkt ein")

# A traffic order takes seconds to generate (30 of them took 456 s of a 13-minute suite on
# 2 cores; 15 took about 300 s alone in December 2026): 10 per run, and each CI run draws new
# ones. (Measured once with 100 per test: 400 documents, no disagreement.)
EXAMPLES = 10
PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


def _no_such_day(document: Any, path: str) -> bool:
    """Whether the local time at ``path`` names a day the calendar does not have."""
    value = _at(document, tuple(path.split(".")))
    if not isinstance(value, str) or not re.fullmatch(LOCAL_DATETIME_PATTERN, value):
        return False
    try:
        dt.date.fromisoformat(value[:10])
    except ValueError:
        return True
    return False


def is_rule(document: Any, path: str, message: str) -> bool:
    """Whether an error is one of the documented `RULES` (or the calendar check)."""
    for where, start in RULES.values():
        if re.fullmatch(where, path) and message.startswith(start):
            return True
    where, start = LOCAL_DAY_CHECK
    return bool(
        re.fullmatch(where, path) and message.startswith(start) and _no_such_day(document, path)
    )


def other_errors(key: str, document: Any, options: ValidationOptions) -> list[tuple[str, str]]:
    """The validator's errors for ``document`` that are not documented rules."""
    try:
        SCHEMAS.get(key).validate(document, options)
    except ValidationError as error:
        found = flatten_messages(error.messages, "de")
        return [(path, text) for path, text in found if not is_rule(document, path, text)]
    return []


@pytest.mark.parametrize("key", KEYS)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_validator_accepts_what_the_schema_accepts(key: str, data: st.DataObject) -> None:
    """Every document of the published schema passes, or fails only a documented rule."""
    document = data.draw(documents(json_schema(key, attachments="stored")), label="document")
    assert other_errors(key, document, OPTIONS) == []


def _positions(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The paths of every value inside ``node`` (keys of objects, indexes of arrays)."""
    found = [path]
    if isinstance(node, dict):
        for name, value in node.items():
            found += _positions(value, (*path, name))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _positions(value, (*path, index))
    return found


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        document = document[step]
    return document


#: Replacement values, one per JSON type; a mutation picks one of another type.
VALUES: list[Any] = [None, True, 0, 1.5, "x", [], {}]


def _json_type(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


@pytest.mark.parametrize("key", KEYS)
@PROPERTY_SETTINGS
@given(data=st.data())
def test_validator_refuses_what_the_schema_refuses(key: str, data: st.DataObject) -> None:
    """A valid document with a wrong type, a missing key or an unknown key is refused."""
    schema = json_schema(key, Limits(unknown="reject"), attachments="stored")
    checker = schema_validator(schema)
    document = data.draw(documents(schema), label="document")
    mutated = copy.deepcopy(document)
    kind = data.draw(st.sampled_from(["wrong type", "missing key", "unknown key"]), label="kind")
    if kind == "wrong type":
        path = data.draw(st.sampled_from(_positions(document)), label="path")
        old = _at(document, path)
        new = data.draw(
            st.sampled_from([v for v in VALUES if _json_type(v) != _json_type(old)]), label="new"
        )
        if not path:
            mutated = new
        else:
            _at(mutated, path[:-1])[path[-1]] = new
    elif kind == "missing key":
        keys = [p for p in _positions(document) if p and isinstance(_at(document, p[:-1]), dict)]
        if not keys:
            return
        path = data.draw(st.sampled_from(keys), label="path")
        del _at(mutated, path[:-1])[path[-1]]
    else:
        objects = [p for p in _positions(document) if isinstance(_at(document, p), dict)]
        path = data.draw(st.sampled_from(objects), label="path")
        _at(mutated, path)["zz_unknown"] = "x"
    if checker.is_valid(mutated):
        event(f"{kind}: still valid")
        return  # e.g. an optional key removed: the schema still accepts it
    event(f"{kind}: refused by the schema")
    # The unmutated document fails at most documented rules (the test above), so an error
    # beyond them comes from the mutation.
    assert other_errors(key, mutated, REJECTING) != [], (kind, mutated)
