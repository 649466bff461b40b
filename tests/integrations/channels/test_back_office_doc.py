"""docs/back-office.md against the code: its `verify` runs as printed on real signed deliveries,
and its example envelope has the keys the published schema names."""

from __future__ import annotations

import json
import time
from typing import cast

import pytest
import requests

from infra.standard_webhooks import sign, signing_key
from integrations.channels.contract import delivery_schema
from tests.conftest import ROOT

from .capture import Verify, captured_delivery, doc_function
from .conftest import SECRET_ENV, SIGNING_SECRET, ChannelFactory

PAGE = "back-office.md"


def _verify() -> Verify:
    """The page's `verify`, exactly as printed."""
    return cast(Verify, doc_function(PAGE, "import base64\n", "verify"))


@pytest.mark.parametrize("channel", ["http-json", "xml"])
def test_the_pages_verify_accepts_a_real_delivery_and_nothing_else(
    channel: str, make_channel: ChannelFactory, http: requests.Session
) -> None:
    """Signed by the channel: accepted; changed body, other secret, stale or missing: refused."""
    headers, body = captured_delivery(
        lambda url: make_channel(channel, url=url, signing_secret_env=SECRET_ENV), http
    )
    verify = _verify()

    assert verify(SIGNING_SECRET, headers, body) is True
    assert verify(SIGNING_SECRET, headers, body.replace(b"US-", b"NA-")) is False
    assert verify("whsec_" + "A" * 44, headers, body) is False
    assert verify("whsec_not base64!", headers, body) is False
    assert verify(SIGNING_SECRET, {**headers, "webhook-id": "another"}, body) is False
    unsigned = {k: v for k, v in headers.items() if k != "webhook-signature"}
    assert verify(SIGNING_SECRET, unsigned, body) is False
    # A recorded request played back ten minutes later, re-signed for that moment or not.
    stale = str(int(headers["webhook-timestamp"]) - 600)
    key = signing_key(SIGNING_SECRET)
    replayed = {
        **headers,
        "webhook-timestamp": stale,
        "webhook-signature": sign(key, headers["webhook-id"], int(stale), body),
    }
    assert verify(SIGNING_SECRET, replayed, body) is False
    # One of several signatures (the bridge may send a list) is enough.
    now = int(time.time())
    listed = {
        **headers,
        "webhook-timestamp": str(now),
        "webhook-signature": "v1,AAAA " + sign(key, headers["webhook-id"], now, body),
    }
    assert verify(SIGNING_SECRET, listed, body) is True


def test_the_pages_example_envelope_has_the_published_keys() -> None:
    """The example names every key of the case envelope and of a file, and no other."""
    text = (ROOT / "docs" / PAGE).read_text(encoding="utf-8")
    start = text.index("```json\n") + len("```json\n")
    example = json.loads(text[start : text.index("```\n", start)])
    schema = delivery_schema(example["service"]["schema"])

    assert set(example) == set(schema["properties"])
    [file] = example["attachments"]
    assert set(file) == set(schema["properties"]["attachments"]["items"]["properties"])
    data_file = schema["properties"]["data"]["properties"]["attachments"]["items"]
    assert set(example["data"]["attachments"][0]) == set(data_file["properties"])
