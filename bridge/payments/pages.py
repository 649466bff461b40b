"""The German pages a citizen sees around paying: the pay page, paid, not yet, provider down,
withdrawn, and the refusals of a link (old, invalid, expired, a form sent without its token).

The texts live in `bridge/templates/citizen/` (Jinja, autoescaped). Only a signed link (see
`domain.payments.pay_links`) shows the reference, the amount and the purpose, and only with its
token the Kassenzeichen: never a name, an address or anything else from the application.
"""

from __future__ import annotations

from typing import Any

from flask import Response, render_template

from domain.payments.payments import to_euros
from store.models import Payment


def euros(cents: int, currency: str) -> str:
    """An amount as a German reader writes it: "35,00 €" (another currency by its code)."""
    sign = "€" if currency == "EUR" else currency
    return f"{to_euros(cents)}".replace(".", ",") + f" {sign}"


def _euros(payment: Payment) -> str:
    return euros(payment.amount_cents, payment.currency)


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


def paid(reference: str, payment: Payment, *, kassenzeichen: bool = True) -> Response:
    """The fee is paid (now or before); the Kassenzeichen only to a holder of the link's token."""
    return _page("paid", reference=reference, payment=payment, kassenzeichen=kassenzeichen)


def pay_form(reference: str, payment: Payment, token: str, csrf: str) -> Response:
    """The pay page: amount, purpose and the "Jetzt bezahlen" button (a POST, never a GET)."""
    return _page("pay", reference=reference, payment=payment, token=token, csrf=csrf)


def withdrawn(reference: str, paid: bool) -> Response:
    """The case was withdrawn: nothing (more) to pay."""
    return _page("withdrawn", reference=reference, paid=paid)


def old_link() -> Response:
    """A link without a token (the format before issue 18): where the new one is.

    404 for every reference, known or not: the address alone must reveal nothing, and a link
    scanner or a chat preview learns that there is nothing to follow.
    """
    return _page("old_link", status=404)


def bad_link(outcome: str) -> Response:
    """A token that is not ours (403) or has run out (410)."""
    if outcome == "expired":
        return _page("expired_link", status=410)
    return _page("invalid_link", status=403)


def form_refused() -> Response:
    """The pay form came without its double-submit token (or another browser's): 403."""
    return _page("form_refused", status=403)


def not_completed(reference: str, payment: Payment, pay_link: str | None) -> Response:
    """The attempt failed, was cancelled or ran out: the link starts a new one."""
    return _page("not_completed", reference=reference, payment=payment, pay_link=pay_link)


def pending(reference: str, payment: Payment, pay_link: str | None) -> Response:
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


def unknown() -> Response:
    """No fee is due under this link."""
    return _page("unknown", status=404)


def wrong_address(status: int, allow: str | None) -> Response:
    """A path or method under /pay/ that no pay link has (404, 405): a German page, not JSON."""
    return _page("unknown", status=status, headers={"Allow": allow} if allow else None)


def is_citizen_path(path: str) -> bool:
    """Whether `path` is one of the citizen's pay pages (their errors are German HTML pages)."""
    return path.startswith("/pay/")


def too_large() -> Response:
    """A pay form far larger than the button sends (no browser does this)."""
    return _page("too_large", status=413)


def too_many(retry_after_s: int) -> Response:
    """Too many requests from one address."""
    return _page("too_many", status=429, headers={"Retry-After": str(retry_after_s)})
