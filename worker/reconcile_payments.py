"""Reconciliation: ask providers about payments left INITIAL, because callbacks get lost.

Run by the sweeper every round. Each open payment whose check is due is leased (a conditional
UPDATE, so several sweepers never ask about the same payment at once), then:
- no transaction yet, but a create was tried and failed (provider down): create it again
  (idempotent by our payment id);
- a transaction: ask its status and apply it (forward only, domain/payments/payments.py);
- still open at its expiry: `expired` (the pay link then starts a new attempt).
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
from worker.payment_flow import ask, case_of, confirm, confirmed, create_transaction, wake

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
    try:
        if payment.transaction_id is None:
            if payment.attempts == 0 and payment.last_error is None:
                # Nobody asked to pay yet (the link was never followed): nothing to create.
                if expired:
                    payments.expire(store, payment.id, "reconciliation")
                return
            # A provider error is recorded on the payment (backoff) by create_transaction.
            with contextlib.suppress(ProviderError):
                create_transaction(settings, store, payment, case, "reconciliation")
            return
        if expired:
            # One last question before giving up: a late payment is still a payment.
            status = ask(settings, payment, case)
            applied = payments.apply(
                store, settings.config, payment.id, confirmed(status), "reconciliation"
            )
            wake(redis, applied.wake, case.reference)
            if applied.verdict == "open":
                payments.expire(store, payment.id, "reconciliation")
                log_event(log, "payment.expired", reference=case.reference, payment_id=payment.id)
            return
        applied = confirm(settings, store, redis, payment, case, "reconciliation")
        if applied.verdict == "open":
            payments.schedule_check(store, payment.id, _retry_in(settings, payment))
    except ProviderError as exc:
        if expired and payment.status == PaymentStatus.INITIAL:
            payments.expire(store, payment.id, "reconciliation")
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


def _retry_in(settings: Settings, payment: Payment) -> float:
    schedule = settings.payment_check_schedule
    return schedule[min(payment.attempts + 1, len(schedule) - 1)]
