"""Property tests: no body, key, depth, encoding or size gets a 5xx, and a refusal stores nothing.

Hypothesis runs derandomized with no example database, so CI sees the same examples every
time; the counts are chosen so this file takes well under a minute on both stores.
"""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bridge import create_app
from bridge.intake.bodies import parse_body
from domain.intake.forms import RawSubmission
from domain.intake.limits import BodyLimits
from domain.problems import Problem
from domain.settings import Settings
from store.engine import Store
from tests.conftest import FORMCYCLE_SECRET, snapshot
from tests.factories import ELF, PDF, PNG, dog, flatten, traffic
from tests.webhook_support import FilePart, multipart_body, signature_headers

ANSWERS = {202, 400, 401, 404, 409, 413, 415, 422}
PARSER_ANSWERS = {400, 413, 415}
LIMITS = BodyLimits(
    max_body_bytes=64 * 1024, max_file_bytes=8 * 1024, max_files=3, max_depth=32, max_fields=200
)
PARSER_EXAMPLES = 300
ENDPOINT_EXAMPLES = 250

PROFILE = settings(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

MEDIA_TYPES = st.sampled_from(
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=latin-1",
        "application/x-www-form-urlencoded; charset=x-klingon",
        "multipart/form-data; boundary=b0undary",
        "multipart/form-data",
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "",
    ]
)
# "¹" and "٣" pass str.isdigit() but not int(): list positions must be ASCII digits.
SEGMENT = st.text(alphabet="abcxyz019_-Ää¹٣", min_size=1, max_size=6)
TEXT = st.text(max_size=40)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), TEXT)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(SEGMENT, inner, max_size=4)
    ),
    max_leaves=20,
)


@st.composite
def dotted_keys(draw: st.DrawFn) -> str:
    """A field name of 1 to 40 segments, or now and then 1,000 (the RecursionError of old)."""
    depth = draw(st.sampled_from([1, 1, 1, 2, 3, 5, 31, 32, 33, 1000]) | st.integers(1, 40))
    if depth == 1000:
        return ".".join(["a"] * depth)
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(["a..b", ".a", "a.", "", "."]))
    return ".".join(draw(st.lists(SEGMENT, min_size=depth, max_size=depth)))


def _nested(depth: int) -> Any:
    node: Any = "x"
    for _ in range(depth):
        node = {"n": node}
    return node


@st.composite
def raw_bodies(draw: st.DrawFn) -> bytes:
    """Bytes of every kind: random, forms, multipart, JSON of random shape and depth."""
    kind = draw(st.sampled_from(["bytes", "form", "multipart", "json", "deep-json"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "form":
        pairs = draw(st.lists(st.tuples(dotted_keys(), TEXT), max_size=8))
        return urlencode(pairs).encode()
    if kind == "multipart":
        fields = draw(st.lists(st.tuples(dotted_keys(), TEXT), max_size=5))
        body, _ = multipart_body(fields, boundary="b0undary")
        cut = draw(st.integers(0, len(body)))
        return body if draw(st.booleans()) else body[:cut]
    if kind == "deep-json":
        return json.dumps({"a": _nested(draw(st.integers(25, 1200)))}).encode()
    return json.dumps(draw(JSON_VALUES)).encode()


@settings(PROFILE, max_examples=PARSER_EXAMPLES)
@given(content_type=MEDIA_TYPES, body=raw_bodies())
def test_body_parsers_answer_every_body(content_type: str, body: bytes) -> None:
    """Every body is parsed or refused with a 400, 413 or 415 problem: nothing else escapes."""
    status: int | None = None
    try:
        raw = parse_body(content_type, body, LIMITS)
    except Problem as problem:
        status = problem.status
    else:
        assert isinstance(raw, RawSubmission)
    event(f"parser: {status or 'parsed'}")
    assert status is None or status in PARSER_ANSWERS


@st.composite
def payloads(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A service and a payload that is valid, nearly valid, or anything but."""
    service = draw(st.sampled_from(["dog-registration"] * 5 + ["traffic-order"] * 4 + ["cat"]))
    base: dict[str, Any]
    choice = draw(st.sampled_from(["valid"] * 4 + ["construction", "empty"]))
    if choice == "empty":
        base = {}
    elif service == "traffic-order":
        base = traffic(reason="construction") if choice == "construction" else traffic()
    else:
        base = dog()
    return service, base


def _file_part(draw: st.DrawFn) -> FilePart:
    name = draw(
        st.sampled_from(["attachments", "site_plan", "attachments.0", "tfX"]) | dotted_keys()
    )
    content = draw(
        st.sampled_from([PDF, PNG, ELF, b"", PDF + b"0" * (9 * 1024)]) | st.binary(max_size=64)
    )
    declared = draw(st.sampled_from(["application/pdf", "image/png", "", "text/plain"]))
    return FilePart(name, draw(st.sampled_from(["a.pdf", "", "b.png"])), declared, content)


def _json_document(draw: st.DrawFn, document: dict[str, Any]) -> dict[str, Any]:
    """Files as base64, broken base64, details without content, or any JSON value, put in."""
    for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):
        place = draw(st.sampled_from(["attachments", "site_plan", "dog", "x.y"]))
        document[place] = draw(
            st.sampled_from(
                [
                    [{"filename": "a.pdf", "content_base64": base64.b64encode(PDF).decode()}],
                    {"filename": "a.pdf", "content_base64": "%%%"},
                    {"filename": "a.pdf", "content_type": "application/pdf", "size": 9},
                    [{"filename": "a.pdf", "size": 1, "sha256": "0" * 64}],
                ]
            )
            | JSON_VALUES
        )
    return document


def _credentials(draw: st.DrawFn, body: bytes) -> dict[str, str]:
    """The sender's credentials: mostly the secret, sometimes a signature, none or a wrong one."""
    credentials = draw(st.sampled_from(["secret"] * 6 + ["signature"] * 2 + ["none", "wrong"]))
    if credentials == "secret":
        return {"X-Bridge-Secret": FORMCYCLE_SECRET}
    if credentials == "signature":
        return signature_headers(body, draw(st.sampled_from(["m-1", "m-2"])), int(time.time()))
    if credentials == "wrong":
        return {"X-Bridge-Secret": "not-the-secret"}
    return {}


@st.composite
def webhook_calls(draw: st.DrawFn) -> dict[str, Any]:
    """One webhook call: service, encoding, fields, files, key, credentials and media type."""
    service, base = draw(payloads())
    extra = draw(st.lists(st.tuples(dotted_keys(), TEXT), max_size=2))
    key = draw(st.sampled_from([None, None, "p-1", "p-1", "p-2", " ", "k" * 201]))
    if key is not None:
        extra.append(("process_id", key))
    encoding = draw(st.sampled_from(["form", "multipart", "json"]))
    fields = [*flatten(base), *extra] if base and encoding != "json" else extra
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        # Overwrite a known field with anything: a value of the wrong kind, or nothing at all.
        if fields:
            i = draw(st.integers(0, len(fields) - 1))
            fields[i] = (fields[i][0], draw(TEXT))
    if draw(st.integers(0, 9)) == 0:
        fields.append(("filler", "x" * draw(st.integers(1, 80 * 1024))))
    if encoding == "form":
        charset = draw(st.sampled_from(["utf-8", "latin-1"]))
        body = urlencode(fields, encoding=charset, errors="replace").encode()
        content_type = f"application/x-www-form-urlencoded; charset={charset}"
    elif encoding == "multipart":
        files = [_file_part(draw) for _ in range(draw(st.integers(0, 4)))]
        body, content_type = multipart_body(fields, files)
    else:
        body = json.dumps(_json_document(draw, {**base, **dict(extra)})).encode()
        content_type = "application/json"
    if draw(st.integers(0, 14)) == 0:
        content_type = draw(MEDIA_TYPES)
    if draw(st.integers(0, 14)) == 0:
        body = body[: draw(st.integers(0, len(body)))]
    headers = _credentials(draw, body)
    headers["Content-Type"] = content_type
    return {"service": service, "body": body, "headers": headers}


@pytest.fixture
def small_app(environ: dict[str, str]) -> Iterator[Flask]:
    """The app with small limits, so that the 413 paths are reached with small bodies."""
    limits = {
        "BRIDGE_MAX_BODY_BYTES": str(LIMITS.max_body_bytes),
        "BRIDGE_MAX_FILE_BYTES": str(LIMITS.max_file_bytes),
        "BRIDGE_MAX_FILES": str(LIMITS.max_files),
        "BRIDGE_MAX_FORM_FIELDS": str(LIMITS.max_fields),
    }
    app = create_app(Settings.from_env({**environ, **limits}))
    yield app
    app.extensions["bridge"].store.dispose()


def test_endpoint_answers_every_request(small_app: Flask) -> None:
    """Random calls to the intake endpoint: each answer is one of the contract's, never a 5xx.

    A refusal leaves the store exactly as it was; an acceptance adds one submission at most.
    """
    client = small_app.test_client()
    store: Store = small_app.extensions["bridge"].store
    seen: Counter[int] = Counter()

    @settings(PROFILE, max_examples=ENDPOINT_EXAMPLES)
    @given(call=webhook_calls())
    def check(call: dict[str, Any]) -> None:
        before = snapshot(store)
        response = client.post(
            f"/webhooks/formcycle/{call['service']}", data=call["body"], headers=call["headers"]
        )
        seen[response.status_code] += 1
        event(f"endpoint: {response.status_code}")
        assert response.status_code in ANSWERS, response.get_data(as_text=True)
        after = snapshot(store)
        if response.status_code != 202 or response.headers.get("Idempotent-Replayed"):
            assert after == before
        else:
            assert len(after["submissions"]) == len(before["submissions"]) + 1

    check()
    assert sum(seen.values()) >= ENDPOINT_EXAMPLES
    # The generator reaches acceptance and the main refusals, not only one kind of answer.
    assert {202, 400, 401, 404, 422} <= set(seen), seen


def test_json_nodes_up_to_the_field_limit_parse_and_one_more_is_refused() -> None:
    """Object keys and list items together may number max_fields; one more is a 413."""
    # 2 keys + 99 items + 99 keys: exactly LIMITS.max_fields (200)
    at_limit: dict[str, object] = {"a": list(range(99)), "b": {f"k{i}": i for i in range(99)}}
    assert parse_body("application/json", json.dumps(at_limit).encode(), LIMITS).fields
    at_limit["c"] = 0
    with pytest.raises(Problem) as refused:
        parse_body("application/json", json.dumps(at_limit).encode(), LIMITS)
    assert refused.value.status == 413
    assert refused.value.type == "too-many-fields"
