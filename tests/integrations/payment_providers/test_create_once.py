"""Creating a transaction against a provider that follows the standard (PAYMENT_EXISTS).

The bridge runs on a real loopback server, the provider simulator answers a repeated requestId
with `409 PAYMENT_EXISTS` (its default, as the standard says) and can lose a create's answer
after storing it (`/_control/lose-create-answers`). No sweeper runs here: what the citizen gets
must not wait for the reconciliation.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests
from sqlalchemy import select

from demo_backoffice import DemoBackOffice
from demo_payments import DemoPayments
from domain.admin.operations import cancel_submission
from harness.waiting import wait_for
from store.engine import Store
from store.models import Delivery, DeliveryKind, Event, Payment
from tests.admin_support import OPERATOR
from tests.integrations.payment_providers import test_flow_e2e as e2e
from tests.worker.conftest import Processes

# The live bridge, the simulator and the routing file pointed at it, from the flow tests.
live = e2e.live
bridge = e2e.bridge
environ = e2e.environ
simulator = e2e.simulator
backoffice = e2e.backoffice
channel = e2e.channel
processes = e2e.processes

CLICKS = 10


def _attempts(store: Store) -> list[Payment]:
    with store.read() as session:
        return list(session.scalars(select(Payment).order_by(Payment.created_at, Payment.id)))


def _ledger(demo: DemoPayments) -> dict[str, Any]:
    listing: dict[str, Any] = requests.get(f"{demo.url}/_control/transactions", timeout=5).json()
    return listing


def _kinds(store: Store) -> list[str]:
    with store.read() as session:
        return list(
            session.scalars(
                select(Event.kind).where(Event.kind.like("payment.%")).order_by(Event.id)
            )
        )


def test_ten_concurrent_first_clicks_make_one_transaction_and_no_outage(
    live: e2e.LiveBridge, bridge: Store, simulator: DemoPayments
) -> None:
    """Ten first clicks at once (a double click, link scanners): one create at the provider,
    every click is sent to the same pay page, none sees "provider unavailable"."""
    answer = e2e.submit(live)
    # The provider answers slowly, so that the clicks overlap the first create.
    requests.post(f"{simulator.url}/_control/slow?seconds=0.5", timeout=5)
    start = threading.Barrier(CLICKS)
    results: list[tuple[int, str]] = []
    lock = threading.Lock()

    def click() -> None:
        start.wait()
        response = e2e.follow_pay_link(answer)
        with lock:
            results.append((response.status_code, response.headers.get("Location", "")))

    threads = [threading.Thread(target=click) for _ in range(CLICKS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    requests.post(f"{simulator.url}/_control/up", timeout=5)
    assert sorted(code for code, _ in results) == [303] * CLICKS
    assert len({location for _, location in results}) == 1
    ledger = _ledger(simulator)
    assert ledger["count"] == 1
    assert ledger["counters"]["creates"] == 1
    [payment] = _attempts(bridge)
    assert payment.transaction_id == ledger["transactions"][0]["txid"]
    assert payment.lease_until is None
    assert _kinds(bridge) == ["payment.created"]


def test_a_lost_create_answer_then_the_click_pays_at_once(
    live: e2e.LiveBridge, bridge: Store, simulator: DemoPayments
) -> None:
    """The provider stores the create but its answer is lost (502); the repeat is refused as
    PAYMENT_EXISTS. The attempt is abandoned, a new one (new requestId) is created in the same
    click, and the citizen pays it: no waiting for the reconciliation nor the expiry."""
    answer = e2e.submit(live)
    requests.post(f"{simulator.url}/_control/lose-create-answers?count=1", timeout=5)
    redirect = e2e.follow_pay_link(answer)
    assert redirect.status_code == 303
    returned = e2e.pay_on_page(redirect.headers["Location"])
    assert "Die Gebühr ist bezahlt" in returned.text
    abandoned, paid = _attempts(bridge)
    assert (abandoned.status, abandoned.transaction_id) == ("abandoned", None)
    # XBezahldienste cannot be asked by our id: nobody can pay or find the lost one.
    assert abandoned.next_check_at is None
    assert paid.status == "PAYED"
    ledger = _ledger(simulator)
    assert [t["request_id"] for t in ledger["transactions"]] == [abandoned.id, paid.id]
    assert ledger["counters"]["payment_exists"] == 1
    assert ledger["counters"]["lost_answers"] == 1
    assert _kinds(bridge) == [
        "payment.abandoned",
        "payment.attempt_started",
        "payment.created",
        "payment.paid",
    ]
    with bridge.read() as session:
        notices = session.scalars(
            select(Delivery.payment_id).where(Delivery.kind == DeliveryKind.PAYMENT_NOTICE)
        ).all()
    assert notices == [paid.id]
    # Paid: the link says so and creates nothing more.
    again = e2e.follow_pay_link(answer)
    assert again.status_code == 200
    assert _ledger(simulator)["count"] == 2


@e2e.SQLITE_ONLY
def test_a_create_answer_lost_to_a_timeout_then_the_next_click_pays(
    live: e2e.LiveBridge, bridge: Store, simulator: DemoPayments
) -> None:
    """The provider takes longer than our timeout (2 s) and stores the create anyway: that
    click gets the German 503 page; the next click learns PAYMENT_EXISTS, starts a new attempt
    and sends the citizen to pay."""
    answer = e2e.submit(live)
    requests.post(f"{simulator.url}/_control/slow?seconds=2.5", timeout=5)
    first = e2e.follow_pay_link(answer)
    assert first.status_code == 503
    assert "Ihr Antrag ist sicher gespeichert" in first.text
    requests.post(f"{simulator.url}/_control/up", timeout=5)
    wait_for(lambda: _ledger(simulator)["count"] == 1, what="the slow create stored")
    second = e2e.follow_pay_link(answer)
    assert second.status_code == 303
    assert "Die Gebühr ist bezahlt" in e2e.pay_on_page(second.headers["Location"]).text
    assert [p.status for p in _attempts(bridge)] == ["abandoned", "PAYED"]


@e2e.SQLITE_ONLY
@pytest.mark.parametrize(
    ("amount", "currency", "why"),
    [
        ("35.001", "EUR", "amount 35.001 is not a whole number of cents"),
        ("34.999", "EUR", "amount 34.999 is not a whole number of cents"),
        ("35.00", "USD", "currency 'USD' instead of EUR"),
    ],
)
def test_a_status_finer_than_a_cent_or_in_another_currency_is_not_paid(
    live: e2e.LiveBridge,
    bridge: Store,
    simulator: DemoPayments,
    amount: str,
    currency: str,
    why: str,
) -> None:
    """The provider confirms 35.001 (or 34.999, or USD) for the 35.00 EUR fee: not paid, no
    delivery released, the callback refused (422) and the journal says why; the citizen's
    return page does not say paid either."""
    answer = e2e.submit(live)
    redirect = e2e.follow_pay_link(answer)
    txid = e2e.transaction_of(simulator, bridge)
    requests.post(
        f"{simulator.url}/_control/set-amount/{txid}?amount={amount}&currency={currency}",
        timeout=5,
    )
    before = e2e.snapshot(bridge)[:2]
    returned = e2e.pay_on_page(redirect.headers["Location"])
    assert returned.status_code == 200
    assert "Die Gebühr ist bezahlt" not in returned.text
    assert e2e.snapshot(bridge)[:2] == before
    # The notification names the amount itself (refused before asking) unless it is right.
    notified = why if currency != "EUR" else f"notified {why}"
    assert [(j.kind, j.verdict, j.detail) for j in e2e.journal(bridge)] == [
        ("notify", "amount_mismatch", notified),
        ("return", "amount_mismatch", why),
    ]
    assert "payment.amount_mismatch" in _kinds(bridge)


@e2e.SQLITE_ONLY
def test_a_withdrawn_case_paid_late_is_applied_and_flagged_for_a_refund(
    live: e2e.LiveBridge,
    bridge: Store,
    simulator: DemoPayments,
    backoffice: DemoBackOffice,
    processes: Processes,
) -> None:
    """The citizen opened the pay page, then the case was cancelled (the provider cannot
    cancel the transaction), then the citizen paid anyway with the notification lost: the
    reconciliation finds it, the cash office gets the notice, the case stays cancelled, an
    operator event says a refund may be due, and the pay link says the case was withdrawn."""
    processes.worker()
    processes.sweeper()
    answer = e2e.submit(live)
    page = e2e.follow_pay_link(answer).headers["Location"]
    done = cancel_submission(bridge, answer["reference"], OPERATOR, "zurückgezogen")
    assert done.changed
    withdrawn = e2e.follow_pay_link(answer)
    assert withdrawn.status_code == 200
    assert "Der Antrag wurde zurückgezogen" in withdrawn.text
    requests.post(f"{simulator.url}/_control/drop-notifications", timeout=5)
    e2e.pay_on_page(page)
    wait_for(lambda: "payment.refund_due" in _kinds(bridge), what="the late payment applied")
    wait_for(lambda: backoffice.cases(e2e.CASH_OFFICE), what="the payment notice")
    assert not backoffice.cases(e2e.ORDER_OFFICE)
    [payment] = _attempts(bridge)
    assert payment.status == "PAYED"
    assert e2e.status(live, answer["reference"])["status"] == "cancelled"
    assert _kinds(bridge)[-3:] == ["payment.withdrawn", "payment.paid", "payment.refund_due"]
