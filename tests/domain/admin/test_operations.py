"""Replay, cancel and re-route one case: idempotent, refused in the wrong state, on the record."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from domain.admin.operations import (
    cancel_delivery,
    cancel_submission,
    replay_delivery,
    reroute_delivery,
)
from domain.config import Office
from domain.payments.payments import is_withdrawn
from domain.problems import Problem
from domain.settings import Settings
from store.engine import Store
from store.models import Delivery, Event, Payment, Submission
from tests.admin_support import OPERATOR, VIEWER, fail_all, post
from tests.conftest import snapshot


def _events(store: Store, kind: str) -> list[Event]:
    with store.read() as session:
        return list(session.scalars(select(Event).where(Event.kind == kind)))


def test_replay_once_then_a_no_op(client: FlaskClient, store: Store) -> None:
    """A failed delivery is reset and due; replaying it again changes nothing."""
    post(client)
    (delivery_id,) = fail_all(store)
    done = replay_delivery(store, delivery_id, OPERATOR, "Steueramt wieder erreichbar")
    assert done.changed
    assert done.wake == ["usingen-steueramt"]
    with store.read() as session:
        d = session.get(Delivery, delivery_id)
        assert d is not None
        assert (d.status, d.attempts) == ("pending", 0)
        assert session.scalars(select(Submission.status)).one() == "routed"
    before = snapshot(store)
    again = replay_delivery(store, delivery_id, OPERATOR, "nochmal")
    assert not again.changed
    assert "bereits" in str(again.message)
    assert snapshot(store) == before
    (event,) = _events(store, "delivery.replayed")
    assert event.actor == "token:erika"
    assert event.detail["reason"] == "Steueramt wieder erreichbar"
    assert event.detail["previous_attempts"] == 8


def test_refusals_change_nothing(client: FlaskClient, store: Store, settings: Settings) -> None:
    """Unknown ids, a viewer, a missing reason and a delivered case are refused with a problem."""
    reference = post(client)
    (delivery_id,) = fail_all(store)
    before = snapshot(store)
    cases: list[tuple[Callable[[], Any], int]] = [
        (lambda: replay_delivery(store, "0" * 32, OPERATOR), 404),
        (lambda: replay_delivery(store, delivery_id, VIEWER), 403),
        (lambda: cancel_delivery(store, delivery_id, OPERATOR, "  "), 422),
        (lambda: cancel_submission(store, "XX-2026-999999", OPERATOR, "weg"), 404),
        (lambda: cancel_submission(store, "kein Aktenzeichen", OPERATOR, "weg"), 404),
        (
            lambda: reroute_delivery(
                store, settings.config, delivery_id, "nowhere", OPERATOR, "umleiten"
            ),
            422,
        ),
        (
            lambda: reroute_delivery(
                store, settings.config, delivery_id, "neu-anspach-ordnungsamt", OPERATOR, "x"
            ),
            422,
        ),
        (
            lambda: reroute_delivery(
                store, settings.config, delivery_id, "usingen-steueramt", OPERATOR, "x"
            ),
            409,
        ),
    ]
    for call, status in cases:
        with pytest.raises(Problem) as caught:
            call()
        assert caught.value.status == status, caught.value
        assert caught.value.title.en
        assert str(caught.value.title)
    assert snapshot(store) == before
    assert reference


def test_cancel_submission_then_no_op_and_replay_refused(client: FlaskClient, store: Store) -> None:
    """Cancelling a case stops its deliveries; again is a no-op; a cancelled one is not replayed."""
    reference = post(client)
    (delivery_id,) = fail_all(store)
    done = cancel_submission(store, reference, OPERATOR, "doppelt eingereicht")
    assert done.changed
    assert done.delivery_ids == [delivery_id]
    with store.read() as session:
        assert session.scalars(select(Submission.status)).one() == "cancelled"
    before = snapshot(store)
    assert not cancel_submission(store, reference, OPERATOR, "nochmal").changed
    assert not cancel_delivery(store, delivery_id, OPERATOR, "nochmal").changed
    with pytest.raises(Problem) as caught:
        replay_delivery(store, delivery_id, OPERATOR)
    assert caught.value.status == 409
    assert snapshot(store) == before
    (event,) = _events(store, "delivery.cancelled")
    assert event.actor == "token:erika"
    assert event.detail["reason"] == "doppelt eingereicht"


def test_reroute_to_an_office_of_the_same_task_area(
    client: FlaskClient, store: Store, settings: Settings
) -> None:
    """A second tax office takes the case; the old delivery is cancelled; again is a no-op."""
    config = settings.config
    second = Office(
        id="schmitten-steueramt",
        name="Steueramt Schmitten",
        municipality="usingen",
        task_area="tax",
        channel="http-json",
    )
    offices = {**config.offices, second.id: second}
    object.__setattr__(config, "offices", offices)
    post(client)
    (delivery_id,) = fail_all(store)
    done = reroute_delivery(store, config, delivery_id, second.id, OPERATOR, "Amt umgezogen")
    assert done.changed
    assert done.wake == [second.id]
    with store.read() as session:
        rows = {d.id: (d.office_id, d.status) for d in session.scalars(select(Delivery))}
        assert session.scalars(select(Submission.status)).one() == "routed"
    assert rows == {
        delivery_id: ("usingen-steueramt", "cancelled"),
        done.delivery_ids[0]: (second.id, "pending"),
    }
    before = snapshot(store)
    again = reroute_delivery(store, config, delivery_id, second.id, OPERATOR, "nochmal")
    assert not again.changed
    assert again.delivery_ids == done.delivery_ids
    assert snapshot(store) == before
    (event,) = _events(store, "delivery.rerouted")
    assert event.detail["to_office"] == second.id
    assert event.actor == "token:erika"


def test_a_held_delivery_is_neither_replayed_nor_rerouted(
    client: FlaskClient, store: Store, settings: Settings
) -> None:
    """A delivery waiting for its fee (held) is the payment's to release, not an operator's."""
    from sqlalchemy import update

    post(client)
    (delivery_id,) = fail_all(store)
    with store.session() as session:
        session.execute(update(Delivery).values(status="held"))
    before = snapshot(store)
    calls: tuple[Callable[[], Any], ...] = (
        lambda: replay_delivery(store, delivery_id, OPERATOR, "x"),
        lambda: reroute_delivery(
            store, settings.config, delivery_id, "usingen-steueramt", OPERATOR, "x"
        ),
    )
    for call in calls:
        with pytest.raises(Problem) as caught:
            call()
        assert caught.value.status == 409
    assert snapshot(store) == before


def test_an_unpaid_case_is_withdrawn_then_a_no_op(client: FlaskClient, store: Store) -> None:
    """A traffic order held for its fee: cancelling it cancels the held delivery, withdraws the
    open payment (the pay link then says so) and is on the record; again is a no-op."""
    reference = post(client, "traffic-order")
    done = cancel_submission(store, reference, OPERATOR, "Antrag zurückgezogen")
    assert done.changed
    assert str(done.message).endswith(
        "Der Antrag ist zurückgezogen; die Gebühr ist nicht mehr zu bezahlen."
    )
    with store.read() as session:
        delivery = session.scalars(select(Delivery)).one()
        payment = session.scalars(select(Payment)).one()
        submission = session.scalars(select(Submission)).one()
    assert done.delivery_ids == [delivery.id]
    assert (delivery.status, submission.status) == ("cancelled", "cancelled")
    # Never clicked: no transaction anybody could pay, so nothing to watch.
    assert (payment.status, payment.next_check_at) == ("withdrawn", None)
    assert is_withdrawn(store, submission.id)
    (event,) = _events(store, "payment.withdrawn")
    assert event.actor == "token:erika"
    assert event.detail == {"payment_id": payment.id, "watched": False}
    before = snapshot(store)
    again = cancel_submission(store, reference, OPERATOR, "nochmal")
    assert not again.changed
    assert "bereits abgebrochen" in str(again.message)
    assert snapshot(store) == before


def test_cancelling_the_last_held_delivery_withdraws_the_payment(
    client: FlaskClient, store: Store
) -> None:
    """The admin page cancels deliveries one by one: the last held one withdraws the payment."""
    post(client, "traffic-order")
    with store.read() as session:
        delivery_id = session.scalars(select(Delivery.id)).one()
        submission_id = session.scalars(select(Submission.id)).one()
    assert not is_withdrawn(store, submission_id)
    assert cancel_delivery(store, delivery_id, OPERATOR, "zurückgezogen").changed
    assert is_withdrawn(store, submission_id)
