"""The schemas' own field loop and load sequence load exactly as marshmallow's (property tests).

`BridgeSchema._deserialize` replaces marshmallow's per-field loop for the bridge's case (one
object, no `partial`) because that loop cost a sixth of every validation, and
`BridgeSchema._do_load` its hook dispatch around it (ADR 16). Each generated body, valid or
broken, from a form or as JSON, with unknown keys ignored or refused, must give the same data,
flags and messages both ways; marshmallow's `Schema._deserialize` and `Schema._do_load` are
the reference.

Inside the loop each field first goes through its compiled one-pass loader
(`schemas.blocks.fast_loader`), which either gives what ``field.deserialize`` gives or declines;
the valid samples must load without any field declining, and documents of the published
schemas must load as marshmallow loads them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError, fields

from schemas import SCHEMAS, ValidationOptions, json_schema
from schemas.blocks import BridgeSchema, is_blank
from tests.schemas.agreement import documents
from tests.schemas.samples import SAMPLE_NOW, dog_registration_payload, traffic_order_payload

SAMPLES = {
    "dog-registration@1": dog_registration_payload,
    "traffic-order@1": traffic_order_payload,
}

#: Values a field may meet: right, wrong type, blank, nested, too long.
VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-3, 3),
        st.sampled_from(["", " ", "ja", "true", "2026-05-01", "63250", "x" * 300]),
        st.text(max_size=8),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)


def paths(node: Any, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Every path into a sample body (keys and list indexes)."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        yield (*prefix, key)
        if isinstance(value, dict | list):
            yield from paths(value, (*prefix, key))


@st.composite
def bodies(draw: st.DrawFn, key: str) -> dict[str, Any]:
    """A sample body with a few changes: values replaced, keys removed, unknown keys added."""
    body = copy.deepcopy(SAMPLES[key]())
    where = list(paths(body))
    for _ in range(draw(st.integers(0, 4))):
        path = draw(st.sampled_from(where))
        parent: Any = body
        try:
            for step in path[:-1]:
                parent = parent[step]
            action = draw(st.sampled_from(["replace", "remove", "unknown"]))
            if action == "replace":
                parent[path[-1]] = draw(VALUES)
            elif action == "remove" and isinstance(parent, dict):
                parent.pop(path[-1], None)
            elif isinstance(parent, dict):
                parent[draw(st.sampled_from(["extra", "Bemerkung", "dog_name"]))] = draw(VALUES)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed or replaced the way there
    return body


def as_form(node: Any) -> Any:
    """The body as a form sends it: every scalar a string ("" for nothing)."""
    if isinstance(node, dict):
        return {k: as_form(v) for k, v in node.items()}
    if isinstance(node, list):
        return [as_form(v) for v in node]
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


def outcome(key: str, body: dict[str, Any], options: ValidationOptions) -> tuple[Any, ...]:
    """What validation gives: the data and flags, or the messages and the valid part."""
    try:
        validated = SCHEMAS.get(key).validate(copy.deepcopy(body), options)
    except ValidationError as error:
        return ("refused", repr(error.messages), repr(error.valid_data))
    return ("accepted", validated.data, validated.flags)


@contextmanager
def marshmallows_loop() -> Iterator[None]:
    """Load with marshmallow's own `Schema._deserialize` and `Schema._do_load` inside the block."""
    ours = BridgeSchema.__dict__["_deserialize"]
    our_load = BridgeSchema.__dict__["_do_load"]
    BridgeSchema._deserialize = Schema._deserialize  # type: ignore[method-assign]  # the reference, for the comparison only
    BridgeSchema._do_load = Schema._do_load  # type: ignore[method-assign]  # as above
    try:
        # Every schema of the registry derives from BridgeSchema, so this is what they now run.
        assert all(
            issubclass(entry.schema_class, BridgeSchema)
            and entry.schema_class._deserialize is Schema._deserialize
            and entry.schema_class._do_load is Schema._do_load
            for entry in SCHEMAS
        )
        yield
    finally:
        BridgeSchema._deserialize = ours  # type: ignore[method-assign]  # restored
        BridgeSchema._do_load = our_load  # type: ignore[method-assign]  # restored


@pytest.mark.parametrize("key", sorted(SAMPLES))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_field_loop_loads_as_marshmallows(key: str, data: st.DataObject) -> None:
    body = data.draw(bodies(key))
    form = data.draw(st.booleans())
    options = ValidationOptions(
        now=SAMPLE_NOW,
        form_input=form,
        unknown=data.draw(st.sampled_from(["ignore", "reject"])),
    )
    sent = as_form(body) if form else body
    ours = outcome(key, sent, options)
    with marshmallows_loop():
        reference = outcome(key, sent, options)
    assert ours == reference


@contextmanager
def declined_fields() -> Iterator[list[str]]:
    """The names of the fields that went through marshmallow's ``Field.deserialize``."""
    seen: list[str] = []
    original = fields.Field.deserialize

    def counting(self: fields.Field[Any], value: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(self.name or "?")
        return original(self, value, *args, **kwargs)

    fields.Field.deserialize = counting  # type: ignore[method-assign]  # counts the fallbacks only
    try:
        yield seen
    finally:
        fields.Field.deserialize = original  # type: ignore[method-assign]  # restored


@pytest.mark.parametrize("key", sorted(SAMPLES))
@pytest.mark.parametrize("form", [False, True])
@pytest.mark.parametrize("unknown", ["ignore", "reject"])
def test_valid_samples_load_in_one_pass(key: str, form: bool, unknown: str) -> None:
    """No field of a valid submission falls back to marshmallow, and the data are its data."""
    options = ValidationOptions(now=SAMPLE_NOW, form_input=form, unknown=unknown)  # type: ignore[arg-type]  # a literal of the parametrize list
    body = SAMPLES[key]()
    sent = as_form(body) if form else body
    with declined_fields() as declined:
        ours = outcome(key, sent, options)
    assert ours[0] == "accepted"
    assert declined == []
    with marshmallows_loop():
        assert outcome(key, sent, options) == ours


def test_an_invalid_value_falls_back_to_marshmallows_message() -> None:
    """A wrong value declines the fast loader; the error is marshmallow's, word for word."""
    body = dog_registration_payload()
    body["dog"]["microchip_number"] = "12345"
    options = ValidationOptions(now=SAMPLE_NOW)
    with declined_fields() as declined:
        ours = outcome("dog-registration@1", body, options)
    assert declined == ["microchip_number"]
    assert ours[0] == "refused"
    assert "Transpondernummer muss aus genau 15 Ziffern" in ours[1]
    with marshmallows_loop():
        assert outcome("dog-registration@1", body, options) == ours


@pytest.mark.parametrize("key", sorted(SAMPLES))
@settings(
    max_examples=5,  # a traffic order takes seconds to generate (test_schemas_agreement)
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
@given(data=st.data())
def test_published_documents_load_as_marshmallows(key: str, data: st.DataObject) -> None:
    """Documents of the published JSON Schema (as JSON and as a form) load as marshmallow's."""
    document = data.draw(documents(json_schema(key, attachments="stored")), label="document")
    form = data.draw(st.booleans())
    options = ValidationOptions(now=SAMPLE_NOW, form_input=form)
    sent = as_form(document) if form else document
    ours = outcome(key, sent, options)
    with marshmallows_loop():
        assert outcome(key, sent, options) == ours


def blank_as_defined(value: object) -> bool:
    """`is_blank` as its docstring defines it, with ABC tests only (the reference)."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, Mapping):
        return all(blank_as_defined(item) for item in value.values())
    if isinstance(value, list | tuple):
        return all(blank_as_defined(item) for item in value)
    return False


@settings(max_examples=300, deadline=None)
@given(value=VALUES)
def test_is_blank_keeps_its_definition(value: Any) -> None:
    """The dict shortcut of `is_blank` (form sections) answers as the definition does."""
    assert is_blank(value) == blank_as_defined(value)
