"""The public payment routes refuse what they must: German pages and problems, nothing changed."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import func, select

from domain.payments.pay_links import pay_token
from domain.settings import Settings
from store.engine import Store
from store.models import Delivery, Event, Payment, PaymentCallback, Submission, utcnow
from tests.conftest import FORMCYCLE_SECRET
from tests.factories import dog, traffic
from tests.worker.conftest import submit

HOOK = "/webhooks/payments/epay21-demo"


def _counts(store: Store) -> tuple[int, ...]:
    with store.read() as session:
        return tuple(
            int(session.scalar(select(func.count()).select_from(model)) or 0)
            for model in (Submission, Payment, Delivery, Event)
        )


def _journal(store: Store) -> list[tuple[str, str, bool]]:
    with store.read() as session:
        return [
            (j.provider, j.verdict, j.body_truncated)
            for j in session.scalars(select(PaymentCallback).order_by(PaymentCallback.id))
        ]


def test_pay_link_of_nothing_payable_is_a_german_404(
    client: FlaskClient, store: Store, settings: Settings
) -> None:
    """Unknown and fee-less references with a valid token: 404 page, nothing stored; without a
    token every reference (known, unknown, malformed) gets the old-link page, also a 404."""
    reference = submit(client, "dog-registration", dog())["reference"]
    before = _counts(store)

    def signed(ref: str) -> str:
        expires_at = utcnow() + dt.timedelta(hours=1)
        token = pay_token(ref, encryption_keys=settings.encryption_keys, expires_at=expires_at)
        return f"/pay/{ref}?token={token}"

    for path in (signed("US-2026-999999"), signed(reference), "/pay/x/return"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "Keine Zahlung gefunden" in response.get_data(as_text=True)
        assert response.headers["Cache-Control"] == "no-store"
    for path in ("/pay/US-2026-999999", "/pay/%C2%B9", f"/pay/{reference}"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "Dieser Link ist nicht mehr gültig" in response.get_data(as_text=True)
    assert _counts(store) == before


def test_pay_link_is_rate_limited(client: FlaskClient) -> None:
    """More than 30 requests a minute from one address get 429 with Retry-After."""
    codes = [client.get("/pay/US-2026-999999").status_code for _ in range(31)]
    assert codes == [404] * 30 + [429]
    limited = client.get("/pay/US-2026-999999")
    assert limited.headers["Retry-After"] == "60"
    assert "Zu viele Anfragen" in limited.get_data(as_text=True)


def test_oversized_and_unreadable_callbacks_are_journalled_and_refused(
    client: FlaskClient, store: Store
) -> None:
    """A body over 64 KB (413) or one naming no payment (400): journalled, nothing else."""
    submit(client, "traffic-order", traffic())
    before = _counts(store)
    big = client.post(HOOK, data=b"x" * (64 * 1024 + 1), content_type="application/json")
    assert big.status_code == 413
    assert big.headers["Content-Type"] == "application/problem+json"
    unreadable = client.post(HOOK, data=b"{not json", content_type="application/json")
    assert unreadable.status_code == 400
    assert unreadable.get_json()["title"] == "Die Zahlungsnachricht ist nicht lesbar."
    empty = client.post(HOOK, json={}, headers={"Accept-Language": "en"})
    assert empty.status_code == 400
    assert empty.get_json()["title"] == "The notification cannot be read."
    assert _counts(store) == before
    assert _journal(store) == [
        ("epay21-demo", "too_large", False),
        ("epay21-demo", "unreadable", False),
        ("epay21-demo", "unreadable", False),
    ]


def test_callback_journal_keeps_only_allow_listed_headers(
    client: FlaskClient, store: Store
) -> None:
    """Only Content-Type, Content-Length, User-Agent (cut, printable) and the query are kept:
    no credentials, no signature, no other header; the body is kept to 4 KiB, marked cut."""
    client.post(
        f"{HOOK}?payment=p-1",
        data=b'{"transactionId": "t-1", "pad": "' + b"y" * 5000 + b'"}',
        content_type="application/json",
        headers={
            "Authorization": "Basic c2VjcmV0",
            "Cookie": "session=abc",
            "X-Provider-Signature": "sig",
            "X-Trace": "1",
            "User-Agent": "Ölprovider/1.0 " + "u" * 300,
        },
    )
    with store.read() as session:
        [row] = session.scalars(select(PaymentCallback)).all()
    assert row.verdict == "unknown_payment"
    assert set(row.headers) == {"query", "Content-Type", "Content-Length", "User-Agent"}
    assert row.headers["query"] == "payment=p-1"
    assert row.headers["User-Agent"].startswith("?lprovider/1.0 uuu")
    assert len(row.headers["User-Agent"]) == 100
    assert row.body is not None
    assert len(row.body) == 4096
    assert row.body_truncated
    assert row.body.startswith(b'{"transactionId": "t-1"')


def _post(client: FlaskClient, service: str, body: dict[str, Any]) -> Any:
    return client.post(
        f"/webhooks/formcycle/{service}", json=body, headers={"X-Bridge-Secret": FORMCYCLE_SECRET}
    )


def test_a_named_transaction_is_validated(client: FlaskClient, store: Store) -> None:
    """payment.transaction_id and payment.provider: checked, 422 with both fields, no fee no
    payment block; nothing stored."""
    before = _counts(store)
    bad = traffic()
    bad["payment"] = {"transaction_id": "a b/../c", "provider": "paypal"}
    response = _post(client, "traffic-order", bad)
    assert response.status_code == 422
    assert sorted(e["field"] for e in response.get_json()["errors"]) == [
        "payment.provider",
        "payment.transaction_id",
    ]
    fee_less = dog()
    fee_less["payment"] = {"transaction_id": "t-1", "provider": "epay21-demo"}
    response = _post(client, "dog-registration", fee_less)
    assert response.status_code == 422
    assert [e["field"] for e in response.get_json()["errors"]] == ["payment"]
    assert _counts(store) == before


def test_confirmation_page_offers_the_pay_link(client: FlaskClient) -> None:
    """The German HTML answer of a fee-bearing service names the fee and links to /pay."""
    response = client.post(
        "/webhooks/formcycle/traffic-order",
        json=traffic(),
        headers={"X-Bridge-Secret": FORMCYCLE_SECRET, "Accept": "text/html"},
    )
    assert response.status_code == 202
    page = response.get_data(as_text=True)
    assert "Gebühr von 35,00 €" in page
    assert "sobald die Zahlung eingegangen ist" in page
    assert re.search(
        r'href="http://127.0.0.1:8000/pay/US-2026-\d{6}\?token=\d+-[0-9a-f]{64}"', page
    )
