"""The JSON envelope document and the parsing of Retry-After."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json

import pytest

from infra.standard_webhooks import sign
from integrations.channels import envelope_json
from integrations.channels.webhook import MAX_RETRY_AFTER_S, parse_retry_after, render_json

from .factories import PDF, attachment, envelope

NOW = dt.datetime(2026, 3, 2, 12, 0, 0, tzinfo=dt.UTC)


def test_envelope_document_shape() -> None:
    env = envelope()
    document = envelope_json(env)

    assert document["type"] == "case.created"
    assert document["version"] == 1
    assert document["delivery_id"] == env.delivery_id
    assert document["reference"] == "US-2026-000123"
    assert document["service"] == {
        "id": "dog-registration",
        "title": "Hund anmelden",
        "leika": "99102013104000",
        "schema": "dog-registration@1",
    }
    assert document["timestamp"] == document["received_at"] == "2026-03-02T09:30:00Z"
    [sent] = document["attachments"]
    assert base64.b64decode(sent["content_base64"]) == PDF
    assert sent["sha256"] == env.attachments[0].sha256
    assert "attempt" not in document


def test_retries_render_the_same_bytes() -> None:
    env = envelope()
    retry = envelope(delivery_id=env.delivery_id, attempt=3)

    assert render_json(envelope_json(env)) == render_json(envelope_json(retry))


def test_inline_limit_and_content_without_link() -> None:
    big = attachment(b"G" * 2000)
    stored_only = attachment(b"H" * 10, inline_content=False)
    no_link = attachment(b"I" * 2000, fetch_url=None)
    document = envelope_json(envelope(attachments=[big, stored_only, no_link]), 1000)

    [a, b, c] = document["attachments"]
    assert a["content_base64"] is None
    assert a["fetch_url"] == big.fetch_url
    assert b["content_base64"] is None
    # Over the limit but nowhere to fetch it: better inline than lost.
    assert c["content_base64"] is not None


def test_values_that_json_cannot_write_are_converted() -> None:
    data = {"born": dt.date(1980, 4, 1), "fee": decimal.Decimal("35.00"), "tags": ("a", "b")}
    naive = dt.datetime(2026, 3, 2, 9, 30)  # as SQLite hands it back
    document = envelope_json(envelope(data=data, received_at=naive))

    assert json.loads(render_json(document))["data"] == {
        "born": "1980-04-01",
        "fee": "35.00",
        "tags": ["a", "b"],
    }
    assert document["received_at"] == "2026-03-02T09:30:00Z"


def test_signature_matches_the_standard_webhooks_example() -> None:
    # The example from the Standard Webhooks specification.
    key = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    body = b'{"test": 2432232314}'
    signature = sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)

    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        (" 5 ", 5.0),
        ("0", 0.0),
        ("-3", None),
        ("1.5", None),
        ("soon", None),
        ("Mon, 02 Mar 2026 12:01:30 GMT", 90.0),
        ("Mon, 02 Mar 2026 11:00:00 GMT", 0.0),  # in the past: retry now
        ("99999999999", MAX_RETRY_AFTER_S),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == expected
