"""The shared Standard Webhooks module: keys, signatures and their verification."""

from __future__ import annotations

import base64
import time

import pytest

from infra.standard_webhooks import SigningKeyError, sign, signing_key, verify, within_tolerance

KEY_A = signing_key("whsec_" + base64.b64encode(b"a" * 32).decode())
KEY_B = signing_key("whsec_" + base64.b64encode(b"b" * 32).decode())
BODY = b'{"reference": "NA-2026-000001"}'


def test_verify_names_the_key_that_signed() -> None:
    """Among several keys and signatures (rotation), the key that signed is found."""
    by_b = sign(KEY_B, "msg_1", 1700000000, BODY)
    signatures = f"v1,bm90LXRoaXMtb25l {by_b}"
    assert verify([KEY_A, KEY_B], "msg_1", 1700000000, BODY, signatures) == 1
    assert verify([KEY_A], "msg_1", 1700000000, BODY, signatures) == -1


@pytest.mark.parametrize(
    ("webhook_id", "timestamp", "body"),
    [("msg_2", 1700000000, BODY), ("msg_1", 1700000001, BODY), ("msg_1", 1700000000, BODY + b" ")],
    ids=["other-id", "other-timestamp", "other-body"],
)
def test_signature_covers_id_timestamp_and_body(
    webhook_id: str, timestamp: int, body: bytes
) -> None:
    """Changing any signed part makes the signature fail."""
    signature = sign(KEY_A, "msg_1", 1700000000, BODY)
    assert verify([KEY_A], webhook_id, timestamp, body, signature) == -1


def test_only_v1_signatures_count() -> None:
    """A signature of another scheme version is not compared."""
    v1 = sign(KEY_A, "msg_1", 1700000000, BODY)
    assert verify([KEY_A], "msg_1", 1700000000, BODY, "v2," + v1.removeprefix("v1,")) == -1


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("plainsecret", "muss mit whsec_ beginnen"),
        ("whsec_not*base64", "kein gültiges Base64"),
        ("whsec_", "ist leer"),
    ],
)
def test_malformed_secrets_are_refused(secret: str, message: str) -> None:
    """A secret that is not whsec_ + base64 of a key is an error naming what is wrong."""
    with pytest.raises(SigningKeyError, match=message):
        signing_key(secret)


def test_tolerance_both_ways() -> None:
    """Five minutes either way are accepted, more is not."""
    now = int(time.time())
    assert within_tolerance(now - 290, 300)
    assert within_tolerance(now + 290, 300)
    assert not within_tolerance(now - 310, 300)
    assert not within_tolerance(now + 310, 300)
