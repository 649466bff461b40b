"""Sender authentication with several senders: every credential presented must name one sender."""

from __future__ import annotations

import base64
import io
import time

import pytest
from flask.testing import FlaskClient

from bridge.auth import authenticate
from domain.config import Sender
from domain.problems import Problem
from infra.standard_webhooks import sign, signing_key
from store.engine import Store
from tests.conftest import snapshot
from tests.webhook_support import FORM, assert_problem, signature_headers, webhook_path

SERVICES = frozenset({"dog-registration"})
TOWN_A = Sender("town-a", SERVICES, "X-Bridge-Secret", "SECRET_A", "SIGNING_A")
TOWN_B = Sender("town-b", SERVICES, "X-Bridge-Secret", "SECRET_B", "SIGNING_B")
SECRETS = {
    "SECRET_A": "secret-of-town-a-0123456789abcdef",
    "SECRET_B": "secret-of-town-b-0123456789abcdef",
    "SIGNING_A": "whsec_" + base64.b64encode(b"a" * 32).decode(),
    "SIGNING_B": "whsec_" + base64.b64encode(b"b" * 32).decode(),
}
BODY = b"privacy_consent=true"


def _signed_by(env: str, webhook_id: str = "msg_1") -> dict[str, str]:
    now = int(time.time())
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(now),
        "webhook-signature": sign(signing_key(SECRETS[env]), webhook_id, now, BODY),
    }


def _authenticate(headers: dict[str, str], secrets: dict[str, str] = SECRETS) -> str:
    caller, body = authenticate([TOWN_A, TOWN_B], headers, secrets, 300, lambda: BODY)
    assert body == BODY
    return caller.sender.id


def test_each_credential_alone_names_its_sender() -> None:
    """A secret or a signature on its own identifies the sender it belongs to."""
    assert _authenticate({"X-Bridge-Secret": SECRETS["SECRET_B"]}) == "town-b"
    assert _authenticate(_signed_by("SIGNING_A")) == "town-a"
    both = {"X-Bridge-Secret": SECRETS["SECRET_A"], **_signed_by("SIGNING_A")}
    assert _authenticate(both) == "town-a"


def test_secret_of_one_sender_and_signature_of_another_are_refused() -> None:
    """Two valid credentials of different senders do not make one caller: 401."""
    headers = {"X-Bridge-Secret": SECRETS["SECRET_A"], **_signed_by("SIGNING_B")}
    with pytest.raises(Problem) as refused:
        _authenticate(headers)
    assert refused.value.status == 401
    assert refused.value.detail is not None
    assert str(refused.value.detail) == "Geheimnis und Signatur gehören zu verschiedenen Absendern."


def test_a_malformed_signing_secret_verifies_nothing() -> None:
    """A sender whose signing secret is not whsec_ + base64 cannot sign; the others still can."""
    broken = {**SECRETS, "SIGNING_A": "not-a-whsec-secret"}
    with pytest.raises(Problem) as refused:
        _authenticate(_signed_by("SIGNING_A"), broken)
    assert refused.value.status == 401
    assert _authenticate(_signed_by("SIGNING_B"), broken) == "town-b"


def test_the_body_is_not_read_without_credentials() -> None:
    """Missing credentials are refused before the (possibly large) body is read."""

    def read_body() -> bytes:
        raise AssertionError("the body was read")

    with pytest.raises(Problem) as refused:
        authenticate([TOWN_A, TOWN_B], {}, SECRETS, 300, read_body)
    assert refused.value.status == 401
    with pytest.raises(Problem) as wrong:
        authenticate([TOWN_A], {"X-Bridge-Secret": "wrong"}, SECRETS, 300, read_body)
    assert wrong.value.status == 401


def test_a_stale_signature_is_refused_before_the_body_is_read() -> None:
    """Signature headers that cannot verify (stale, future, incomplete) cost no body read."""

    def read_body() -> bytes:
        raise AssertionError("the body was read")

    stale = {**_signed_by("SIGNING_A"), "webhook-timestamp": str(int(time.time()) - 3600)}
    future = {**_signed_by("SIGNING_A"), "webhook-timestamp": str(int(time.time()) + 3600)}
    garbled = {**_signed_by("SIGNING_A"), "webhook-timestamp": "soon"}
    incomplete = {"webhook-id": "msg_1"}
    for headers in (stale, future, garbled, incomplete):
        with pytest.raises(Problem) as refused:
            authenticate([TOWN_A, TOWN_B], headers, SECRETS, 300, read_body)
        assert refused.value.status == 401


def test_a_stale_signature_over_http_leaves_a_large_body_unread(
    client: FlaskClient, store: Store
) -> None:
    """A body near the size limit under a stale signature: 401 in German, not one body byte read, nothing stored."""
    before = snapshot(store)
    body = b"a=" + b"x" * (1024 * 1024)  # the tests allow 2 MB
    stream = io.BytesIO(body)
    headers = signature_headers(body, "msg_stale_large", int(time.time()) - 3600)
    response = client.post(
        webhook_path("dog-registration"),
        input_stream=stream,
        content_length=len(body),
        content_type=FORM,
        headers=headers,
    )
    assert_problem(
        response,
        401,
        "unauthorized",
        detail="Der Zeitstempel der Signatur ist zu alt oder liegt in der Zukunft.",
    )
    assert stream.tell() == 0  # werkzeug reads by read() and readinto(): the position sees both
    assert snapshot(store) == before
