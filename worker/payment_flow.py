"""Talking to a payment's provider: create its transaction, confirm its status, apply it.

Used by the pay link and the callbacks (bridge/payments/routes.py) and by the reconciliation job
(worker/reconcile_payments.py), so all of them call providers and record outcomes one way.
Our payment row is always committed before the provider is called, and the create carries our
payment id (requestId) so that a repeat after a crash never makes a second transaction. One
create at a time per payment (a claim in the database); a create the provider refuses as
PAYMENT_EXISTS starts a new attempt with a new requestId (docs/payments-reliability.md).
"""

from __future__ import annotations

import datetime as dt
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
    ProviderUnavailable,
    Transaction,
    build_provider,
)
from store.engine import Store
from store.models import Payment, PaymentStatus, Submission
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


#: A create claim lasts this much longer than the provider's own answer may take (3 timeouts:
#: an OAuth2 token, the create and one immediate repeat after a lost answer).
CREATE_LEASE_MARGIN_S = 5.0
#: Claim rounds of one create_transaction call: the attempt, a successor after
#: PAYMENT_EXISTS, a lapsed claim taken over; more means something is badly wrong.
MAX_CREATE_ROUNDS = 4


class CreateBusy(ProviderUnavailable):
    """Somebody else is creating this payment's transaction right now (not waited for)."""


class PaymentClosed(ProviderRefused):
    """The payment is no longer open (paid, failed, abandoned or withdrawn): nothing to create."""


def _transaction_of(payment: Payment) -> Transaction:
    """The transaction recorded on our payment, as the provider's create gave it."""
    assert payment.transaction_id is not None
    return Transaction(payment.transaction_id, payment.pay_url, payment.transaction_reference)


def create_transaction(
    settings: Settings,
    store: Store,
    payment: Payment,
    case: Case,
    actor: str,
    *,
    held_lease: dt.datetime | None = None,
    wait: bool = True,
) -> Transaction:
    """The provider transaction of our (stored) payment: created once, whoever asks.

    One create at a time per payment (`payments.claim_create`): concurrent callers wait for
    the first (`wait`; the reconciliation does not) and reuse its transaction, or its error.
    A create refused as PAYMENT_EXISTS (the provider stored an earlier create whose answer
    was lost) abandons the attempt and creates a successor with a new requestId at once
    (`payments.replace_attempt`); the returned transaction may so belong to a newer attempt
    than `payment`. A provider error is recorded on the payment (attempts, last error, next
    check: the reconciliation retries) and raised for the caller to explain. `held_lease`:
    the caller already holds the payment's lease (the reconciliation's claim).
    """
    plugin = provider(settings, payment.provider)
    lease_s = plugin.timeout * 3 + CREATE_LEASE_MARGIN_S
    current = payment
    for _ in range(MAX_CREATE_ROUNDS):
        claim = payments.claim_create(store, current.id, lease_s, held=held_lease)
        held_lease = None
        if claim.state == "done":
            assert claim.payment is not None
            return _transaction_of(claim.payment)
        if claim.state == "closed":
            current = _successor(store, claim.payment, case)
            continue
        if claim.state == "busy":
            if not wait:
                raise CreateBusy(f"{plugin.what}: Transaktion wird gerade angelegt")
            assert claim.payment is not None
            found = payments.wait_for_create(store, current.id, lease_s)
            if found is not None and found.transaction_id is not None:
                return _transaction_of(found)
            if found is not None and found.attempts > claim.payment.attempts:
                # The create we waited for failed just now: the same answer, not a second call.
                raise ProviderUnavailable(found.last_error or f"{plugin.what}: nicht erreichbar")
            continue
        assert claim.payment is not None
        try:
            return _create_claimed(settings, store, plugin, claim.payment, case, actor)
        except ProviderRefused as exc:
            if exc.code != "PAYMENT_EXISTS":
                raise
        fresh = payments.replace_attempt(
            store,
            current.id,
            reason="PAYMENT_EXISTS",
            lease_s=lease_s,
            watch=plugin.finds_by_payment_id,
            actor=actor,
        )
        log_event(
            log,
            "payment.attempt_abandoned",
            level=logging.WARNING,
            reference=case.reference,
            payment_id=current.id,
            replaced_by=fresh.id if fresh is not None else None,
            reason="PAYMENT_EXISTS",
        )
        if fresh is not None:
            current, held_lease = fresh, fresh.lease_until
    raise ProviderUnavailable(f"{plugin.what}: Transaktion konnte nicht angelegt werden")


def _successor(store: Store, closed: Payment | None, case: Case) -> Payment:
    """The attempt that replaced an abandoned one; PaymentClosed when there is none to use."""
    latest = payments.latest_attempt(store, case.submission_id)
    if (
        closed is not None
        and closed.status == PaymentStatus.ABANDONED
        and latest is not None
        and latest.id != closed.id
        and latest.status == PaymentStatus.INITIAL
    ):
        return latest
    status = closed.status if closed is not None else "unknown"
    raise PaymentClosed(f"Zahlung ist nicht mehr offen ({status})", code="CLOSED")


def _create_claimed(
    settings: Settings,
    store: Store,
    plugin: PaymentProvider,
    payment: Payment,
    case: Case,
    actor: str,
) -> Transaction:
    """Create the transaction of a payment we hold the claim of, and record the outcome.

    A fast 5xx answer (the provider answered, so it is up) is repeated once at once with the
    same requestId: the provider may have stored the create and lost only the answer, and
    the repeat then learns it (PAYMENT_EXISTS, or the transaction from a lenient provider),
    so the citizen does not wait for the reconciliation. PAYMENT_EXISTS is raised for the
    caller; other errors are recorded (which ends the claim) and raised.
    """
    the_order = order(settings, payment, case)
    try:
        try:
            transaction = plugin.create(the_order)
        except ProviderUnavailable as exc:
            if exc.status_code is None or isinstance(exc, CreateBusy):
                raise
            transaction = plugin.create(the_order)
    except ProviderError as exc:
        if isinstance(exc, ProviderRefused) and exc.code == "PAYMENT_EXISTS":
            raise
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
    """The provider's status in the domain's terms: the amount exactly as reported (the
    domain refuses one finer than a cent; nothing is rounded or raised here)."""
    return Confirmed(
        status=status.status,
        amount_cents=payments.exact_cents(status.amount) if status.amount is not None else None,
        amount=status.amount,
        currency=status.currency,
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
    report(applied, case, actor)
    wake(redis, applied.wake, case.reference)
    return applied


def report(applied: Applied, case: Case, actor: str) -> None:
    """Log what applying a status came to; a mismatch and a refund due are warnings."""
    if applied.verdict == "applied":
        log_event(
            log,
            "payment.status_applied",
            reference=case.reference,
            payment_id=applied.payment_id,
            status=applied.status,
            actor=actor,
        )
    if applied.verdict == "amount_mismatch":
        log_event(
            log,
            "payment.amount_mismatch",
            level=logging.WARNING,
            reference=case.reference,
            payment_id=applied.payment_id,
            reason=applied.reason,
        )
    if applied.refund_due:
        log_event(
            log,
            "payment.refund_due",
            level=logging.WARNING,
            reference=case.reference,
            payment_id=applied.payment_id,
        )


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
