"""The public payment routes: the pay link, the citizen's return, the providers' callbacks.

- `GET /pay/<reference>?token=<signed>`: the pay page (amount, purpose, "Jetzt bezahlen"); it
  changes nothing. Without a token: the same German 404 page for every reference, saying where
  the new link is; a bad token 403, an expired one 410; a withdrawn case says so.
- `POST /pay/<reference>` (token and the double-submit CSRF token in the form): creates the
  provider transaction on first use (our row is already stored, the create carries our id),
  reuses an open one, and redirects (303) to the provider's pay page. After FAILED, CANCELED or
  expired it starts a new attempt. Provider down: a German 503 page.
- `GET /pay/<reference>/return?payment=<id>[&token=...]`: a trigger; the status is asked, then
  shown (the Kassenzeichen only with the token).
- `POST /webhooks/payments/<provider>`: at most `CALLBACK_RATE_LIMIT` a minute per address; a
  provider not in the routing file is refused unjournalled; a configured provider's call is
  journalled first (own transaction, even if refused; bounded: `JOURNAL_BODY_BYTES` of the body,
  the `JOURNAL_HEADERS`), parsed by the plugin, confirmed by the provider's status call, applied
  forward only. The journal is purged after BRIDGE_PAYMENT_JOURNAL_DAYS (the sweeper).
Callbacks and returns are never trusted: only what `status()` confirms is applied.
"""

from __future__ import annotations

import logging
import secrets
from decimal import Decimal
from enum import Enum
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, request
from redis.exceptions import RedisError
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from bridge.payments import pages as pages
from bridge.proxy import client_address
from bridge.respond import json_response
from bridge.state import Bridge, current
from domain.payments import pay_links, payments
from domain.problems import Problem, msg
from infra.logs import log_event
from integrations.payment_providers import (
    BadCallback,
    CallbackClaim,
    ProviderError,
    ProviderRefused,
    ProviderUnavailable,
)
from store.models import (
    Payment,
    PaymentCallback,
    PaymentStatus,
    Submission,
    SubmissionStatus,
    parse_reference,
    utcnow,
)
from worker.payment_flow import (
    Case,
    case_of,
    confirm,
    create_transaction,
    payment_by_transaction,
)
from worker.payment_flow import provider as build_provider

log = logging.getLogger(__name__)
blueprint = Blueprint("payments", __name__)

MAX_CALLBACK_BYTES = 64 * 1024  # a provider's notification is small; more is refused unread
# The pay button's form holds a token and a CSRF value; more is refused before it is parsed
# (deploy/nginx/bridge.conf takes no more either).
MAX_PAY_FORM_BYTES = 16 * 1024
# What the journal keeps of a body (the rest is marked `body_truncated`): every provider's
# notification fits (a few hundred bytes), and a caller cannot grow the store by more per call.
JOURNAL_BODY_BYTES = 4 * 1024
# The headers the journal keeps: the one a provider plugin reads (parse_callback reads only
# Content-Type), the size the caller announced and who says it called; anything else is not
# needed to understand a call, and padding headers would only fill the store. With the query
# string, values cut to these lengths and printable ASCII, a row's headers stay under 1 KiB.
JOURNAL_HEADERS = {"Content-Type": 100, "Content-Length": 20, "User-Agent": 100}
JOURNAL_QUERY_CHARS = 200
RETRY_AFTER_S = 120
RATE_LIMIT = 30  # requests per minute and address on the public pay routes
RATE_WINDOW_S = 60
# Provider calls per minute and address: a provider calls once per payment state change (and
# retries a refused call), so 60 leave room for a burst after its outage, while a flood stores at
# most 60 bounded rows a minute per address. The reconciliation asks the provider anyway.
CALLBACK_RATE_LIMIT = 60
# The pay form's double-submit cookie (per link path) and how long a page's form stays usable.
CSRF_COOKIE = "bridge_pay"
CSRF_COOKIE_S = 3600
PAID_CLAIMS = frozenset({"PAYED", "BOOKED", "1", "PAID", "SUCCESS"})


def _same_amount(amount: Decimal, cents: int) -> bool:
    """Whether a claimed euro amount is our amount in cents (an amount with more decimals is not)."""
    try:
        return payments.to_cents(amount) == cents
    except (ValueError, ArithmeticError):
        return False


def _calls(bridge: Bridge, route: str) -> int:
    """This call's number in its address's fixed one-minute window in Redis; 0 without Redis.

    Without Redis nobody is limited: refusing every citizen and provider would be worse than
    an unlimited minute, and each journal row stays bounded anyway.
    """
    key = f"bridge:rate:{route}:{client_address() or '-'}"
    try:
        pipe = bridge.redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, RATE_WINDOW_S, nx=True)
        return int(pipe.execute()[0])
    except RedisError:
        return 0


def _limited(bridge: Bridge, route: str) -> bool:
    """Whether the address made more than `RATE_LIMIT` calls to `route` this minute."""
    return _calls(bridge, route) > RATE_LIMIT


def _case(bridge: Bridge, reference: str) -> Case | None:
    parsed = parse_reference(reference)
    if parsed is None:
        return None
    prefix, year, number = parsed
    with bridge.store.read() as session:
        found = session.scalars(
            select(Submission.id).where(
                Submission.id == number,
                Submission.reference_prefix == prefix,
                Submission.reference_year == year,
            )
        ).first()
    return case_of(bridge.store, found) if found is not None else None


def _see_other(url: str) -> Response:
    """303 to the provider's pay page (only http(s) URLs the provider gave us)."""
    if not url.startswith(("https://", "http://")):
        raise ProviderRefused("Zahlungsanbieter: ungültige Bezahlseite")
    return Response(status=303, headers={"Location": url, "Cache-Control": "no-store"})


def _pay_link(bridge: Bridge, reference: str, token: str) -> str:
    """The pay page's address with the token the citizen came with."""
    return f"{bridge.settings.public_url}/pay/{reference}?{urlencode({'token': token})}"


def _token_check(bridge: Bridge, reference: str, token: str | None) -> pay_links.TokenCheck:
    return pay_links.check_token(
        reference, token, encryption_keys=bridge.settings.encryption_keys, now=utcnow()
    )


def _withdrawn(bridge: Bridge, case: Case) -> Response | None:
    """The withdrawn page when the case was cancelled, or its fee withdrawn with its last held
    delivery (the pay link then creates nothing)."""
    with bridge.store.read() as session:
        status = session.scalar(
            select(Submission.status).where(Submission.id == case.submission_id)
        )
    if status != SubmissionStatus.CANCELLED and not payments.is_withdrawn(
        bridge.store, case.submission_id
    ):
        return None
    paid = any(
        p.status in PaymentStatus.PAID
        for p in payments.payments_of(bridge.store, case.submission_id)
    )
    return pages.withdrawn(case.reference, paid)


@blueprint.get("/pay/<reference>")
def pay_page(reference: str) -> Response:
    """The pay page of a signed link: amount, purpose, "Jetzt bezahlen". A GET changes nothing.

    Mail scanners and chat previews follow links: without a token (the old link format) every
    reference gets the same page saying where the new link is; with a token the page shows
    the fee and a form whose POST creates the transaction.
    """
    bridge = current()
    if _limited(bridge, "pay"):
        return pages.too_many(60)
    token = request.args.get("token")
    if token is None:
        return pages.old_link()
    check = _token_check(bridge, reference, token)
    if not check.ok:
        return pages.bad_link(check.outcome)
    try:
        return _show(bridge, reference, token)
    except SQLAlchemyError as exc:
        log_event(log, "payment.store_failed", level=logging.ERROR, error=type(exc).__name__)
        return pages.unavailable(reference, None, RETRY_AFTER_S)


def _show(bridge: Bridge, reference: str, token: str) -> Response:
    """What the signed link shows: paid, withdrawn, or the pay form (read only)."""
    case = _case(bridge, reference)
    if case is None:
        return pages.unknown()
    withdrawn = _withdrawn(bridge, case)
    if withdrawn is not None:
        return withdrawn
    payment = payments.counted(payments.payments_of(bridge.store, case.submission_id))
    if payment is None:
        return pages.unknown()
    if payment.status in PaymentStatus.PAID:
        return pages.paid(reference, payment)
    # The double-submit nonce: kept when the browser has one (a second tab stays valid).
    nonce = request.cookies.get(CSRF_COOKIE, "")
    if not (nonce.isascii() and nonce.isalnum() and 20 <= len(nonce) <= 64):
        nonce = secrets.token_hex(16)
    csrf = pay_links.csrf_token(
        nonce, reference, token, encryption_keys=bridge.settings.encryption_keys
    )
    response = pages.pay_form(reference, payment, token, csrf)
    response.set_cookie(
        CSRF_COOKIE,
        nonce,
        max_age=CSRF_COOKIE_S,
        path=f"/pay/{reference}",
        secure=bridge.settings.public_url.startswith("https://") or request.is_secure,
        httponly=True,
        samesite="Strict",
    )
    return response


@blueprint.post("/pay/<reference>")
def pay(reference: str) -> Response:
    """ "Jetzt bezahlen": create the transaction on first use (or reuse the open one) and send
    the citizen to the provider's pay page. Needs the link's token and the form's CSRF token."""
    bridge = current()
    if _limited(bridge, "pay"):
        return pages.too_many(60)
    if request.content_length is None or request.content_length > MAX_PAY_FORM_BYTES:
        return pages.too_large()
    token = request.form.get("token", "")[:100]
    check = _token_check(bridge, reference, token)
    if not check.ok:
        return pages.old_link() if check.outcome == "missing" else pages.bad_link(check.outcome)
    if not pay_links.csrf_ok(
        request.cookies.get(CSRF_COOKIE, ""),
        request.form.get("csrf_token", ""),
        reference,
        token,
        encryption_keys=bridge.settings.encryption_keys,
    ):
        return pages.form_refused()
    try:
        case = _case(bridge, reference)
        withdrawn = _withdrawn(bridge, case) if case is not None else None
        if withdrawn is not None:
            return withdrawn
        return _pay(bridge, reference, token)
    except ProviderError:
        return pages.unavailable(reference, None, RETRY_AFTER_S)
    except SQLAlchemyError as exc:
        log_event(log, "payment.store_failed", level=logging.ERROR, error=type(exc).__name__)
        return pages.unavailable(reference, None, RETRY_AFTER_S)


def _pay(bridge: Bridge, reference: str, token: str) -> Response:
    case = _case(bridge, reference)
    if case is None:
        return pages.unknown()
    config = bridge.settings.config
    service = config.services.get(case.service)
    municipality = config.municipality_by_ags(case.municipality_ags)
    provider_id = (
        config.payment_provider_for(service, municipality)
        if service is not None and municipality is not None
        else None
    )
    if service is None or service.fee is None or provider_id is None:
        return pages.unknown()
    hours = service.fee.expires_after_hours
    # Twice at most: an open transaction the provider meanwhile failed starts a new attempt.
    for _ in range(2):
        payment = payments.open_attempt(
            bridge.store, case.submission_id, provider_id, hours, "citizen"
        )
        if payment is None:
            return pages.unknown()
        if payment.status in PaymentStatus.PAID:
            return pages.paid(reference, payment)
        if payment.status == PaymentStatus.WITHDRAWN:
            return pages.withdrawn(reference, paid=False)
        if payment.transaction_id is None:
            return _new_transaction(bridge, reference, payment, case, token)
        answer = _open_transaction(bridge, reference, payment, case, token)
        if answer is not None:
            return answer
    return pages.unavailable(reference, None, RETRY_AFTER_S)


def _new_transaction(
    bridge: Bridge, reference: str, payment: Payment, case: Case, token: str
) -> Response:
    """Create the payment's transaction at the provider and send the citizen to pay it."""
    try:
        transaction = create_transaction(bridge.settings, bridge.store, payment, case, "citizen")
    except ProviderError:
        return pages.unavailable(reference, payment, RETRY_AFTER_S)
    if transaction.pay_url:
        return _see_other(transaction.pay_url)
    return pages.pending(reference, payment, _pay_link(bridge, reference, token))


def _open_transaction(
    bridge: Bridge, reference: str, payment: Payment, case: Case, token: str
) -> Response | None:
    """An open transaction: ask first, so a lost callback does not send a payer back.

    None when the provider says it failed or was cancelled just now: a new attempt is due.
    """
    try:
        applied = confirm(bridge.settings, bridge.store, bridge.redis, payment, case, "citizen")
    except ProviderError:
        applied = None
    if applied is not None and applied.status in PaymentStatus.PAID:
        fresh = payments.get(bridge.store, payment.id)
        return pages.paid(reference, fresh or payment)
    if applied is not None and applied.verdict == "applied":
        return None
    if payment.pay_url:
        return _see_other(payment.pay_url)
    return pages.pending(reference, payment, _pay_link(bridge, reference, token))


@blueprint.get("/pay/<reference>/return")
def pay_return(reference: str) -> Response:
    """The citizen's browser is back from the provider: ask the provider, then say how it went."""
    bridge = current()
    if _limited(bridge, "pay"):
        return pages.too_many(60)
    try:
        return _return(bridge, reference)
    except SQLAlchemyError as exc:
        log_event(log, "payment.store_failed", level=logging.ERROR, error=type(exc).__name__)
        return pages.unavailable(reference, None, RETRY_AFTER_S)


def _return(bridge: Bridge, reference: str) -> Response:
    """Ask the provider about the returning payment; the Kassenzeichen and the link to pay again
    only with the link's token (a bare payment id shows the status alone)."""
    case = _case(bridge, reference)
    payment_id = request.args.get("payment", "")[:64]
    payment = payments.get(bridge.store, payment_id) if payment_id else None
    if case is None or payment is None or payment.submission_id != case.submission_id:
        return pages.unknown()
    token = request.args.get("token", "")[:100]
    shown = _token_check(bridge, reference, token).ok
    link = _pay_link(bridge, reference, token) if shown else None
    journal_id = _journal(bridge, payment.provider, "return", b"", payment.id, "received")
    try:
        applied = confirm(bridge.settings, bridge.store, bridge.redis, payment, case, "citizen")
    except ProviderError:
        _verdict(bridge, journal_id, "not_confirmable")
        return pages.pending(reference, payment, link)
    _verdict(bridge, journal_id, applied.verdict, detail=applied.reason)
    fresh = payments.get(bridge.store, payment.id) or payment
    if fresh.status in PaymentStatus.PAID:
        return pages.paid(reference, fresh, kassenzeichen=shown)
    if fresh.status in PaymentStatus.FINAL:
        return pages.not_completed(reference, fresh, link)
    return pages.pending(reference, fresh, link)


def _journal(
    bridge: Bridge,
    provider_id: str,
    kind: str,
    body: bytes,
    payment_id: str | None,
    verdict: str,
) -> int | None:
    """Keep the inbound call (allow-listed headers, bounded body) in its own transaction."""
    headers = {
        name: _printable(value[:chars])
        for name, chars in JOURNAL_HEADERS.items()
        if (value := request.headers.get(name)) is not None
    }
    query = _printable(request.query_string.decode("latin-1")[:JOURNAL_QUERY_CHARS])
    try:
        with bridge.store.session() as session:
            row = PaymentCallback(
                provider=provider_id[:64],
                kind=kind,
                remote_addr=(client_address() or "")[:64] or None,
                headers={"query": query, **headers},
                body=body[:JOURNAL_BODY_BYTES],
                body_truncated=len(body) > JOURNAL_BODY_BYTES,
                payment_id=payment_id,
                verdict=verdict,
            )
            session.add(row)
            session.flush()
            return row.id
    except SQLAlchemyError as exc:
        log_event(log, "payment.journal_failed", level=logging.ERROR, error=type(exc).__name__)
        return None


def _printable(text: str) -> str:
    """Printable ASCII only, so that JSON escaping cannot multiply a value's stored size."""
    return "".join(c if " " <= c <= "~" else "?" for c in text)


def _verdict(bridge: Bridge, journal_id: int | None, verdict: str, **changes: Any) -> None:
    if journal_id is None:
        return
    try:
        with bridge.store.session() as session:
            session.execute(
                update(PaymentCallback)
                .where(PaymentCallback.id == journal_id)
                .values(verdict=verdict, **changes)
            )
    except SQLAlchemyError as exc:
        log_event(log, "payment.journal_failed", level=logging.ERROR, error=type(exc).__name__)


class Refusal(Enum):
    """Every way a provider's notification is refused, described once.

    Columns: the HTTP status, the verdict (journalled, logged and the problem type's suffix),
    the title and the detail (German, English), and after how many seconds the provider should
    send the notification again (Retry-After; 0: not at all).
    """

    RATE_LIMITED = (
        429,
        "rate_limited",
        ("Zu viele Anfragen.", "Too many requests."),
        (
            f"Höchstens {CALLBACK_RATE_LIMIT} Zahlungsnachrichten je Minute und Absender; "
            f"bitte nach {RATE_WINDOW_S} Sekunden erneut senden.",
            f"At most {CALLBACK_RATE_LIMIT} notifications a minute per sender; "
            f"please send again after {RATE_WINDOW_S} seconds.",
        ),
        RATE_WINDOW_S,
    )

    TOO_LARGE = (
        413,
        "too_large",
        ("Die Nachricht ist zu groß.", "The notification is too large."),
        ("Eine Zahlungsnachricht ist höchstens 64 KB groß.", "At most 64 KB."),
    )
    UNKNOWN_PROVIDER = (
        404,
        "unknown_provider",
        ("Unbekannter Zahlungsanbieter.", "Unknown payment provider."),
        ("Dieser Zahlungsanbieter ist hier nicht eingerichtet.", "No such provider here."),
    )
    UNREADABLE = (
        400,
        "unreadable",
        ("Die Zahlungsnachricht ist nicht lesbar.", "The notification cannot be read."),
        ("Es fehlt die Zahlung oder die Transaktion.", "Payment or transaction missing."),
    )
    PROVIDER_UNCONFIGURED = (
        503,
        "provider_unconfigured",
        ("Der Zahlungsanbieter ist nicht nutzbar.", "The provider is not usable."),
        ("Bitte später erneut senden.", "Please send it again later."),
        RETRY_AFTER_S,
    )
    UNKNOWN_PAYMENT = (
        404,
        "unknown_payment",
        ("Unbekannte Zahlung.", "Unknown payment."),
        ("Zu dieser Nachricht gibt es keine Zahlung.", "No payment matches this call."),
    )
    TRANSACTION_MISMATCH = (
        409,
        "transaction_mismatch",
        ("Die Transaktion passt nicht zur Zahlung.", "Transaction does not match."),
        ("Die genannte Transaktion gehört nicht zu dieser Zahlung.", "Not this payment's."),
    )
    NOTIFIED_AMOUNT_MISMATCH = (
        422,
        "amount_mismatch",
        ("Der Betrag stimmt nicht.", "The amount does not match."),
        ("Der gemeldete Betrag weicht von der Gebühr ab.", "Notified amount differs."),
    )
    NO_SUBMISSION = (
        404,
        "unknown_payment",
        ("Unbekannte Zahlung.", "Unknown payment."),
        ("Kein Antrag.", "No submission."),
    )
    NOT_CONFIRMABLE = (
        503,
        "not_confirmable",
        ("Die Zahlung kann gerade nicht bestätigt werden.", "Cannot confirm right now."),
        ("Der Zahlungsanbieter antwortet nicht; bitte erneut senden.", "Please retry."),
        RETRY_AFTER_S,
    )
    UNKNOWN_TO_PROVIDER = (
        422,
        "not_confirmed",
        ("Die Zahlung ist nicht bestätigt.", "The payment is not confirmed."),
        ("Der Zahlungsanbieter kennt diese Transaktion nicht.", "Unknown to the provider."),
    )
    CONFIRMED_AMOUNT_MISMATCH = (
        422,
        "amount_mismatch",
        ("Der Betrag stimmt nicht.", "The amount does not match."),
        ("Der bestätigte Betrag weicht von der Gebühr ab.", "Confirmed amount differs."),
    )
    PAID_NOT_CONFIRMED = (
        422,
        "not_confirmed",
        ("Die Zahlung ist nicht bestätigt.", "The payment is not confirmed."),
        ("Der Zahlungsanbieter bestätigt die gemeldete Zahlung nicht.", "Not confirmed."),
    )

    def __init__(
        self,
        status: int,
        verdict: str,
        title: tuple[str, str],
        detail: tuple[str, str],
        retry_after_s: int = 0,
    ) -> None:
        self.status = status
        self.verdict = verdict
        self.title = title
        self.detail = detail
        self.retry_after_s = retry_after_s


class Refused(Exception):
    """A notification refused as `refusal` says; `payment_id` once the payment is known."""

    def __init__(
        self, refusal: Refusal, payment_id: str | None = None, why: str | None = None
    ) -> None:
        super().__init__(refusal.verdict)
        self.refusal = refusal
        self.payment_id = payment_id
        self.why = why  # for the journal, when the refusal's own detail says too little


def _refuse(
    bridge: Bridge,
    journal_id: int | None,
    provider_id: str,
    refused: Refused,
    *,
    logged: bool = True,
) -> Problem:
    """Record the refusal (journal verdict if journalled, security log event unless `logged`
    is off) and the problem to answer."""
    refusal, payment_id = refused.refusal, refused.payment_id
    detail = (refused.why or refusal.detail[1])[:200]
    _verdict(bridge, journal_id, refusal.verdict, payment_id=payment_id, detail=detail)
    if logged:
        log_event(
            log,
            "payment.callback_refused",
            level=logging.WARNING,
            provider=provider_id[:64],
            verdict=refusal.verdict,
            payment_id=payment_id,
            remote_addr=client_address(),
        )
    return Problem(
        refusal.status,
        f"payment-callback-{refusal.verdict.replace('_', '-')}",
        msg(*refusal.title),
        msg(*refusal.detail),
        headers={"Retry-After": str(refusal.retry_after_s)} if refusal.retry_after_s else {},
    )


@blueprint.post("/webhooks/payments/<provider_id>")
def callback(provider_id: str) -> Response:
    """A provider's notification: a trigger to ask the provider, never the truth itself.

    Limited and checked before anything is read or stored: a flood of calls, or calls for a
    provider we do not have, must not fill the store nor make us ask a provider.
    """
    bridge = current()
    calls = _calls(bridge, "callback")
    if calls > CALLBACK_RATE_LIMIT:
        # Logged once a window: the log must not grow with the flood either.
        first = calls == CALLBACK_RATE_LIMIT + 1
        raise _refuse(bridge, None, provider_id, Refused(Refusal.RATE_LIMITED), logged=first)
    if provider_id not in bridge.settings.config.payment_providers:
        raise _refuse(bridge, None, provider_id, Refused(Refusal.UNKNOWN_PROVIDER))
    try:
        return _callback(bridge, provider_id)
    except SQLAlchemyError as exc:
        # The provider retries a notification it could not deliver; nothing half-applied
        # stays behind (every change is one transaction).
        log_event(log, "payment.store_failed", level=logging.ERROR, error=type(exc).__name__)
        raise Problem(
            503,
            "store-unavailable",
            msg("Die Nachricht konnte nicht verarbeitet werden.", "The call could not be handled."),
            headers={"Retry-After": "30"},
        ) from None


def _callback(bridge: Bridge, provider_id: str) -> Response:
    """Journal the notification first, then confirm it or refuse it as the table says."""
    length = request.content_length
    # A body announced as too large is refused unread, but still journalled.
    too_large = length is not None and length > MAX_CALLBACK_BYTES
    body = b"" if too_large else request.stream.read(MAX_CALLBACK_BYTES + 1)
    too_large = too_large or len(body) > MAX_CALLBACK_BYTES
    journal_id = _journal(bridge, provider_id, "notify", body, None, "received")
    if journal_id is None:
        # Without the journal row we cannot prove the call later: let the provider retry.
        raise Problem(
            503,
            "store-unavailable",
            msg("Die Nachricht konnte nicht gespeichert werden.", "The call could not be stored."),
            headers={"Retry-After": "30"},
        )
    try:
        if too_large:
            raise Refused(Refusal.TOO_LARGE)
        payment, applied = _confirmed(bridge, provider_id, body)
    except Refused as refused:
        raise _refuse(bridge, journal_id, provider_id, refused) from None
    _verdict(bridge, journal_id, applied.verdict, payment_id=payment.id)
    return json_response(
        {"payment": payment.id, "status": applied.status, "result": applied.verdict}
    )


def _confirmed(bridge: Bridge, provider_id: str, body: bytes) -> tuple[Payment, payments.Applied]:
    """The notified payment and what the provider confirms of it; Refused at the first doubt."""
    claim = _claim(bridge, provider_id, body)
    payment = _claimed_payment(bridge, provider_id, claim)
    case = case_of(bridge.store, payment.submission_id)
    if case is None:  # pragma: no cover - a payment always has its submission
        raise Refused(Refusal.NO_SUBMISSION)
    actor = f"provider:{provider_id}"
    try:
        applied = confirm(bridge.settings, bridge.store, bridge.redis, payment, case, actor)
    except ProviderUnavailable:
        raise Refused(Refusal.NOT_CONFIRMABLE, payment.id) from None
    except ProviderError:
        raise Refused(Refusal.UNKNOWN_TO_PROVIDER, payment.id) from None
    if applied.verdict == "amount_mismatch":
        raise Refused(Refusal.CONFIRMED_AMOUNT_MISMATCH, payment.id, applied.reason)
    claimed_paid = (claim.status or "").upper() in PAID_CLAIMS
    if claimed_paid and applied.status not in PaymentStatus.PAID:
        raise Refused(Refusal.PAID_NOT_CONFIRMED, payment.id)
    return payment, applied


def _claim(bridge: Bridge, provider_id: str, body: bytes) -> CallbackClaim:
    """What the callback says, read by its provider's plugin; Refused when unreadable."""
    settings = bridge.settings
    try:
        plugin = build_provider(settings, provider_id)
        return plugin.parse_callback(
            dict(request.headers.items()), body, {k: v for k, v in request.args.items()}
        )
    except BadCallback:
        raise Refused(Refusal.UNREADABLE) from None
    except ProviderError:
        raise Refused(Refusal.PROVIDER_UNCONFIGURED) from None


def _claimed_payment(bridge: Bridge, provider_id: str, claim: CallbackClaim) -> Payment:
    """Our payment the claim names, when its provider, transaction and amount agree."""
    payment: Payment | None = None
    if claim.payment_id:
        payment = payments.get(bridge.store, claim.payment_id[:64])
    elif claim.transaction_id:
        payment = payment_by_transaction(bridge.store, provider_id, claim.transaction_id)
    if payment is None or payment.provider != provider_id:
        raise Refused(Refusal.UNKNOWN_PAYMENT)
    if payment.transaction_id is None or (
        claim.transaction_id is not None and claim.transaction_id != payment.transaction_id
    ):
        # Never let a caller point our payment at some other (paid) transaction.
        raise Refused(Refusal.TRANSACTION_MISMATCH, payment.id)
    if claim.amount is not None and not _same_amount(claim.amount, payment.amount_cents):
        # The notification itself names another amount (pmPayment's notify form does).
        why = payments.amount_problem(
            payments.Confirmed("PAYED", None, amount=claim.amount),
            payment.amount_cents,
            payment.currency,
            payment.origin,
        )
        raise Refused(Refusal.NOTIFIED_AMOUNT_MISMATCH, payment.id, f"notified {why}")
    return payment
