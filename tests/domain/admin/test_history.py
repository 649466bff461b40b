"""Deliveries and payments as they stood at a past moment equal the rows as they were then."""

from __future__ import annotations

import datetime as dt
import time

from flask.testing import FlaskClient
from sqlalchemy import select

from domain.accounts.scopes import EVERYTHING, Scope
from domain.admin import bulk_replay, operations
from domain.admin.history import deliveries_as_of, open_payments_as_of
from domain.admin.search import SubmissionFilter
from domain.delivery.deliveries import AttemptOutcome, claim_due, record_outcomes
from domain.payments.payments import Confirmed, apply
from domain.settings import Settings
from store.engine import Store
from store.models import Delivery, Payment, utcnow
from tests.admin_support import OPERATOR, post

OFFICE = "usingen-steueramt"
ALL = {"pending", "held", "failed", "delivered", "cancelled"}


def _attempt(store: Store, *, ok: bool, permanent: bool = True) -> None:
    ids, lease_until = claim_due(store, OFFICE, 100, 30.0)
    record_outcomes(
        store,
        [
            AttemptOutcome(
                i, lease_until, ok=ok, permanent=permanent, status_code=200 if ok else 503,
                error=None if ok else "HTTP 503",
            )
            for i in ids
        ],
        (0.0,),
        0.0,
    )  # fmt: skip


def _rows(store: Store) -> dict[str, tuple[str, int | None, dt.datetime | None]]:
    """Each delivery's status, and for waiting and failed ones its attempts (and failed since)."""
    with store.read() as session:
        return {
            d.id: (
                d.status,
                d.attempts if d.status in ("pending", "failed") else None,
                d.updated_at if d.status == "failed" else None,
            )
            for d in session.scalars(select(Delivery))
        }


def _as_of(store: Store, at: dt.datetime) -> dict[str, tuple[str, int | None, dt.datetime | None]]:
    with store.read() as session:
        return {
            d.id: (
                d.status,
                d.attempts if d.status in ("pending", "failed") else None,
                d.since if d.status == "failed" else None,
            )
            for d in deliveries_as_of(session, at, ALL)
        }


def _open(store: Store, at: dt.datetime) -> list[int]:
    with store.read() as session:
        return [p.submission_id for p in open_payments_as_of(session, at, at, 20)]


def test_every_past_moment_reads_back_as_the_rows_were(
    client: FlaskClient, store: Store, settings: Settings
) -> None:
    """Retries, failures, a cancelled bulk replay, a replay, a delivery, a cancel and a paid
    fee: at each moment between the steps, the history says what the rows said then."""
    moments: list[
        tuple[dt.datetime, dict[str, tuple[str, int | None, dt.datetime | None]], list[int]]
    ] = []

    def moment() -> None:
        time.sleep(0.01)  # the next step's events come strictly after this moment
        at = utcnow()
        moments.append((at, _rows(store), _open(store, at)))
        time.sleep(0.01)

    moment()  # nothing yet
    for _ in range(3):
        post(client)
    post(client, "traffic-order")  # held for its fee
    moment()
    _attempt(store, ok=False, permanent=False)  # retry scheduled, 1 attempt
    moment()
    _attempt(store, ok=False)  # failed for good, 2 attempts
    moment()
    view, _ = bulk_replay.start(
        store, settings.config, SubmissionFilter(office=OFFICE), OPERATOR, "wieder da",
        rate_per_office=0.001,
    )  # fmt: skip
    moment()
    bulk_replay.cancel(store, view.id, OPERATOR, "doch nicht")  # all back to failed
    moment()
    with store.read() as session:
        failed = list(
            session.scalars(
                select(Delivery.id).where(Delivery.status == "failed").order_by(Delivery.id)
            )
        )
        payment_id = session.scalars(select(Payment.id)).one()
    operations.replay_delivery(store, failed[0], OPERATOR, "")
    operations.cancel_delivery(store, failed[1], OPERATOR, "doppelt")
    moment()
    _attempt(store, ok=True)
    moment()
    assert apply(store, settings.config, payment_id, Confirmed("PAYED", 3500), "test").verdict == (
        "applied"
    )
    moment()

    statuses = [sorted(s for s, _, _ in rows.values()) for _, rows, _ in moments]
    assert statuses[1] == ["held", "pending", "pending", "pending"]
    assert statuses[5] == ["failed", "failed", "failed", "held"]
    assert "delivered" in statuses[7]
    assert [len(open_then) for _, _, open_then in moments] == [0, 1, 1, 1, 1, 1, 1, 1, 0]
    for i, (at, rows, open_then) in enumerate(moments):
        assert _as_of(store, at) == rows, f"moment {i}"
        assert _open(store, at) == open_then, f"moment {i}"


def test_a_payment_open_then_is_open_in_the_past_and_not_after_it_was_paid(
    client: FlaskClient, store: Store, settings: Settings
) -> None:
    """A fee open at a moment is listed for it; once paid, only moments before count it open."""
    post(client, "traffic-order")
    time.sleep(0.01)
    open_at = utcnow()
    time.sleep(0.01)
    with store.read() as session:
        payment = session.scalars(select(Payment)).one()
    apply(store, settings.config, payment.id, Confirmed("PAYED", 3500), "test")
    with store.read() as session:
        assert [p.submission_id for p in open_payments_as_of(session, open_at, open_at, 20)] == [
            payment.submission_id
        ]
        assert open_payments_as_of(session, utcnow(), utcnow(), 20) == []


def test_a_limited_scope_reads_only_its_offices_deliveries_and_its_cases_payments(
    client: FlaskClient, store: Store
) -> None:
    """The Steueramt's scope sees its dog registration and not the Ordnungsamt's traffic order
    nor that order's open fee; the Ordnungsamt's scope the other way round; everything both."""
    dog = int(post(client).rsplit("-", 1)[1])
    order = int(post(client, "traffic-order").rsplit("-", 1)[1])
    steueramt = Scope(frozenset({OFFICE}))
    ordnungsamt = Scope(frozenset({"neu-anspach-ordnungsamt"}))
    at = utcnow()
    with store.read() as session:

        def cases(scope: Scope) -> tuple[set[int], list[int]]:
            return (
                {d.submission_id for d in deliveries_as_of(session, at, ALL, scope)},
                [p.submission_id for p in open_payments_as_of(session, at, at, 20, scope)],
            )

        assert cases(steueramt) == ({dog}, [])
        assert cases(ordnungsamt) == ({order}, [order])
        assert cases(EVERYTHING) == ({dog, order}, [order])
        assert cases(Scope(frozenset())) == (set(), [])
