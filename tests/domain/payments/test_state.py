"""The payment state machine on both stores: forward only, applied once, one notice per payment."""

from __future__ import annotations

import threading
from decimal import Decimal

from flask.testing import FlaskClient
from sqlalchemy import func, select

from domain.admin.operations import cancel_submission
from domain.payments import payments
from domain.payments.payments import Confirmed
from domain.settings import Settings
from store.engine import Store
from store.models import (
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Event,
    Payment,
    PaymentStatus,
    Submission,
    SubmissionStatus,
)
from tests.admin_support import OPERATOR
from tests.factories import traffic
from tests.worker.conftest import submit

PAID = Confirmed("PAYED", 3500, "EUR", transaction_reference="KZ-2026-0001", method="GIROPAY")


def _order(client: FlaskClient, store: Store) -> Payment:
    answer = submit(client, "traffic-order", traffic())
    assert answer["status"] == SubmissionStatus.AWAITING_PAYMENT
    number = int(answer["reference"].rsplit("-", 1)[1])
    with store.read() as session:
        [payment] = session.scalars(select(Payment).where(Payment.submission_id == number)).all()
    return payment


def _snapshot(store: Store) -> tuple[object, ...]:
    with store.read() as session:
        return (
            sorted((p.id, p.status, p.paid_at) for p in session.scalars(select(Payment))),
            sorted((d.id, d.status) for d in session.scalars(select(Delivery))),
            session.scalar(select(func.count()).select_from(Event)),
            sorted((s.id, s.status) for s in session.scalars(select(Submission))),
        )


def test_intake_holds_the_case_and_stores_an_open_payment(
    client: FlaskClient, store: Store
) -> None:
    """A fee before delivery: the payment row is INITIAL with the exact amount, the case held."""
    payment = _order(client, store)
    assert (payment.status, payment.amount_cents, payment.currency) == ("INITIAL", 3500, "EUR")
    assert payment.purpose.endswith(" Halteverbot")
    assert payment.purpose.startswith("US-")
    assert payment.transaction_id is None
    with store.read() as session:
        [delivery] = session.scalars(select(Delivery)).all()
    assert (delivery.status, delivery.kind) == (DeliveryStatus.HELD, DeliveryKind.CASE)


def test_paid_releases_the_case_and_creates_one_notice(
    client: FlaskClient, store: Store, settings: Settings
) -> None:
    """PAYED: the case becomes due, the cash office gets one notice; a repeat changes nothing."""
    payment = _order(client, store)
    applied = payments.apply(store, settings.config, payment.id, PAID, "test")
    assert applied.verdict == "applied"
    assert applied.wake == ["neu-anspach-ordnungsamt", "usingen-stadtkasse"]
    before = _snapshot(store)
    again = payments.apply(store, settings.config, payment.id, PAID, "test")
    assert again.verdict == "duplicate"
    booked = payments.apply(
        store, settings.config, payment.id, Confirmed("BOOKED", 3500, "EUR"), "test"
    )
    assert booked.verdict == "duplicate"
    late_cancel = payments.apply(
        store, settings.config, payment.id, Confirmed("CANCELED", None), "test"
    )
    assert (late_cancel.verdict, late_cancel.status) == ("final", "PAYED")
    assert _snapshot(store) == before
    with store.read() as session:
        rows = session.scalars(select(Delivery).order_by(Delivery.kind)).all()
        stored = session.get(Payment, payment.id)
        submission = session.scalars(select(Submission)).one()
    assert [(d.kind, d.office_id, d.status, d.payment_id) for d in rows] == [
        ("case", "neu-anspach-ordnungsamt", "pending", None),
        ("payment-notice", "usingen-stadtkasse", "pending", payment.id),
    ]
    assert stored is not None
    assert (stored.status, stored.transaction_reference, stored.method) == (
        "PAYED",
        "KZ-2026-0001",
        "GIROPAY",
    )
    assert stored.paid_at is not None
    # The notice does not count as the case's own progress.
    assert submission.status == SubmissionStatus.ROUTED


def test_amount_mismatch_changes_nothing(
    client: FlaskClient, store: Store, settings: Settings
) -> None:
    """3.50 EUR, 35.001 EUR, 34.999 EUR or another currency for a 35.00 EUR fee: not paid,
    nothing moves, and an event says why (exactly, in integer cents, never rounded)."""
    payment = _order(client, store)
    before = _snapshot(store)
    wrongs = [
        Confirmed("PAYED", 350, "EUR"),
        Confirmed("PAYED", 3500, "USD"),
        Confirmed("PAYED", None, "EUR", amount=Decimal("35.001")),
        Confirmed("PAYED", None, None, amount=Decimal("34.999")),
        Confirmed("PAYED", None, "EUR", amount=Decimal("1E+999999")),
    ]
    reasons = []
    for wrong in wrongs:
        applied = payments.apply(store, settings.config, payment.id, wrong, "t")
        assert applied.verdict == "amount_mismatch"
        reasons.append(applied.reason)
    assert reasons == [
        "amount 3.50 instead of 35.00",
        "currency 'USD' instead of EUR",
        "amount 35.001 is not a whole number of cents",
        "amount 34.999 is not a whole number of cents",
        "amount 1E+999999 is not a whole number of cents",
    ]
    after = _snapshot(store)
    assert (after[0], after[1], after[3]) == (before[0], before[1], before[3])
    with store.read() as session:
        events = session.scalars(
            select(Event).where(Event.kind.like("payment.%")).order_by(Event.id)
        ).all()
    assert [(e.kind, e.detail["reason"]) for e in events] == [
        ("payment.amount_mismatch", reason) for reason in reasons
    ]
    # The exact amount in another spelling is paid.
    exact = Confirmed("PAYED", None, "eur", amount=Decimal("35.0000"))
    assert payments.apply(store, settings.config, payment.id, exact, "t").verdict == "applied"


def test_failed_is_final_and_the_pay_link_starts_a_new_attempt(
    client: FlaskClient, store: Store, settings: Settings
) -> None:
    """CANCELED stays; the next attempt is a new row; only the paid attempt's amount counts."""
    payment = _order(client, store)
    cancel = Confirmed("CANCELED", None)
    assert payments.apply(store, settings.config, payment.id, cancel, "t").verdict == "applied"
    assert payments.apply(store, settings.config, payment.id, PAID, "t").verdict == "final"
    fresh = payments.open_attempt(store, payment.submission_id, "epay21-demo", 72, "citizen")
    assert fresh is not None
    assert fresh.id != payment.id
    assert fresh.status == "INITIAL"
    same = payments.open_attempt(store, payment.submission_id, "epay21-demo", 72, "citizen")
    assert same is not None
    assert same.id == fresh.id
    with store.read() as session:
        assert session.scalars(select(Delivery.status)).all() == [DeliveryStatus.HELD]
    assert payments.apply(store, settings.config, fresh.id, PAID, "t").verdict == "applied"
    attempts = payments.payments_of(store, payment.submission_id)
    counted = payments.counted(attempts)
    assert counted is not None
    assert counted.id == fresh.id
    assert payments.to_euros(counted.amount_cents) == Decimal("35.00")
    assert [p.status for p in attempts] == ["CANCELED", "PAYED"]


def test_concurrent_confirmations_apply_once(
    client: FlaskClient, store: Store, settings: Settings
) -> None:
    """Eight threads confirm the same payment at once: one applies, one notice exists."""
    payment = _order(client, store)
    verdicts: list[str] = []
    barrier = threading.Barrier(8)

    def confirm() -> None:
        barrier.wait()
        verdicts.append(payments.apply(store, settings.config, payment.id, PAID, "t").verdict)

    threads = [threading.Thread(target=confirm) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(verdicts) == ["applied"] + ["duplicate"] * 7
    with store.read() as session:
        notices = session.scalars(
            select(Delivery).where(Delivery.kind == DeliveryKind.PAYMENT_NOTICE)
        ).all()
        paid_events = session.scalars(select(Event).where(Event.kind == "payment.paid")).all()
    assert len(notices) == 1
    assert len(paid_events) == 1


def test_expired_then_paid_late_still_counts(
    client: FlaskClient, store: Store, settings: Settings
) -> None:
    """Our own `expired` gives up waiting; a PAYED the provider confirms later is applied."""
    payment = _order(client, store)
    with store.session() as session:
        row = session.get(Payment, payment.id)
        assert row is not None
        row.expires_at = row.created_at.replace(year=row.created_at.year - 1)
    assert payments.expire(store, payment.id)
    assert not payments.expire(store, payment.id)
    stored = payments.get(store, payment.id)
    assert stored is not None
    assert stored.status == PaymentStatus.EXPIRED
    failed = Confirmed("FAILED", None)
    assert payments.apply(store, settings.config, payment.id, failed, "t").verdict == "final"
    assert payments.apply(store, settings.config, payment.id, PAID, "t").verdict == "applied"


def _due_now(store: Store, count: int, client: FlaskClient) -> list[str]:
    """`count` open payments with a transaction, all due for a check."""
    ids = []
    for i in range(count):
        payment = _order(client, store)
        assert payments.record_created(
            store,
            payment.id,
            transaction_id=f"tx-{i}",
            pay_url=None,
            transaction_reference=None,
            first_check_s=0,
            actor="t",
        )
        ids.append(payment.id)
    return ids


def test_two_reconcilers_never_check_the_same_payment(client: FlaskClient, store: Store) -> None:
    """Two sweepers claim at once: each payment goes to one of them; leased ones wait."""
    ids = _due_now(store, 6, client)
    claimed: list[list[str]] = []
    barrier = threading.Barrier(2)

    def claim() -> None:
        barrier.wait()
        claimed.append([p.id for p in payments.claim_checks(store, 4, 60)])

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [i for batch in claimed for i in batch]
    assert sorted(everything) == sorted(ids)
    assert len(set(everything)) == len(everything)
    assert payments.claim_checks(store, 10, 60) == []


def test_provider_errors_back_off_and_are_capped(client: FlaskClient, store: Store) -> None:
    """Each error counts and schedules the next check; at the cap the next is the expiry."""
    [payment_id] = _due_now(store, 1, client)
    for n in range(1, payments.MAX_CHECK_ERRORS + 1):
        payments.record_error(store, payment_id, "HTTP 503 Service Unavailable", 30)
        stored = payments.get(store, payment_id)
        assert stored is not None
        assert stored.attempts == n
        assert stored.last_error == "HTTP 503 Service Unavailable"
        assert stored.next_check_at is not None
        if n < payments.MAX_CHECK_ERRORS:
            assert stored.next_check_at < stored.expires_at
    assert stored is not None
    assert stored.next_check_at == stored.expires_at
    with store.read() as session:
        kinds = session.scalars(select(Event.kind).where(Event.kind == "payment.provider_error"))
        assert len(kinds.all()) == payments.MAX_CHECK_ERRORS


def test_an_unreported_amount_counts_only_for_our_own_transactions(
    client: FlaskClient, store: Store, settings: Settings
) -> None:
    """A status call without an amount (legacy pmPayment) confirms a transaction we created
    with our amount; an adopted one (Formcycle's plugin made it) needs the amount confirmed."""
    ours = _order(client, store)
    adopted = _order(client, store)
    with store.session() as session:
        row = session.get(Payment, adopted.id)
        assert row is not None
        row.origin = "formcycle"
    silent = Confirmed("PAYED", None)
    assert payments.apply(store, settings.config, adopted.id, silent, "t").verdict == (
        "amount_mismatch"
    )
    assert payments.apply(store, settings.config, ours.id, silent, "t").verdict == "applied"


def _notices(store: Store) -> list[str | None]:
    with store.read() as session:
        return list(
            session.scalars(
                select(Delivery.payment_id)
                .where(Delivery.kind == DeliveryKind.PAYMENT_NOTICE)
                .order_by(Delivery.created_at)
            )
        )


def _kinds(store: Store) -> list[str]:
    with store.read() as session:
        return list(
            session.scalars(
                select(Event.kind).where(Event.kind.like("payment.%")).order_by(Event.id)
            )
        )


def test_ten_concurrent_create_claims_give_one_claim(
    client: FlaskClient, store: Store, settings: Settings
) -> None:
    """Ten callers claim the payment for creating at once: exactly one gets it; the others
    see it busy until the claim ends with the transaction, then see it done."""
    payment = _order(client, store)
    start = threading.Barrier(10)
    states: list[str] = []

    def claim() -> None:
        start.wait()
        states.append(payments.claim_create(store, payment.id, 30).state)

    threads = [threading.Thread(target=claim) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(states) == ["busy"] * 9 + ["claimed"]
    assert payments.record_created(
        store,
        payment.id,
        transaction_id="T-1",
        pay_url="https://pay.example/T-1",
        transaction_reference=None,
        first_check_s=1,
        actor="t",
    )
    done = payments.claim_create(store, payment.id, 30)
    assert done.state == "done"
    assert done.payment is not None
    assert (done.payment.transaction_id, done.payment.lease_until) == ("T-1", None)


def test_paid_twice_gives_a_notice_for_each_and_a_refund_event(
    client: FlaskClient, store: Store, settings: Settings
) -> None:
    """An abandoned attempt (its create's answer was lost) is paid late, after its successor:
    both payments count, the cash office gets a notice for each, and an operator event says a
    refund may be due. The case is released once."""
    first = _order(client, store)
    assert payments.claim_create(store, first.id, 30).state == "claimed"
    second = payments.replace_attempt(
        store, first.id, reason="PAYMENT_EXISTS", lease_s=30, watch=True, actor="t"
    )
    assert second is not None
    abandoned = payments.get(store, first.id)
    assert abandoned is not None
    assert abandoned.status == "abandoned"
    assert payments.apply(store, settings.config, second.id, PAID, "t").refund_due is False
    late = payments.apply(store, settings.config, first.id, PAID, "reconciliation")
    assert (late.verdict, late.refund_due) == ("applied", True)
    assert _notices(store) == [second.id, first.id]
    with store.read() as session:
        cases = session.scalars(select(Delivery).where(Delivery.kind == DeliveryKind.CASE)).all()
        refund = session.scalars(select(Event).where(Event.kind == "payment.refund_due")).one()
    assert [d.status for d in cases] == ["pending"]
    assert refund.detail["why"] == "paid_twice"
    assert refund.detail["other_payment_id"] == second.id


def test_a_late_payment_of_a_withdrawn_case_is_applied_with_a_refund_event(
    client: FlaskClient, store: Store, settings: Settings
) -> None:
    """The case was cancelled while its transaction was open (neither protocol can cancel it):
    the reconciliation keeps asking, a payment then is applied and noticed, the case stays
    cancelled, and an operator event says a refund may be due."""
    payment = _order(client, store)
    payments.record_created(
        store,
        payment.id,
        transaction_id="T-9",
        pay_url="https://pay.example/T-9",
        transaction_reference=None,
        first_check_s=1,
        actor="t",
    )
    with store.read() as session:
        reference = session.scalars(select(Submission)).one().reference
    cancel_submission(store, reference, OPERATOR, "zurückgezogen")
    withdrawn = payments.get(store, payment.id)
    assert withdrawn is not None
    assert withdrawn.status == "withdrawn"
    assert withdrawn.next_check_at is not None  # still asked about
    assert payments.is_withdrawn(store, payment.submission_id)
    applied = payments.apply(store, settings.config, payment.id, PAID, "reconciliation")
    assert (applied.verdict, applied.refund_due) == ("applied", True)
    assert applied.wake == ["usingen-stadtkasse"]
    assert _notices(store) == [payment.id]
    assert not payments.is_withdrawn(store, payment.submission_id)
    with store.read() as session:
        assert session.scalars(select(Submission.status)).one() == "cancelled"
    assert _kinds(store)[-3:] == ["payment.withdrawn", "payment.paid", "payment.refund_due"]


def test_one_provider_error_after_many_open_checks_does_not_park_the_payment(
    client: FlaskClient, store: Store, settings: Settings
) -> None:
    """Twelve checks that found the payment still open, then one provider error: the next
    check follows the schedule, not the expiry (the cap counts errors in a row, not checks);
    twelve errors in a row do park it until its expiry."""
    payment = _order(client, store)
    for _ in range(payments.MAX_CHECK_ERRORS):
        payments.schedule_check(store, payment.id, 60)
    payments.record_error(store, payment.id, "HTTP 503", 60)
    after = payments.get(store, payment.id)
    assert after is not None
    assert (after.attempts, after.check_errors) == (payments.MAX_CHECK_ERRORS + 1, 1)
    assert after.next_check_at is not None
    assert after.next_check_at < after.expires_at
    for _ in range(payments.MAX_CHECK_ERRORS - 1):
        payments.record_error(store, payment.id, "HTTP 503", 60)
    parked = payments.get(store, payment.id)
    assert parked is not None
    assert parked.check_errors == payments.MAX_CHECK_ERRORS
    assert parked.next_check_at == parked.expires_at
