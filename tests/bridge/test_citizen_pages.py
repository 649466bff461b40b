"""The citizen's HTML pages escape every value they show: markup in data stays text."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask, Response

from bridge.intake.webhooks import confirmation_page
from bridge.payments import pages
from store.models import Payment

HOSTILE = "<script>alert(\"x\")</script> & 'y'"
ESCAPED = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#39;y&#39;"
LINK = 'https://bridge.example/pay/"><script>x()</script>&a=1'
ESCAPED_LINK = "https://bridge.example/pay/&#34;&gt;&lt;script&gt;x()&lt;/script&gt;&amp;a=1"


def _payment() -> Payment:
    return Payment(
        amount_cents=3500, currency="EUR", purpose=HOSTILE, transaction_reference=HOSTILE
    )


#: Each page that shows data, with how many hostile values it shows and whether it links.
PAGES: list[tuple[str, Callable[[], Response], int, bool]] = [
    ("paid", lambda: pages.paid(HOSTILE, _payment()), 3, False),
    ("not-completed", lambda: pages.not_completed(HOSTILE, _payment(), LINK), 2, True),
    ("pending", lambda: pages.pending(HOSTILE, _payment(), LINK), 2, True),
    ("unavailable", lambda: pages.unavailable(HOSTILE, _payment(), 120), 2, False),
    # Title and facts name the reference; purpose, token and CSRF value once each.
    ("pay", lambda: pages.pay_form(HOSTILE, _payment(), HOSTILE, HOSTILE), 5, False),
    ("withdrawn", lambda: pages.withdrawn(HOSTILE, paid=True), 1, False),
]


@pytest.mark.parametrize(
    ("render", "shown", "links"), [p[1:] for p in PAGES], ids=[p[0] for p in PAGES]
)
def test_payment_pages_escape_reference_purpose_and_link(
    app: Flask, render: Callable[[], Response], shown: int, links: bool
) -> None:
    """Reference, purpose, Kassenzeichen and pay link come out as text, never as markup."""
    with app.test_request_context("/pay/x"):
        response = render()
    page = response.get_data(as_text=True)
    assert "<script>" not in page
    assert page.count(ESCAPED) == shown
    assert (f'<a id="pay" href="{ESCAPED_LINK}">' in page) == links
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("paid", [False, True], ids=["due", "paid"])
def test_confirmation_page_escapes_title_reference_amount_and_link(app: Flask, paid: bool) -> None:
    """The 202 page shows the service title, the reference and the fee as text."""
    payment = {
        "amount": "35.00",
        "currency": "<b>EUR</b>",
        "paid": paid,
        "before_delivery": True,
        "url": LINK,
    }
    with app.test_request_context("/webhooks/formcycle/x"):
        page = confirmation_page(HOSTILE, HOSTILE, payment)
    assert "<script>" not in page
    assert "<b>" not in page
    assert f"<title>Antrag eingegangen – {ESCAPED}</title>" in page
    assert f"Ihr Antrag „{ESCAPED}“ wurde sicher gespeichert" in page
    assert f'<strong id="reference">{ESCAPED}</strong>' in page
    assert "35,00 &lt;b&gt;EUR&lt;/b&gt;" in page
    assert (f'<a id="pay" href="{ESCAPED_LINK}">' in page) == (not paid)
