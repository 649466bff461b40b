"""Helpers of the admin tests: submissions made through the webhook, then failed on purpose."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select, update

from domain.accounts.accounts import Actor
from store.engine import Store
from store.models import Delivery, Payment, Submission
from tests.conftest import FORMCYCLE_SECRET
from tests.factories import dog, traffic

OPERATOR = Actor("erika", "operator", account_id=1, via="token")
VIEWER = Actor("victor", "viewer", account_id=2, via="token")
HEADERS = {"X-Bridge-Secret": FORMCYCLE_SECRET}


def post(client: FlaskClient, service: str = "dog-registration", **overrides: Any) -> str:
    """Post one valid submission; returns its reference."""
    body = dog(**overrides) if service == "dog-registration" else traffic(**overrides)
    response = client.post(f"/webhooks/formcycle/{service}", json=body, headers=HEADERS)
    assert response.status_code == 202, response.get_data(as_text=True)
    reference: str = response.get_json()["reference"]
    return reference


def fail_all(store: Store, error: str = "HTTP 503", status_code: int | None = 503) -> list[str]:
    """Mark every delivery failed (the schedule exhausted); returns their ids."""
    with store.session() as session:
        session.execute(
            update(Delivery).values(
                status="failed", attempts=8, last_error=error, last_status_code=status_code
            )
        )
        session.execute(update(Submission).values(status="failed"))
        return list(session.scalars(select(Delivery.id).order_by(Delivery.created_at)))


def payment_calls(client: FlaskClient, store: Store, reference: str) -> str:
    """Journal two refused provider calls about the case's payment (a foreign transaction) and
    one naming no payment (not the case's); returns the payment's id."""
    number = int(reference.rsplit("-", 1)[1])
    with store.read() as session:
        payment_id = session.scalars(
            select(Payment.id).where(Payment.submission_id == number)
        ).one()
    hook = "/webhooks/payments/epay21-demo"
    claim = {"paymentInformation": {"transactionId": "T-foreign", "status": "PAYED"}}
    for _ in range(2):
        assert client.post(f"{hook}?payment={payment_id}", json=claim).status_code == 409
    assert client.post(hook, json={}).status_code == 400
    return payment_id
