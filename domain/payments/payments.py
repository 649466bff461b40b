"""The payment state machine in the database: the one place a payment's status moves.

Statuses follow XBezahldienste (INITIAL, PAYED/BOOKED, FAILED, CANCELED) plus our own `expired`.
A status only moves forward, by a conditional UPDATE (`WHERE status = 'INITIAL'`), so two
callbacks, a return and the reconciliation job racing each other apply a payment once: whoever
updates the row first wins, everybody else sees a row count of zero. One exception, on
purpose: `expired` is our own give-up, not the provider's word, so a PAYED the provider
confirms later still counts (the money is there; the case must go on).

On paid, in the same transaction: the held case deliveries become due and ONE payment notice
delivery to the cash office is created (a unique index on `deliveries.payment_id` makes it one
even under concurrency). The caller wakes the offices after the commit; the sweeper covers a
lost wake-up. Every change leaves an `Event` (kind `payment.*`).

Creating a provider transaction is claimed per payment (`claim_create`, a conditional UPDATE
of `lease_until`), so concurrent clicks make one create and the others reuse its answer. An
attempt whose create's answer was lost and is then refused as PAYMENT_EXISTS is `abandoned`
and replaced by a new attempt (`replace_attempt`, a new id and so a new requestId); a case
cancelled while unpaid has its open payment `withdrawn` (`withdraw_open`). Both stay watched by
the reconciliation where the provider can be asked about them, and a late payment of either
still counts, with an operator event (`payment.refund_due`) when the case was withdrawn or
already paid.

Amounts are integer cents here; Decimal euros only at the edges. A paid status must report
our amount exactly: an amount finer than a cent, another amount or another currency is not
paid (`amount_mismatch`, with the reason in the event and the verdict).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, insert, or_, select, update

from domain.config import Config, Municipality, Service
from domain.delivery.deliveries import refresh_statuses
from domain.problems import FieldError, msg
from store.clock import database_now
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
    new_id,
    transient,
)

_P = cast(Table, Payment.__table__)
_D = cast(Table, Delivery.__table__)
_E = cast(Table, Event.__table__)
_S = cast(Table, Submission.__table__)

#: A payment whose provider call failed this many times in a row is checked once more only at
#: its expiry (then given up); an operator sees `last_error`.
MAX_CHECK_ERRORS = 12

#: Statuses the reconciliation asks the provider about (the give-ups only while scheduled).
WATCHED = (PaymentStatus.INITIAL, PaymentStatus.ABANDONED, PaymentStatus.WITHDRAWN)


def to_cents(amount: Decimal) -> int:
    """Euros (two decimals at most) as integer cents; never through a float."""
    cents = amount * 100
    if cents != cents.to_integral_value():
        raise ValueError("an amount has at most two decimals")
    return int(cents)


#: A reported amount beyond this (in euros) is refused before any arithmetic on it.
MAX_REPORTED_EUROS = Decimal(10**9)


def exact_cents(amount: Decimal) -> int | None:
    """Euros as integer cents when they are whole cents (and sane); None when not."""
    if not amount.is_finite() or abs(amount) > MAX_REPORTED_EUROS:
        return None
    cents = amount * 100
    return int(cents) if cents == cents.to_integral_value() else None


def to_euros(cents: int) -> Decimal:
    """Integer cents as Decimal euros with two decimals."""
    return (Decimal(cents) / 100).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class Confirmed:
    """A provider's confirmed view of a transaction (from its status call, never a callback)."""

    status: str  # INITIAL | PAYED | BOOKED | FAILED | CANCELED
    amount_cents: int | None
    currency: str | None = None
    #: The amount exactly as reported (euros); when set it decides over `amount_cents`, so a
    #: report finer than a cent is seen as such instead of being rounded.
    amount: Decimal | None = None
    transaction_id: str | None = None
    transaction_reference: str | None = None
    method: str | None = None
    at: dt.datetime | None = None


@dataclass(frozen=True)
class Applied:
    """What applying a confirmed status came to.

    `verdict`: applied | open | duplicate | final (a late, different final status, ignored)
    | amount_mismatch | unknown. `wake` lists the offices whose deliveries became due.
    `reason` says why an amount did not match; `refund_due` that this payment was applied
    although the case was withdrawn or already paid by another attempt.
    """

    verdict: str
    payment_id: str | None = None
    status: str | None = None
    wake: list[str] = field(default_factory=list)
    reason: str | None = None
    refund_due: bool = False


#: A provider's transaction id as a form may name it (XBezahldienste ids are <= 44 characters).
TRANSACTION_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,200}\Z")


@dataclass(frozen=True)
class Adoption:
    """A transaction Formcycle's own payment plugin created, named by the submission."""

    provider: str
    transaction_id: str


def take_adoption(
    service: Service, data: dict[str, Any], config: Config
) -> tuple[Adoption | None, list[FieldError]]:
    """Take `payment.transaction_id` and `payment.provider` out of the submitted data.

    A form whose own payment plugin already created the transaction names it this way (JSON
    `{"payment": {"transaction_id": ..., "provider": ...}}` or the dotted form keys); the
    bridge then adopts it instead of creating one, and confirms it with the provider. The block
    is not application data: it is removed before validation. Only fee-bearing services and
    configured providers are accepted.
    """
    block = data.get("payment")
    if block is None:
        return None, []
    del data["payment"]
    errors: list[FieldError] = []
    if service.fee is None:
        return None, [
            FieldError(
                "payment",
                msg(
                    "Für diesen Dienst ist keine Gebühr zu zahlen.",
                    "This service has no fee.",
                ),
            )
        ]
    if not isinstance(block, dict):
        block = {}
    transaction_id, provider = block.get("transaction_id"), block.get("provider")
    if not (isinstance(transaction_id, str) and TRANSACTION_ID.match(transaction_id)):
        errors.append(
            FieldError(
                "payment.transaction_id",
                msg(
                    "Bitte die Transaktionsnummer des Zahlungsanbieters angeben "
                    "(Buchstaben, Ziffern, - _ . :, höchstens 200 Zeichen).",
                    "Give the provider's transaction id (letters, digits, - _ . :, at most 200).",
                ),
            )
        )
    if not (isinstance(provider, str) and provider in config.payment_providers):
        errors.append(
            FieldError(
                "payment.provider",
                msg(
                    "Unbekannter Zahlungsanbieter.",
                    "Unknown payment provider.",
                ),
            )
        )
    if errors:
        return None, errors
    assert isinstance(provider, str)
    assert isinstance(transaction_id, str)
    return Adoption(provider, transaction_id), []


def adopted_elsewhere(store: Store, adoption: Adoption) -> bool:
    """Whether another submission's payment already holds this transaction."""
    with store.read() as session:
        return (
            session.scalar(
                select(Payment.id).where(
                    Payment.provider == adoption.provider,
                    Payment.transaction_id == adoption.transaction_id,
                )
            )
            is not None
        )


def attach_fee(
    submission: Submission,
    service: Service,
    municipality: Municipality,
    config: Config,
    now: dt.datetime,
    adoption: Adoption | None = None,
) -> None:
    """Give a new submission (not yet stored) its open payment; hold its deliveries if needed.

    The Payment row is written in the submission's own transaction (ADR 7):
    cheap, durable, and the status API and the reconciliation job see it from the start.
    The provider is not called here: intake never waits on a provider.
    """
    fee = service.fee
    provider = config.payment_provider_for(service, municipality)
    if fee is None or provider is None:
        return
    submission.payments.append(
        transient(
            Payment,
            id=new_id(),
            provider=adoption.provider if adoption else provider,
            # An adopted transaction is confirmed by the reconciliation job straight away.
            transaction_id=adoption.transaction_id if adoption else None,
            next_check_at=now if adoption else None,
            amount_cents=to_cents(fee.amount),
            currency=fee.currency,
            # The reference is known only once the row is inserted (domain/intake/submissions.py).
            purpose=fee.purpose,
            status=PaymentStatus.INITIAL,
            origin="formcycle" if adoption else "bridge",
            created_at=now,
            updated_at=now,
            expires_at=now + dt.timedelta(hours=fee.expires_after_hours),
            attempts=0,
            check_errors=0,
        )
    )
    if fee.before_delivery:
        for d in submission.deliveries:
            d.status = DeliveryStatus.HELD
        submission.status = SubmissionStatus.AWAITING_PAYMENT


def payments_of(store: Store, submission_id: int) -> list[Payment]:
    """Every payment attempt of a submission, oldest first."""
    with store.read() as session:
        return list(
            session.scalars(
                select(Payment)
                .where(Payment.submission_id == submission_id)
                .order_by(Payment.created_at, Payment.id)
            )
        )


def get(store: Store, payment_id: str) -> Payment | None:
    """One payment by our id."""
    with store.read() as session:
        return session.get(Payment, payment_id)


def open_attempt(
    store: Store, submission_id: int, provider: str, hours: int, actor: str
) -> Payment | None:
    """The payment the pay link should use: the open one, or a NEW attempt after a final one.

    None when the submission has no payment at all. A paid payment is returned as it is (the
    caller says "already paid"), and so is a withdrawn one (the case was cancelled: no new
    attempt; the caller says so). The submission row is locked, so two clicks at once after a
    cancellation start one new attempt, not two.
    """
    with store.session() as session:
        conn = session.connection()
        now = database_now(conn)
        conn.execute(select(_S.c.id).where(_S.c.id == submission_id).with_for_update())
        attempts = list(
            session.scalars(
                select(Payment)
                .where(Payment.submission_id == submission_id)
                .order_by(Payment.created_at, Payment.id)
            )
        )
        if not attempts:
            return None
        latest = attempts[-1]
        paid = next((p for p in attempts if p.status in PaymentStatus.PAID), None)
        if paid is not None:
            return paid
        if latest.status in (PaymentStatus.INITIAL, PaymentStatus.WITHDRAWN):
            # A withdrawn case gets no new attempt: the caller says it was withdrawn.
            return latest
        fresh = _next_attempt(latest, provider, now, now + dt.timedelta(hours=hours))
        session.add(fresh)
        session.add(
            Event(
                submission_id=submission_id,
                kind="payment.attempt_started",
                actor=actor,
                at=now,
                detail={"payment_id": fresh.id, "previous": latest.id, "after": latest.status},
            )
        )
    return fresh


def record_created(
    store: Store,
    payment_id: str,
    *,
    transaction_id: str,
    pay_url: str | None,
    transaction_reference: str | None,
    first_check_s: float,
    actor: str,
) -> bool:
    """Store the provider's transaction for our payment; False if it already had one.

    Only a payment without a transaction takes one, so two racing creates cannot both set
    theirs. From now on the reconciliation job asks the provider about it (first after
    `first_check_s`).
    """
    with store.session() as session:
        conn = session.connection()
        now = database_now(conn)
        row = conn.execute(select(_P.c.submission_id).where(_P.c.id == payment_id)).first()
        if row is None:
            return False
        done = conn.execute(
            update(_P)
            .where(_P.c.id == payment_id, _P.c.transaction_id.is_(None))
            .values(
                transaction_id=transaction_id,
                pay_url=pay_url,
                transaction_reference=transaction_reference,
                last_error=None,
                check_errors=0,
                next_check_at=now + dt.timedelta(seconds=first_check_s),
                lease_until=None,
                updated_at=now,
            )
        ).rowcount
        if done:
            conn.execute(
                insert(_E).values(
                    submission_id=row.submission_id,
                    kind="payment.created",
                    actor=actor,
                    at=now,
                    detail={"payment_id": payment_id, "transaction_id": transaction_id},
                )
            )
    return bool(done)


@dataclass(frozen=True)
class CreateClaim:
    """The outcome of `claim_create`.

    `state`: claimed (the caller creates; `lease` is its claim) | busy (somebody else is
    creating right now) | done (the payment has its transaction) | closed (not open any more:
    paid, failed, abandoned, withdrawn ...). `payment` is the row as read in the claim.
    """

    state: str
    payment: Payment | None
    lease: dt.datetime | None = None


def claim_create(
    store: Store, payment_id: str, lease_s: float, held: dt.datetime | None = None
) -> CreateClaim:
    """Claim an open payment without a transaction for creating it at the provider.

    One conditional UPDATE of `lease_until` (judged by the database's clock): among concurrent
    callers exactly one sees a row count of 1, on PostgreSQL (row lock, re-checked after the
    winner's commit) as on SQLite (one writer at a time). `held` is a lease the caller already
    holds on the row (the reconciliation's, or the one `replace_attempt` gave), taken over.
    The claim ends with `record_created`, `record_error` or `replace_attempt`, or after
    `lease_s` if its holder died.
    """
    with store.session() as session:
        conn = session.connection()
        now = database_now(conn)
        lease = now + dt.timedelta(seconds=lease_s)
        free = or_(_P.c.lease_until.is_(None), _P.c.lease_until < now)
        if held is not None:
            free = or_(free, _P.c.lease_until == held)
        done = conn.execute(
            update(_P)
            .where(
                _P.c.id == payment_id,
                _P.c.status == PaymentStatus.INITIAL,
                _P.c.transaction_id.is_(None),
                free,
            )
            .values(lease_until=lease)
        ).rowcount
        payment = session.get(Payment, payment_id, populate_existing=True)
    if payment is None:
        return CreateClaim("closed", None)
    if done:
        return CreateClaim("claimed", payment, lease)
    if payment.transaction_id is not None:
        return CreateClaim("done", payment)
    if payment.status != PaymentStatus.INITIAL:
        return CreateClaim("closed", payment)
    return CreateClaim("busy", payment)


def wait_for_create(store: Store, payment_id: str, timeout_s: float) -> Payment | None:
    """Wait until whoever claimed the payment for creating is done: the row then has its
    transaction, is no longer open, or its claim has ended (failed or lapsed).

    Polls the row (short sleeps growing to 0.25 s); returns the last row read, also when
    `timeout_s` ran out.
    """
    deadline = time.monotonic() + timeout_s
    pause = 0.02
    while True:
        with store.read() as session:
            now = database_now(session.connection())
            payment = session.get(Payment, payment_id)
        if payment is None:
            return None
        lease = payment.lease_until
        if (
            payment.transaction_id is not None
            or payment.status != PaymentStatus.INITIAL
            or lease is None
            or lease.replace(tzinfo=dt.UTC) < now
            or time.monotonic() >= deadline
        ):
            return payment
        time.sleep(pause)
        pause = min(pause * 2, 0.25)


def latest_attempt(store: Store, submission_id: int) -> Payment | None:
    """The submission's newest payment attempt."""
    with store.read() as session:
        return session.scalars(
            select(Payment)
            .where(Payment.submission_id == submission_id)
            .order_by(Payment.created_at.desc(), Payment.id.desc())
            .limit(1)
        ).first()


def replace_attempt(
    store: Store,
    payment_id: str,
    *,
    reason: str,
    lease_s: float,
    watch: bool,
    actor: str,
) -> Payment | None:
    """Abandon an open attempt without a transaction and start its successor, claimed.

    For a create the provider refuses as PAYMENT_EXISTS (it stored an earlier create whose
    answer we lost) and that it cannot be asked about by our id: the successor has a new id,
    so a new requestId, and the citizen can pay at once. The successor is returned with its
    create claim held by the caller (`lease_until`). `watch`: the provider can be asked about
    the abandoned one by our id, so the reconciliation keeps asking until its expiry (a late
    payment of it still counts). None when the attempt is not open without a transaction
    (somebody else moved it).
    """
    with store.session() as session:
        conn = session.connection()
        now = database_now(conn)
        old = session.get(Payment, payment_id)
        if old is None:
            return None
        conn.execute(select(_S.c.id).where(_S.c.id == old.submission_id).with_for_update())
        done = conn.execute(
            update(_P)
            .where(
                _P.c.id == payment_id,
                _P.c.status == PaymentStatus.INITIAL,
                _P.c.transaction_id.is_(None),
            )
            .values(
                status=PaymentStatus.ABANDONED,
                lease_until=None,
                next_check_at=now if watch else None,
                updated_at=now,
            )
        ).rowcount
        if not done:
            return None
        fresh = _next_attempt(old, old.provider, now, now + (old.expires_at - old.created_at))
        fresh.lease_until = now + dt.timedelta(seconds=lease_s)
        session.add(fresh)
        session.add(
            Event(
                submission_id=old.submission_id,
                kind="payment.abandoned",
                actor=actor,
                at=now,
                detail={"payment_id": payment_id, "reason": reason[:100], "replaced_by": fresh.id},
            )
        )
        session.add(
            Event(
                submission_id=old.submission_id,
                kind="payment.attempt_started",
                actor=actor,
                at=now,
                detail={"payment_id": fresh.id, "previous": payment_id, "after": "abandoned"},
            )
        )
    return fresh


def withdraw_open(conn: Connection, submission_id: int, now: dt.datetime, actor: str) -> list[str]:
    """The case is cancelled while unpaid: its open payments become `withdrawn`; their ids.

    Neither XBezahldienste v1.0.0 nor the legacy pmPayment paypage can cancel a transaction,
    so one the citizen may still pay stays watched by the reconciliation until its expiry (a
    transaction exists, or a create was tried); a payment arriving then is applied and raises
    `payment.refund_due`. Runs in the caller's transaction (the cancellation's).
    """
    rows = conn.execute(
        select(_P.c.id, _P.c.transaction_id, _P.c.attempts, _P.c.last_error).where(
            _P.c.submission_id == submission_id, _P.c.status == PaymentStatus.INITIAL
        )
    ).all()
    withdrawn: list[str] = []
    for row in rows:
        payable = row.transaction_id is not None or row.attempts > 0 or row.last_error
        done = conn.execute(
            update(_P)
            .where(_P.c.id == row.id, _P.c.status == PaymentStatus.INITIAL)
            .values(
                status=PaymentStatus.WITHDRAWN,
                next_check_at=now if payable else None,
                lease_until=None,
                updated_at=now,
            )
        ).rowcount
        if done:
            withdrawn.append(row.id)
            conn.execute(
                insert(_E).values(
                    submission_id=submission_id,
                    kind="payment.withdrawn",
                    actor=actor,
                    at=now,
                    detail={"payment_id": row.id, "watched": bool(payable)},
                )
            )
    return withdrawn


def is_withdrawn(store: Store, submission_id: int) -> bool:
    """Whether the case was withdrawn before it was paid: the pay link then says so.

    True when the newest attempt is `withdrawn` and no attempt is paid.
    """
    with store.read() as session:
        statuses = list(
            session.scalars(
                select(Payment.status)
                .where(Payment.submission_id == submission_id)
                .order_by(Payment.created_at, Payment.id)
            )
        )
    if not statuses or any(s in PaymentStatus.PAID for s in statuses):
        return False
    return statuses[-1] == PaymentStatus.WITHDRAWN


def stop_watching(store: Store, payment_id: str) -> None:
    """The reconciliation stops asking about an abandoned or withdrawn payment (its expiry)."""
    with store.session() as session:
        conn = session.connection()
        now = database_now(conn)
        conn.execute(
            update(_P)
            .where(
                _P.c.id == payment_id,
                _P.c.status.in_([PaymentStatus.ABANDONED, PaymentStatus.WITHDRAWN]),
            )
            .values(next_check_at=None, lease_until=None, updated_at=now)
        )


def record_error(
    store: Store, payment_id: str, error: str, retry_in_s: float, actor: str = "system"
) -> None:
    """A provider call about this payment failed: count it, note it, check again later.

    After MAX_CHECK_ERRORS errors in a row (`check_errors`; any answer resets it, unlike
    `attempts`, which counts every check) the next check is the last one, at its expiry.
    """
    with store.session() as session:
        conn = session.connection()
        now = database_now(conn)
        row = conn.execute(
            select(
                _P.c.submission_id, _P.c.attempts, _P.c.check_errors, _P.c.expires_at, _P.c.status
            ).where(_P.c.id == payment_id)
        ).first()
        if row is None or row.status not in WATCHED:
            return
        attempts = row.attempts + 1
        errors = row.check_errors + 1
        expires_at = row.expires_at.replace(tzinfo=dt.UTC)
        retry_at = (
            expires_at
            if errors >= MAX_CHECK_ERRORS
            else min(now + dt.timedelta(seconds=retry_in_s), expires_at)
        )
        conn.execute(
            update(_P)
            .where(_P.c.id == payment_id, _P.c.status.in_(WATCHED))
            .values(
                attempts=attempts,
                check_errors=errors,
                last_error=error[:500],
                next_check_at=retry_at,
                lease_until=None,
                updated_at=now,
            )
        )
        conn.execute(
            insert(_E).values(
                submission_id=row.submission_id,
                kind="payment.provider_error",
                actor=actor,
                at=now,
                detail={"payment_id": payment_id, "error": error[:200], "attempt": attempts},
            )
        )


def schedule_check(store: Store, payment_id: str, retry_in_s: float) -> None:
    """The provider still says INITIAL (or reports another amount): ask again later (never
    after the expiry)."""
    with store.session() as session:
        conn = session.connection()
        now = database_now(conn)
        row = conn.execute(select(_P.c.expires_at).where(_P.c.id == payment_id)).first()
        if row is None:
            return
        expires_at = row.expires_at.replace(tzinfo=dt.UTC)
        conn.execute(
            update(_P)
            .where(_P.c.id == payment_id, _P.c.status.in_(WATCHED))
            .values(
                attempts=_P.c.attempts + 1,
                check_errors=0,
                next_check_at=min(now + dt.timedelta(seconds=retry_in_s), expires_at),
                lease_until=None,
                last_error=None,
                updated_at=now,
            )
        )


def claim_checks(store: Store, limit: int, lease_s: float) -> list[Payment]:
    """Lease open payments whose check is due (or whose expiry has come) for reconciliation,
    and abandoned or withdrawn ones still watched for a late payment.

    Several sweepers may run: the conditional UPDATE (due and not leased, judged by the
    database's clock) gives each row to one of them.
    """
    with store.session() as session:
        conn = session.connection()
        now = database_now(conn)
        due = and_(
            or_(
                and_(
                    _P.c.status == PaymentStatus.INITIAL,
                    or_(_P.c.next_check_at <= now, _P.c.expires_at <= now),
                ),
                # Abandoned and withdrawn attempts are asked about while a check is scheduled.
                and_(
                    _P.c.status.in_([PaymentStatus.ABANDONED, PaymentStatus.WITHDRAWN]),
                    _P.c.next_check_at <= now,
                ),
            ),
            or_(_P.c.lease_until.is_(None), _P.c.lease_until < now),
        )
        ids = list(
            conn.execute(
                select(_P.c.id)
                .where(due)
                .order_by(_P.c.next_check_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).scalars()
        )
        if not ids:
            return []
        lease = now + dt.timedelta(seconds=lease_s)
        conn.execute(update(_P).where(_P.c.id.in_(ids), due).values(lease_until=lease))
        return list(
            session.scalars(
                select(Payment).where(Payment.id.in_(ids), Payment.lease_until == lease)
            )
        )


def expire(store: Store, payment_id: str, actor: str = "system") -> bool:
    """Give up an open payment after its deadline (`expired`); held deliveries stay held."""
    with store.session() as session:
        conn = session.connection()
        now = database_now(conn)
        row = conn.execute(select(_P.c.submission_id).where(_P.c.id == payment_id)).first()
        if row is None:
            return False
        done = conn.execute(
            update(_P)
            .where(
                _P.c.id == payment_id,
                _P.c.status == PaymentStatus.INITIAL,
                _P.c.expires_at <= now,
            )
            .values(
                status=PaymentStatus.EXPIRED, next_check_at=None, lease_until=None, updated_at=now
            )
        ).rowcount
        if done:
            conn.execute(
                insert(_E).values(
                    submission_id=row.submission_id,
                    kind="payment.expired",
                    actor=actor,
                    at=now,
                    detail={"payment_id": payment_id},
                )
            )
    return bool(done)


def amount_problem(
    confirmed: Confirmed, amount_cents: int, currency: str, origin: str
) -> str | None:
    """Why a paid status does not pay our fee exactly, or None when it does.

    In integer cents, never rounded: 35.001 for 35.00 is not paid, nor another currency. A
    status call that reports no amount (legacy pmPayment) confirms only a transaction we
    created with our amount, never an adopted one.
    """
    if confirmed.currency is not None and confirmed.currency.upper() != currency.upper():
        return f"currency {confirmed.currency[:8]!r} instead of {currency}"
    if confirmed.amount is not None:
        reported = exact_cents(confirmed.amount)
        if reported is None:
            return f"amount {str(confirmed.amount)[:24]} is not a whole number of cents"
    else:
        reported = confirmed.amount_cents
    if reported is None:
        return None if origin == "bridge" else "no amount reported for an adopted transaction"
    if reported != amount_cents:
        return f"amount {to_euros(reported)} instead of {to_euros(amount_cents)}"
    return None


def apply(
    store: Store, config: Config, payment_id: str, confirmed: Confirmed, actor: str
) -> Applied:
    """Apply the provider's confirmed status to our payment, forward only, exactly once.

    A paid status must match our amount and currency exactly (`amount_problem`); otherwise
    nothing changes but an event saying why (`amount_mismatch`). On paid the held case
    deliveries are released and the payment notice is created, all in this one transaction.
    A paid status may also leave our own give-ups (expired, abandoned, withdrawn).
    """
    with store.engine.begin() as conn:
        now = database_now(conn)
        row = conn.execute(select(_P).where(_P.c.id == payment_id)).first()
        if row is None:
            return Applied("unknown")
        if confirmed.status == PaymentStatus.INITIAL:
            return Applied("open", payment_id, row.status)
        if confirmed.status not in PaymentStatus.FINAL:
            return Applied("unknown", payment_id, row.status)
        paid = confirmed.status in PaymentStatus.PAID
        reason = (
            amount_problem(confirmed, row.amount_cents, row.currency, row.origin) if paid else None
        )
        if reason is not None:
            _event(conn, row, "payment.amount_mismatch", actor, now, reason=reason)
            return Applied("amount_mismatch", payment_id, row.status, reason=reason)
        # Only an open payment moves; a paid one may also leave our own give-ups (see above).
        movable = (
            [PaymentStatus.INITIAL, *PaymentStatus.GIVEN_UP] if paid else [PaymentStatus.INITIAL]
        )
        done = conn.execute(
            update(_P)
            .where(_P.c.id == payment_id, _P.c.status.in_(movable))
            .values(**_applied_values(confirmed, paid, now))
        ).rowcount
        if not done:
            return _not_moved(conn, row, confirmed, paid, now)
        # Keyed by str: the provider's status is a plain string, equal to the member it names.
        kinds: dict[str, str] = {
            PaymentStatus.FAILED: "payment.failed",
            PaymentStatus.CANCELED: "payment.canceled",
        }
        _event(
            conn,
            row,
            kinds.get(confirmed.status, "payment.paid"),
            actor,
            now,
            status=confirmed.status,
            transaction_id=row.transaction_id,
            transaction_reference=confirmed.transaction_reference or row.transaction_reference,
            amount=str(to_euros(row.amount_cents)),
            method=confirmed.method,
        )
        if not paid:
            return Applied("applied", payment_id, confirmed.status)
        refund_due = _refund_due(conn, row, actor, now)
        wake = _on_paid(conn, config, row.submission_id, payment_id, now)
        return Applied("applied", payment_id, confirmed.status, wake, refund_due=refund_due)


def _applied_values(confirmed: Confirmed, paid: bool, now: dt.datetime) -> dict[str, object]:
    """The payment row's new values for a confirmed final status."""
    values: dict[str, object] = {
        "status": confirmed.status,
        "next_check_at": None,
        "lease_until": None,
        "updated_at": now,
    }
    if confirmed.transaction_reference:
        values["transaction_reference"] = confirmed.transaction_reference
    if confirmed.method:
        values["method"] = confirmed.method
    if paid:
        values["paid_at"] = confirmed.at or now
    return values


def _not_moved(
    conn: Connection, row: Any, confirmed: Confirmed, paid: bool, now: dt.datetime
) -> Applied:
    """The payment did not move: a duplicate, a late other final status, or a give-up whose
    transaction ended unpaid (then the reconciliation stops asking about it)."""
    # Re-read: under READ COMMITTED the row read above may predate the winner's commit.
    found = conn.execute(select(_P.c.status).where(_P.c.id == row.id)).scalar_one()
    if found in (PaymentStatus.ABANDONED, PaymentStatus.WITHDRAWN):
        conn.execute(
            update(_P)
            .where(_P.c.id == row.id, _P.c.status == found)
            .values(next_check_at=None, lease_until=None, updated_at=now)
        )
        return Applied("final", row.id, found)
    same = found == confirmed.status or (paid and found in PaymentStatus.PAID)
    return Applied("duplicate" if same else "final", row.id, found)


def _refund_due(conn: Connection, row: Any, actor: str, now: dt.datetime) -> bool:
    """Record `payment.refund_due` when this payment came in for a withdrawn case or after
    another attempt of the case was paid already (each paid transaction still gets its notice:
    the cash office must see every payment, and decides on the refund)."""
    other = conn.execute(
        select(_P.c.id).where(
            _P.c.submission_id == row.submission_id,
            _P.c.id != row.id,
            _P.c.status.in_(sorted(PaymentStatus.PAID)),
        )
    ).first()
    if row.status != PaymentStatus.WITHDRAWN and other is None:
        return False
    why = "paid_twice" if other is not None else "withdrawn"
    _event(
        conn,
        row,
        "payment.refund_due",
        actor,
        now,
        why=why,
        other_payment_id=other.id if other is not None else None,
        amount=str(to_euros(row.amount_cents)),
    )
    return True


def _event(
    conn: Connection, row: Any, kind: str, actor: str, now: dt.datetime, **detail: object
) -> None:
    """One `payment.*` event of the payment `row` (ids and amounts only, nothing personal)."""
    conn.execute(
        insert(_E).values(
            submission_id=row.submission_id,
            kind=kind,
            actor=actor,
            at=now,
            detail={"payment_id": row.id, **detail},
        )
    )


def _on_paid(
    conn: Connection, config: Config, submission_id: int, payment_id: str, now: dt.datetime
) -> list[str]:
    """Release the held case deliveries and create the one payment notice; offices to wake."""
    held = conn.execute(
        select(_D.c.id, _D.c.office_id).where(
            _D.c.submission_id == submission_id,
            _D.c.status == DeliveryStatus.HELD,
            _D.c.kind == DeliveryKind.CASE,
        )
    ).all()
    wake = sorted({h.office_id for h in held})
    if held:
        conn.execute(
            update(_D)
            .where(_D.c.id.in_([h.id for h in held]), _D.c.status == DeliveryStatus.HELD)
            .values(status=DeliveryStatus.PENDING, next_attempt_at=now, updated_at=now)
        )
        conn.execute(
            insert(_E),
            [
                {
                    "submission_id": submission_id,
                    "delivery_id": h.id,
                    "kind": "delivery.released",
                    "actor": "system",
                    "at": now,
                    "detail": {"office": h.office_id, "payment_id": payment_id},
                }
                for h in held
            ],
        )
    sub = conn.execute(
        select(_S.c.service, _S.c.municipality_ags).where(_S.c.id == submission_id)
    ).one()
    service = config.services.get(sub.service)
    municipality = config.municipality_by_ags(sub.municipality_ags)
    office = (
        config.notice_office(service, municipality)
        if service is not None and municipality is not None
        else None
    )
    if office is not None:
        notice_id = new_id()
        conn.execute(
            insert(_D).values(
                id=notice_id,
                submission_id=submission_id,
                office_id=office.id,
                task_area=office.task_area,
                channel=office.channel,
                kind=DeliveryKind.PAYMENT_NOTICE,
                payment_id=payment_id,
                status=DeliveryStatus.PENDING,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
        )
        conn.execute(
            insert(_E).values(
                submission_id=submission_id,
                delivery_id=notice_id,
                kind="delivery.routed",
                actor="system",
                at=now,
                detail={
                    "office": office.id,
                    "task_area": office.task_area,
                    "kind": DeliveryKind.PAYMENT_NOTICE,
                    "payment_id": payment_id,
                },
            )
        )
        wake = sorted({*wake, office.id})
    refresh_statuses(conn, {submission_id}, now)
    return wake


def fee_summary(config: Config, service: Service, municipality: Municipality) -> str | None:
    """One line for `check-config`: the fee, who collects it, who gets the payment notice."""
    fee = service.fee
    if fee is None:
        return None
    provider_id = config.payment_provider_for(service, municipality)
    provider = config.payment_providers.get(provider_id or "")
    office = config.notice_office(service, municipality)
    when = "before delivery" if fee.before_delivery else "delivery does not wait"
    paid_via = f"{provider_id} [{provider.plugin}]" if provider else "no provider"
    notice = f"{office.name} [{office.channel}]" if office else "nobody"
    return f"fee {fee.amount} {fee.currency} via {paid_via}, {when}; payment notice -> {notice}"


def payment_view(payment: Payment) -> dict[str, object]:
    """A payment as the API and envelopes show it (no personal data)."""
    return {
        "id": payment.id,
        "status": payment.status,
        "paid": payment.status in PaymentStatus.PAID,
        "amount": str(to_euros(payment.amount_cents)),
        "currency": payment.currency,
        "purpose": payment.purpose,
        "provider": payment.provider,
        "transaction_id": payment.transaction_id,
        "transaction_reference": payment.transaction_reference,
        "method": payment.method,
        "created_at": payment.created_at,
        "paid_at": payment.paid_at,
        "expires_at": payment.expires_at,
    }


def counted(payments: Sequence[Payment]) -> Payment | None:
    """The attempt that counts: the first paid one, else the latest (only paid amounts count)."""
    paid = [p for p in payments if p.status in PaymentStatus.PAID]
    if paid:
        return paid[0]
    return payments[-1] if payments else None


def _next_attempt(
    previous: Payment, provider: str, now: dt.datetime, expires_at: dt.datetime
) -> Payment:
    """A new attempt for the same fee (amount, currency, purpose), with a fresh id and so a
    fresh `requestId` at the provider."""
    return Payment(
        id=new_id(),
        submission_id=previous.submission_id,
        provider=provider,
        amount_cents=previous.amount_cents,
        currency=previous.currency,
        purpose=previous.purpose,
        status=PaymentStatus.INITIAL,
        origin="bridge",
        created_at=now,
        updated_at=now,
        expires_at=expires_at,
        attempts=0,
    )
