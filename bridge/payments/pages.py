"""The German pages a citizen sees around paying: paid, not yet, provider down, unknown link.

The texts live in `bridge/templates/citizen/` (Jinja, autoescaped). References are guessable,
so these pages show only the reference, the amount and the purpose: never a name, an address or
anything else from the application.
"""

from __future__ import annotations

from typing import Any

from flask import Response, render_template

from domain.payments.payments import to_euros
from store.models import Payment


def _euros(payment: Payment) -> str:
    return f"{to_euros(payment.amount_cents)}".replace(".", ",") + f" {payment.currency}"


def _page(
    template: str,
    status: int = 200,
    headers: dict[str, str] | None = None,
    payment: Payment | None = None,
    **context: Any,
) -> Response:
    """Render `citizen/<template>.html` as an uncached page that no browser may reinterpret."""
    amount = _euros(payment) if payment is not None else None
    document = render_template(
        f"citizen/{template}.html", payment=payment, amount=amount, **context
    )
    response = Response(document, status=status, mimetype="text/html", headers=headers)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def paid(reference: str, payment: Payment) -> Response:
    """The fee is paid (now or before)."""
    return _page("paid", reference=reference, payment=payment)


def not_completed(reference: str, payment: Payment, pay_link: str) -> Response:
    """The attempt failed, was cancelled or ran out: the link starts a new one."""
    return _page("not_completed", reference=reference, payment=payment, pay_link=pay_link)


def pending(reference: str, payment: Payment, pay_link: str) -> Response:
    """The provider has not confirmed the payment yet."""
    return _page("pending", reference=reference, payment=payment, pay_link=pay_link)


def unavailable(reference: str, payment: Payment | None, retry_after_s: int) -> Response:
    """The provider cannot be reached: the case is safe, try again in a few minutes."""
    return _page(
        "unavailable",
        status=503,
        headers={"Retry-After": str(retry_after_s)},
        reference=reference,
        payment=payment,
    )


def withdrawn(reference: str) -> Response:
    """The case was withdrawn before it was paid: nothing is to be paid any more."""
    return _page("withdrawn", status=410, reference=reference)


def unknown() -> Response:
    """No fee is due under this link."""
    return _page("unknown", status=404)


def too_many(retry_after_s: int) -> Response:
    """Too many requests from one address."""
    return _page("too_many", status=429, headers={"Retry-After": str(retry_after_s)})
