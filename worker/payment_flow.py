"""Talking to a payment's provider: create its transaction, confirm its status, apply it.

Used by the pay link and the callbacks (bridge/payments/routes.py) and by the reconciliation job
(worker/reconcile_payments.py), so all of them call providers and record outcomes one way.
Our payment row is always committed before the provider is called, and the create carries our
payment id (requestId) so that a repeat after a crash never makes a second transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import select

from domain.payments import pay_links, payments
from domain.payments.payments import Applied, Confirmed
from domain.settings import Settings
from infra.logs import log_event
from integrations.payment_providers import (
    PaymentOrder,
    PaymentProvider,
    ProviderError,
    ProviderRefused,
    ProviderStatus,
    Transaction,
    build_provider,
)
from store.engine import Store
from store.models import Payment, Submission
from worker.queue import wake_offices

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Case:
    """What a provider call needs to know about the submission (no personal data)."""

    submission_id: int
    reference: str
    service: str
    municipality_ags: str


def case_of(store: Store, submission_id: int) -> Case | None:
    """The submission's reference, service and town."""
    with store.read() as session:
        found = session.get(Submission, submission_id)
        if found is None:
            return None
        return Case(found.id, found.reference, found.service, found.municipality_ags)


def provider(settings: Settings, provider_id: str) -> PaymentProvider:
    """The configured provider plugin (ProviderRefused when it is not configured)."""
    configured = settings.config.payment_providers.get(provider_id)
    if configured is None:
        raise ProviderRefused(f"Zahlungsanbieter {provider_id} ist nicht konfiguriert")
    return build_provider(provider_id, configured.plugin, configured.options, settings.secrets)


def order(settings: Settings, payment: Payment, case: Case) -> PaymentOrder:
    """The transaction to ask for: our id, the amount, where the citizen and the provider return."""
    service = settings.config.services.get(case.service)
    title = service.title if service is not None else case.service
    return PaymentOrder(
        payment_id=payment.id,
        reference=case.reference,
        amount=payments.to_euros(payment.amount_cents),
        currency=payment.currency,
        purpose=payment.purpose,
        description=f"{title} {case.reference}",
        municipality_ags=case.municipality_ags,
        # With the link's token, so that the return page may show the Kassenzeichen.
        return_url=pay_links.return_url(
            settings.public_url,
            case.reference,
            payment.id,
            encryption_keys=settings.encryption_keys,
            expires_at=payment.expires_at,
        ),
        notify_url=f"{settings.public_url}/webhooks/payments/{payment.provider}?payment={payment.id}",
    )


def retry_in(settings: Settings, attempts: int) -> float:
    """Seconds until the next check after `attempts` checks (the last step repeats)."""
    schedule = settings.payment_check_schedule
    return schedule[min(attempts, len(schedule) - 1)]


def create_transaction(
    settings: Settings, store: Store, payment: Payment, case: Case, actor: str
) -> Transaction:
    """Create the provider transaction for our (stored) payment and record it.

    A provider error is recorded on the payment (attempts, last error, next check: the
    reconciliation job retries) and raised for the caller to explain.
    """
    try:
        transaction = provider(settings, payment.provider).create(order(settings, payment, case))
    except ProviderError as exc:
        payments.record_error(
            store, payment.id, exc.message, retry_in(settings, payment.attempts), actor
        )
        log_event(
            log,
            "payment.create_failed",
            level=logging.WARNING,
            reference=case.reference,
            payment_id=payment.id,
            provider=payment.provider,
            status_code=exc.status_code,
            error=type(exc).__name__,
        )
        raise
    payments.record_created(
        store,
        payment.id,
        transaction_id=transaction.transaction_id,
        pay_url=transaction.pay_url,
        transaction_reference=transaction.transaction_reference,
        first_check_s=retry_in(settings, 0),
        actor=actor,
    )
    log_event(
        log,
        "payment.created",
        reference=case.reference,
        payment_id=payment.id,
        provider=payment.provider,
    )
    return transaction


def confirmed(status: ProviderStatus) -> Confirmed:
    """The provider's status in the domain's terms (integer cents)."""
    return Confirmed(
        status=status.status,
        amount_cents=payments.to_cents(status.amount) if status.amount is not None else None,
        transaction_id=status.transaction_id,
        transaction_reference=status.transaction_reference,
        method=status.method,
        at=status.at,
    )


def ask(settings: Settings, payment: Payment, case: Case) -> ProviderStatus:
    """The provider's status of our payment's transaction (ProviderError when it cannot say)."""
    plugin = provider(settings, payment.provider)
    return plugin.status(payment.id, payment.transaction_id, municipality_ags=case.municipality_ags)


def confirm(
    settings: Settings, store: Store, redis: Redis | None, payment: Payment, case: Case, actor: str
) -> Applied:
    """Ask the provider and apply what it confirms; wake the offices a payment released."""
    applied = payments.apply(
        store, settings.config, payment.id, confirmed(ask(settings, payment, case)), actor
    )
    if applied.verdict == "applied":
        log_event(
            log,
            "payment.status_applied",
            reference=case.reference,
            payment_id=payment.id,
            status=applied.status,
            actor=actor,
        )
    wake(redis, applied.wake, case.reference)
    return applied


def wake(redis: Redis | None, offices: Iterable[str], reference: str) -> None:
    """Wake the offices whose deliveries a payment released; the sweeper covers a failure."""
    offices = list(offices)
    if redis is None or not offices:
        return
    try:
        wake_offices(redis, offices)
    except RedisError as exc:
        log_event(
            log,
            "delivery.enqueue_failed",
            level=logging.WARNING,
            reference=reference,
            error=type(exc).__name__,
        )


def payment_by_transaction(store: Store, provider_id: str, transaction_id: str) -> Payment | None:
    """Our payment of a provider's transaction (the dedupe key: provider + transaction id)."""
    with store.read() as session:
        return session.scalars(
            select(Payment).where(
                Payment.provider == provider_id, Payment.transaction_id == transaction_id
            )
        ).first()
