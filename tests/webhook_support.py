"""Helpers for the webhook tests: exact request bodies, signatures, and problem assertions."""

from __future__ import annotations

import io
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask.testing import FlaskClient
from werkzeug.test import EnvironBuilder, TestResponse, run_wsgi_app
from werkzeug.wrappers import Request

from infra.standard_webhooks import sign, signing_key
from tests.conftest import FORMCYCLE_SECRET, SIGNING_SECRET
from tests.factories import flatten

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "urn:formcycle-bridge:problem:"
BOUNDARY = "bridge-test-boundary-7f3a"
REFERENCE = r"^(NA|US)-\d{4}-\d{6}$"


@dataclass(frozen=True)
class FilePart:
    """One file part of a multipart body."""

    name: str
    filename: str
    content_type: str
    content: bytes


def webhook_path(service: str) -> str:
    """The intake URL of a service."""
    return f"/webhooks/formcycle/{service}"


def secret_headers() -> dict[str, str]:
    """The Formcycle sender's shared-secret header."""
    return {"X-Bridge-Secret": FORMCYCLE_SECRET}


def form_body(payload: Mapping[str, Any], extra: Iterable[tuple[str, str]] = ()) -> bytes:
    """A urlencoded body of dotted keys, as Formcycle posts a form."""
    return urlencode([*flatten(payload), *extra]).encode()


def multipart_body(
    fields: Sequence[tuple[str, str]],
    files: Sequence[FilePart] = (),
    boundary: str = BOUNDARY,
) -> tuple[bytes, str]:
    """A multipart/form-data body built byte by byte, and its Content-Type."""
    out = io.BytesIO()
    for name, value in fields:
        out.write(f"--{boundary}\r\n".encode())
        out.write(f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode())
        out.write(value.encode("utf-8") + b"\r\n")
    for part in files:
        out.write(f"--{boundary}\r\n".encode())
        out.write(
            f'Content-Disposition: form-data; name="{part.name}"; '
            f'filename="{part.filename}"\r\n'.encode()
        )
        out.write(f"Content-Type: {part.content_type}\r\n\r\n".encode())
        out.write(part.content + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def signature_headers(
    body: bytes,
    webhook_id: str,
    timestamp: int | None = None,
    secret: str = SIGNING_SECRET,
) -> dict[str, str]:
    """Standard Webhooks headers signing `body` (the timestamp defaults to now)."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(signing_key(secret), webhook_id, ts, body),
    }


def post(
    client: FlaskClient,
    service: str,
    body: bytes,
    content_type: str | None = FORM,
    headers: Mapping[str, str] | None = None,
) -> TestResponse:
    """POST a body to a service's webhook (shared-secret auth unless `headers` is given)."""
    sent = dict(secret_headers() if headers is None else headers)
    if content_type is not None:
        sent["Content-Type"] = content_type
    return client.post(webhook_path(service), data=body, headers=sent)


def post_chunked(
    client: FlaskClient,
    service: str,
    body: bytes,
    content_type: str,
    headers: Mapping[str, str] | None = None,
) -> TestResponse:
    """POST a body without Content-Length, as a WSGI server hands on a chunked request.

    The environ goes straight to the app: the test client would rebuild it and drop
    `wsgi.input_terminated`, which is what lets the app read a body of unknown length.
    """
    sent = dict(secret_headers() if headers is None else headers)
    sent["Content-Type"] = content_type
    sent["Transfer-Encoding"] = "chunked"
    environ = EnvironBuilder(
        path=webhook_path(service),
        method="POST",
        headers=list(sent.items()),
        input_stream=io.BytesIO(body),
    ).get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input_terminated"] = True
    app_iter, status, response_headers = run_wsgi_app(client.application, environ, buffered=True)
    return TestResponse(app_iter, status, response_headers, request=Request(environ))


def assert_problem(
    response: TestResponse,
    status: int,
    problem_type: str,
    *,
    errors: Iterable[tuple[str, str]] | None = None,
    detail: str | None = None,
    title: str | None = None,
    lang: str = "de",
) -> dict[str, Any]:
    """Check an RFC 9457 answer: status, media type, type, language, and the named fields."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_JSON
    assert response.headers.get("Content-Language") == lang
    body = response.get_json(force=True)
    assert isinstance(body, dict)
    assert body["type"] == PROBLEM_BASE + problem_type
    assert body["status"] == status
    assert isinstance(body["title"], str)
    assert body["title"]
    if title is not None:
        assert body["title"] == title
    if detail is not None:
        assert body.get("detail") == detail
    found = [(e["field"], e["message"]) for e in body.get("errors", [])]
    expected = list(errors or [])
    # Every failing field named, with its message, and nothing else.
    assert sorted(found) == sorted(expected)
    return body
