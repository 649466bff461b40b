"""The German pages a citizen sees around paying: paid, not yet, provider down, unknown link.

References are guessable, so these pages show only the reference, the amount and the purpose:
never a name, an address or anything else from the application.
"""

from __future__ import annotations

import html

from flask import Response

from domain.payments.payments import to_euros
from store.models import Payment


def _euros(payment: Payment) -> str:
    return f"{to_euros(payment.amount_cents)}".replace(".", ",") + f" {payment.currency}"


def page(
    title: str, paragraphs: list[str], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A small German HTML page (texts are escaped here; links are passed as (text, url))."""
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    document = f"""<!doctype html>
<html lang="de">
<head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 2em auto; line-height: 1.5">
<h1>{html.escape(title)}</h1>
{body}
</body>
</html>
"""
    response = Response(document, status=status, mimetype="text/html", headers=headers)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _facts(reference: str, payment: Payment) -> str:
    return (
        f'Aktenzeichen: <strong id="reference">{html.escape(reference)}</strong><br>'
        f'Betrag: <span id="amount">{html.escape(_euros(payment))}</span><br>'
        f"Verwendungszweck: {html.escape(payment.purpose)}"
    )


def paid(reference: str, payment: Payment) -> Response:
    """The fee is paid (now or before)."""
    kassenzeichen = (
        f"<br>Kassenzeichen: {html.escape(payment.transaction_reference)}"
        if payment.transaction_reference
        else ""
    )
    return page(
        "Die Gebühr ist bezahlt",
        [
            _facts(reference, payment) + kassenzeichen,
            "Vielen Dank. Ihre Zahlung ist eingegangen; Ihr Antrag wird jetzt bearbeitet. "
            "Sie müssen nichts weiter tun.",
        ],
    )


def not_completed(reference: str, payment: Payment, pay_link: str) -> Response:
    """The attempt failed, was cancelled or ran out: the link starts a new one."""
    return page(
        "Die Zahlung wurde nicht abgeschlossen",
        [
            _facts(reference, payment),
            "Es wurde nichts abgebucht. Ihr Antrag bleibt gespeichert; er wird bearbeitet, "
            "sobald die Gebühr bezahlt ist.",
            f'<a id="pay" href="{html.escape(pay_link, quote=True)}">Erneut bezahlen</a>',
        ],
    )


def pending(reference: str, payment: Payment, pay_link: str) -> Response:
    """The provider has not confirmed the payment yet."""
    return page(
        "Ihre Zahlung wird geprüft",
        [
            _facts(reference, payment),
            "Der Zahlungsanbieter hat die Zahlung noch nicht bestätigt. Das kann einige "
            "Minuten dauern; wir prüfen es selbstständig. Ihr Antrag ist sicher gespeichert.",
            f'Falls Sie die Zahlung nicht abgeschlossen haben: <a id="pay" '
            f'href="{html.escape(pay_link, quote=True)}">zur Bezahlung</a>',
        ],
    )


def unavailable(reference: str, payment: Payment | None, retry_after_s: int) -> Response:
    """The provider cannot be reached: the case is safe, try again in a few minutes."""
    facts = [_facts(reference, payment)] if payment is not None else []
    return page(
        "Die Bezahlung ist gerade nicht möglich",
        [
            *facts,
            "Der Zahlungsanbieter ist im Moment nicht erreichbar. Ihr Antrag ist sicher "
            "gespeichert und geht nicht verloren.",
            "Bitte versuchen Sie es in einigen Minuten noch einmal über denselben Link; "
            "er bleibt gültig.",
        ],
        status=503,
        headers={"Retry-After": str(retry_after_s)},
    )


def unknown() -> Response:
    """No fee is due under this link."""
    return page(
        "Keine Zahlung gefunden",
        [
            "Unter diesem Link ist keine Gebühr zu bezahlen. Bitte prüfen Sie das Aktenzeichen "
            "in Ihrer Eingangsbestätigung."
        ],
        status=404,
    )


def too_many(retry_after_s: int) -> Response:
    """Too many requests from one address."""
    return page(
        "Zu viele Anfragen",
        ["Bitte warten Sie einen Moment und versuchen Sie es dann erneut."],
        status=429,
        headers={"Retry-After": str(retry_after_s)},
    )
