"""POST /callbacks/fit-connect: a callback with a valid HMAC and a fresh timestamp makes the
named case's event log due for a look; every other one is refused and changes nothing."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
import uuid

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update

from store.engine import Store
from store.models import Delivery, DeliveryStatus
from tests.factories import dog
from tests.webhook_support import assert_problem
from tests.worker.conftest import deliveries, submit

SECRET = "callback-secret-of-the-fit-connect-client-0123456789"
CASE = str(uuid.uuid4())
LATER = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def environ(environ: dict[str, str]) -> dict[str, str]:
    """The bridge knows the callback secret."""
    environ["BRIDGE_FIT_CONNECT_CALLBACK_SECRET"] = SECRET
    return environ


def waiting_case(client: FlaskClient, store: Store) -> str:
    """A delivery that waits for its destination, next looked at far in the future; its id."""
    submit(client, "dog-registration", dog())
    [delivery] = deliveries(store)
    with store.session() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery.id)
            .values(
                status=DeliveryStatus.AWAITING_ACCEPT,
                fit_case_id=CASE,
                next_attempt_at=LATER,
            )
        )
    return delivery.id


def signed(body: bytes, timestamp: int, secret: str = SECRET) -> dict[str, str]:
    """The headers FIT-Connect sends: the timestamp and the hex HMAC-SHA512 over both."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha512)
    return {
        "callback-timestamp": str(timestamp),
        "callback-authentication": mac.hexdigest(),
        "Content-Type": "application/json",
    }


def body_for(case_id: str = CASE) -> bytes:
    """A NEW_EVENTS callback naming one case."""
    return json.dumps(
        {
            "type": "https://schema.fitko.de/fit-connect/submission-api/callbacks/new-events",
            "submissions": [
                {
                    "destinationId": str(uuid.uuid4()),
                    "submissionId": str(uuid.uuid4()),
                    "caseId": case_id,
                }
            ],
        }
    ).encode()


def next_look(store: Store, delivery_id: str) -> dt.datetime | None:
    """When the delivery's event log is read next."""
    [found] = [d for d in deliveries(store) if d.id == delivery_id]
    return found.next_attempt_at


def test_a_verified_callback_makes_the_case_due_now(client: FlaskClient, store: Store) -> None:
    delivery_id = waiting_case(client, store)
    body = body_for()

    answer = client.post(
        "/callbacks/fit-connect", data=body, headers=signed(body, int(time.time()))
    )

    assert answer.status_code == 202
    assert answer.get_json() == {"cases": 1, "due": 1}
    due = next_look(store, delivery_id)
    assert due is not None
    assert due.replace(tzinfo=dt.UTC) < LATER


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda b, t: signed(b, t, "another-secret-0123456789abcdef0123"), id="secret"),
        pytest.param(lambda b, t: signed(b + b" ", t), id="body-changed"),
        pytest.param(lambda b, t: signed(b, t - 301), id="older-than-5-minutes"),
        pytest.param(lambda b, t: signed(b, t + 120), id="from-the-future"),
        pytest.param(
            lambda b, t: {**signed(b, t), "callback-timestamp": str(t + 1)}, id="timestamp-swapped"
        ),
        pytest.param(
            lambda b, t: {k: v for k, v in signed(b, t).items() if k != "callback-authentication"},
            id="no-signature",
        ),
        pytest.param(lambda b, t: {**signed(b, t), "callback-timestamp": "soon"}, id="no-number"),
    ],
)
def test_a_callback_that_does_not_verify_is_refused_and_changes_nothing(
    client: FlaskClient, store: Store, tamper: object
) -> None:
    delivery_id = waiting_case(client, store)
    body = body_for()
    headers = tamper(body, int(time.time()))  # type: ignore[operator]  # the parametrized lambda

    answer = client.post("/callbacks/fit-connect", data=body, headers=headers)

    assert_problem(
        answer,
        401,
        "unauthorized",
        title="Die Signatur oder der Zeitstempel des Rückrufs ist ungültig.",
    )
    assert next_look(store, delivery_id) == LATER


def test_a_too_large_callback_is_refused(client: FlaskClient, store: Store) -> None:
    delivery_id = waiting_case(client, store)
    body = b"{" + b" " * 70_000 + b"}"

    answer = client.post(
        "/callbacks/fit-connect", data=body, headers=signed(body, int(time.time()))
    )

    assert_problem(answer, 413, "body-too-large", title="Die Nachricht ist zu groß.")
    assert next_look(store, delivery_id) == LATER


def test_without_a_secret_the_route_is_not_there(
    environ: dict[str, str], client: FlaskClient
) -> None:
    """Checked with a client of its own settings: no secret, no route."""
    from bridge import create_app
    from domain.settings import Settings

    off = create_app(Settings.from_env({**environ, "BRIDGE_FIT_CONNECT_CALLBACK_SECRET": ""}))
    body = body_for()
    answer = off.test_client().post(
        "/callbacks/fit-connect", data=body, headers=signed(body, int(time.time()))
    )
    assert answer.status_code == 404
    off.extensions["bridge"].store.dispose()
