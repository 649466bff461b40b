"""Reconciliation: ask providers about payments left INITIAL, because callbacks get lost.

Run by the sweeper every round. Each open payment whose check is due is leased (a conditional
UPDATE, so several sweepers never ask about the same payment at once), then:
- no transaction yet, but a create was tried and failed (provider down): create it again
  (one create at a time per payment; PAYMENT_EXISTS starts a new attempt);
- a transaction: ask its status and apply it (forward only, domain/payments/payments.py);
- still open at its expiry: `expired` (the pay link then starts a new attempt);
- abandoned or withdrawn, still watched: asked about until its expiry, so that a late
  payment is applied (and raises `payment.refund_due` where a refund may be due).
A provider error counts against the payment (backoff, error cap in domain/payments/payments.py); it
never stops the round, and a store or Redis error only ends this round.
"""

from __future__ import annotations

import contextlib
import logging

from redis import Redis
from sqlalchemy.exc import SQLAlchemyError

from domain.payments import payments
from domain.settings import Settings
from infra.logs import log_event
from integrations.payment_providers import ProviderError
from store.clock import database_now
from store.engine import Store
from store.models import Payment, PaymentStatus
from worker.payment_flow import (
    Case,
    ask,
    case_of,
    confirm,
    confirmed,
    create_transaction,
    provider,
    report,
    wake,
)

log = logging.getLogger(__name__)

LEASE_S = 120.0


def reconcile_payments(
    settings: Settings, store: Store, redis: Redis | None = None, limit: int = 20
) -> int:
    """Check the due open payments once; returns how many were looked at."""
    claimed = payments.claim_checks(store, limit, LEASE_S)
    for payment in claimed:
        try:
            _check(settings, store, redis, payment)
        except SQLAlchemyError:
            raise  # the store is down: the sweeper's loop waits for it
        except Exception as exc:  # one odd answer must not stop the sweeper
            log_event(
                log,
                "payment.check_crashed",
                level=logging.ERROR,
                payment_id=payment.id,
                error=type(exc).__name__,
            )
    return len(claimed)


def _check(settings: Settings, store: Store, redis: Redis | None, payment: Payment) -> None:
    case = case_of(store, payment.submission_id)
    if case is None:
        return
    with store.engine.connect() as conn:
        now = database_now(conn)
    expired = payment.expires_at <= now
    given_up = payment.status != PaymentStatus.INITIAL  # abandoned or withdrawn, still watched
    try:
        if payment.transaction_id is None and not given_up:
            _create(settings, store, payment, case, expired)
            return
        unaskable = payment.transaction_id is None and not (
            provider(settings, payment.provider).finds_by_payment_id
        )
        if given_up and unaskable:
            # Nobody can ask about it (XBezahldienste asks by transaction id only).
            payments.stop_watching(store, payment.id)
            return
        if expired:
            _last_check(settings, store, redis, payment, case)
            return
        applied = confirm(settings, store, redis, payment, case, "reconciliation")
        if applied.verdict in ("open", "amount_mismatch"):
            payments.schedule_check(store, payment.id, _retry_in(settings, payment))
    except ProviderError as exc:
        if expired:
            _give_up(store, payment, case)
            return
        payments.record_error(
            store, payment.id, exc.message, _retry_in(settings, payment), "reconciliation"
        )
        log_event(
            log,
            "payment.check_failed",
            level=logging.WARNING,
            reference=case.reference,
            payment_id=payment.id,
            error=type(exc).__name__,
            attempt=payment.attempts + 1,
        )


def _create(settings: Settings, store: Store, payment: Payment, case: Case, expired: bool) -> None:
    """An open payment without a transaction: create it when a create was tried and failed."""
    if expired or (payment.attempts == 0 and payment.last_error is None):
        # Given up, or nobody asked to pay yet (the link was never followed): nothing to create.
        if expired:
            payments.expire(store, payment.id, "reconciliation")
        return
    # A provider error is recorded on the payment (backoff) by create_transaction; a click
    # creating it right now is left to finish (the create claim).
    with contextlib.suppress(ProviderError):
        create_transaction(
            settings,
            store,
            payment,
            case,
            "reconciliation",
            held_lease=payment.lease_until,
            wait=False,
        )


def _last_check(
    settings: Settings, store: Store, redis: Redis | None, payment: Payment, case: Case
) -> None:
    """One last question before giving up: a late payment is still a payment."""
    status = ask(settings, payment, case)
    applied = payments.apply(
        store, settings.config, payment.id, confirmed(status), "reconciliation"
    )
    report(applied, case, "reconciliation")
    wake(redis, applied.wake, case.reference)
    if applied.verdict in ("open", "amount_mismatch"):
        _give_up(store, payment, case)


def _give_up(store: Store, payment: Payment, case: Case) -> None:
    """Past its expiry: an open payment expires; an abandoned or withdrawn one is no longer
    asked about."""
    if payment.status == PaymentStatus.INITIAL:
        payments.expire(store, payment.id, "reconciliation")
        log_event(log, "payment.expired", reference=case.reference, payment_id=payment.id)
    else:
        payments.stop_watching(store, payment.id)


def _retry_in(settings: Settings, payment: Payment) -> float:
    schedule = settings.payment_check_schedule
    return schedule[min(payment.attempts + 1, len(schedule) - 1)]
