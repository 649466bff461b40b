"""The 202 answer is built directly: it must equal the `SubmissionAnswer` dump OpenAPI describes."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bridge.api import views
from domain.settings import Settings
from store.engine import Store
from store.models import Submission, parse_reference
from tests.factories import dog, traffic
from tests.webhook_support import form_body, post

MOMENT = dt.datetime(2026, 3, 1, 9, 30, 15, 250000, tzinfo=dt.UTC)


def _stored(client: FlaskClient, store: Store, service: str, body: bytes) -> Submission:
    response = post(client, service, body)
    assert response.status_code == 202, response.get_data(as_text=True)
    parsed = parse_reference(response.get_json()["reference"])
    assert parsed is not None
    prefix, year, number = parsed
    with store.read() as session:
        return session.scalars(
            select(Submission)
            .where(
                Submission.id == number,
                Submission.reference_prefix == prefix,
                Submission.reference_year == year,
            )
            .options(selectinload(Submission.deliveries), selectinload(Submission.payments))
        ).one()


def _assert_same(submission: Submission, settings: Settings) -> None:
    keys = settings.encryption_keys
    direct = views.answer(submission, settings.config, settings.public_url, keys)
    dumped = views._ANSWER.dump(views._base(submission, settings.config, settings.public_url, keys))
    # Compared as JSON text, so that key order and value types count too.
    assert json.dumps(direct) == json.dumps(dumped)


@pytest.mark.parametrize(
    ("service", "body"),
    [
        pytest.param("dog-registration", form_body(dog()), id="dog-no-fee"),
        pytest.param(
            "dog-registration", form_body(dog({"dog.breed": "Rottweiler"})), id="dog-two-offices"
        ),
        pytest.param("traffic-order", form_body(traffic()), id="traffic-with-fee"),
    ],
)
def test_answer_equals_the_schema_dump(
    app: Flask, client: FlaskClient, store: Store, settings: Settings, service: str, body: bytes
) -> None:
    """As stored, and with every point in time and optional value filled in or emptied."""
    submission = _stored(client, store, service, body)
    # The fee's part must be covered too.
    assert bool(submission.payments) == (service == "traffic-order")
    _assert_same(submission, settings)
    for delivery in submission.deliveries:
        delivery.status, delivery.delivered_at, delivery.case_number = "delivered", MOMENT, "AZ-1"
        delivery.next_attempt_at = MOMENT
    for payment in submission.payments:
        payment.paid_at, payment.status, payment.transaction_reference = MOMENT, "PAYED", "K-9"
    _assert_same(submission, settings)
    for delivery in submission.deliveries:
        delivery.status, delivery.delivered_at, delivery.case_number = "pending", None, None
        delivery.next_attempt_at = MOMENT.astimezone(dt.timezone(dt.timedelta(hours=2)))
    submission.received_at = MOMENT.replace(microsecond=0)
    _assert_same(submission, settings)
