"""The simulator's pay page: German, a plain labelled HTML form, works without JavaScript."""

from __future__ import annotations

import html
from decimal import Decimal

from demo_payments.ledger import Txn

#: Payment methods offered on the page: (value sent, label shown).
XBEZAHLDIENSTE_METHODS = [
    ("GIROPAY", "giropay"),
    ("CREDITCARD", "Kreditkarte"),
    ("PAYPAL", "PayPal"),
    ("PAYDIRECT", "paydirekt"),
]
PMPAYMENT_METHODS = [
    ("giropay", "giropay"),
    ("creditcard", "Kreditkarte"),
    ("paypal", "PayPal"),
    ("sepa", "SEPA-Lastschrift"),
]
STATUS_DE = {
    "INITIAL": "offen",
    "PAYED": "bezahlt",
    "BOOKED": "bezahlt",
    "FAILED": "fehlgeschlagen (Zeit abgelaufen)",
    "CANCELED": "abgebrochen",
}

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 36rem; padding: 0 1rem;
       color: #1b1b1b; }
h1 { font-size: 1.5rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .4rem 1rem; }
dt { font-weight: 600; }
fieldset { border: 1px solid #888; margin: 1rem 0; padding: .5rem 1rem; }
label { display: block; padding: .2rem 0; }
button { font-size: 1rem; padding: .5rem 1.2rem; margin-right: .8rem; }
.hint { color: #444; font-size: .9rem; }
"""


def euros(amount: Decimal) -> str:
    """German money: 35,00 EUR, 1.234,50 EUR."""
    text = f"{amount.quantize(Decimal('0.01')):,.2f}"
    return text.replace(",", "X").replace(".", ",").replace("X", ".") + " EUR"


def _page(title: str, body: str) -> str:
    return f"""<!doctype html>
<html lang="de">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} – Demo-Bezahldienst</title>
<style>{_STYLE}</style>
</head>
<body>
<main>
{body}
</main>
</body>
</html>
"""


def pay_page(txn: Txn, action: str, methods: list[tuple[str, str]]) -> str:
    """The page asking the citizen to pay `txn`: amount, purpose, a method, two buttons."""
    details = (
        "<dl>\n"
        f"<dt>Verwendungszweck</dt><dd>{html.escape(txn.purpose)}</dd>\n"
        f"<dt>Betrag</dt><dd>{euros(txn.amount)}</dd>\n"
        + (
            f"<dt>Beschreibung</dt><dd>{html.escape(txn.description)}</dd>\n"
            if txn.description
            else ""
        )
        + "</dl>\n"
    )
    if txn.status != "INITIAL":
        body = (
            "<h1>Zahlung bereits abgeschlossen</h1>\n"
            + details
            + f"<p>Status: {html.escape(STATUS_DE.get(txn.status, txn.status))}.</p>\n"
            + f'<p><a href="{html.escape(txn.redirect_url)}">Zurück zum Antrag</a></p>\n'
        )
        return _page("Zahlung abgeschlossen", body)
    options = "\n".join(
        f'<label><input type="radio" name="method" value="{html.escape(value)}"'
        f"{' checked' if i == 0 else ''}> {html.escape(label)}</label>"
        for i, (value, label) in enumerate(methods)
    )
    body = (
        "<h1>Gebühr bezahlen</h1>\n"
        '<p class="hint">Demo-Bezahldienst (Simulator): Es wird kein echtes Geld bewegt.</p>\n'
        + details
        + f'<form method="post" action="{html.escape(action)}">\n'
        + f"<fieldset>\n<legend>Zahlart</legend>\n{options}\n</fieldset>\n"
        + '<button type="submit" name="action" value="pay">Bezahlen</button>\n'
        + '<button type="submit" name="action" value="cancel">Abbrechen</button>\n'
        + "</form>\n"
    )
    return _page("Bezahlen", body)


def message_page(title: str, text: str) -> str:
    """A short German page for errors (unknown transaction, provider down)."""
    return _page(title, f"<h1>{html.escape(title)}</h1>\n<p>{html.escape(text)}</p>\n")
