"""What clerks read on the admin page: German names for statuses, events and keys.

The page shows labels, never field keys or status codes; an unknown key is shown as it is,
so a status added later is still visible (just not translated yet).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

from schemas.options import LOCAL_TZ

SUBMISSION_STATUS = {
    "received": "Eingegangen",
    "routed": "In Zustellung",
    "delivered": "Zugestellt",
    "partially_delivered": "Teilweise zugestellt",
    "failed": "Fehlgeschlagen",
    "cancelled": "Abgebrochen",
    "held": "Wartet auf Zahlung",
    "awaiting_payment": "Wartet auf Zahlung",
}

DELIVERY_STATUS = {
    "pending": "Wartet auf Zustellung",
    "held": "Wartet auf Zahlung",
    "delivered": "Zugestellt",
    "failed": "Fehlgeschlagen",
    "cancelled": "Abgebrochen",
    "awaiting_accept": "Übergeben, wartet auf Annahme",
}

# XBezahldienste statuses and the bridge's own "due" before a payment exists.
PAYMENT_STATUS = {
    "due": "Fällig",
    "INITIAL": "Offen",
    "PAYED": "Bezahlt",
    "BOOKED": "Gebucht",
    "FAILED": "Fehlgeschlagen",
    "CANCELED": "Abgebrochen",
    "expired": "Abgelaufen",
    "abandoned": "Ersetzt (Antwort des Anbieters verloren)",
    "withdrawn": "Zurückgezogen",
}

# Every kind of event the bridge records, in German: a case's history (domain, worker,
# payments) and the activity list (who did what: replays, accounts, tokens, exports) read this
# one table. tests/bridge/admin/test_plain_german.py finds every kind the code records.
EVENT_KIND = {
    "submission.received": "Antrag eingegangen",
    "delivery.routed": "Zustellung an die zuständige Stelle angelegt",
    "delivery.delivered": "Bei der Stelle zugestellt",
    "delivery.submitted": "Über FIT-Connect eingereicht, wartet auf Annahme durch die Stelle",
    "fit_connect.event": "FIT-Connect meldet (Signatur geprüft)",
    "fit_connect.event_refused": "FIT-Connect-Meldung verworfen: nicht überprüfbar, nichts geändert",
    "delivery.failed": "Zustellung fehlgeschlagen, keine weiteren Versuche",
    "delivery.retry_scheduled": "Zustellung fehlgeschlagen, ein neuer Versuch ist geplant",
    "delivery.replayed": "Zustellung erneut gesendet",
    "delivery.cancelled": "Zustellung abgebrochen",
    "delivery.rerouted": "An eine andere Stelle umgeleitet",
    "delivery.released": "Zur Zustellung freigegeben",
    "attachment.fetched": "Anhang abgerufen",
    "delivery.job_crashed": "Zustellauftrag unerwartet abgebrochen",
    "queue.job_crashed": "Zustellauftrag unerwartet abgebrochen",
    "admin.bulk_replay.started": "Sammel-Wiederholung gestartet",
    "admin.bulk_replay.done": "Sammel-Wiederholung fertig",
    "admin.bulk_replay.cancelled": "Sammel-Wiederholung abgebrochen",
    "retention.purged": "Personenbezogene Daten nach Ablauf der Aufbewahrungsfrist gelöscht",
    "payment.attempt_started": "Bezahlvorgang begonnen",
    "payment.created": "Zahlung beim Bezahldienst angelegt",
    "payment.provider_error": "Der Bezahldienst hat mit einem Fehler geantwortet",
    "payment.expired": "Zahlung nicht rechtzeitig abgeschlossen, Frist abgelaufen",
    "payment.paid": "Zahlung eingegangen",
    "payment.failed": "Zahlung fehlgeschlagen",
    "payment.canceled": "Zahlung abgebrochen",
    "payment.status": "Zahlungsstatus geändert",
    "payment.abandoned": "Zahlungsversuch ersetzt (Antwort des Anbieters verloren)",
    "payment.withdrawn": "Zahlung zurückgezogen (Antrag abgebrochen)",
    "payment.amount_mismatch": "Betrag oder Währung stimmt nicht (nicht bezahlt)",
    "payment.refund_due": "Zahlung ohne offenen Antrag: Erstattung prüfen",
    "account.login": "Angemeldet",
    "account.login_failed": "Anmeldung fehlgeschlagen",
    "account.created": "Konto angelegt",
    "account.password_link_created": "Link zum Setzen des Passworts erstellt",
    "account.password_set": "Passwort neu gesetzt",
    "account.role_set": "Rolle geändert",
    "account.offices_set": "Stellen des Kontos geändert",
    "account.unlocked": "Konto entsperrt",
    "account.deactivated": "Konto deaktiviert",
    "account.reactivated": "Konto wieder aktiviert",
    "token.created": "API-Schlüssel angelegt",
    "token.imported": "API-Schlüssel übernommen",
    "token.revoked": "API-Schlüssel widerrufen",
    "admin.exported": "Liste als CSV-Datei heruntergeladen",
}

# The payment callback journal: who called (a provider's notification, the citizen's return)
# and what the bridge made of it (`verdict`, bridge/payments/routes.py).
JOURNAL_KIND = {
    "notify": "Nachricht des Bezahldienstes",
    "return": "Rückkehr vom Bezahldienst",
}

JOURNAL_VERDICT = {
    "received": "Eingegangen, nicht abgeschlossen",
    "applied": "Übernommen",
    "open": "Noch offen",
    "duplicate": "Schon bekannt",
    "final": "Schon abgeschlossen, ignoriert",
    "amount_mismatch": "Betrag weicht ab, abgelehnt",
    "unknown": "Status unbekannt",
    "not_confirmable": "Nicht bestätigt (Bezahldienst nicht erreichbar)",
    "not_confirmed": "Vom Bezahldienst nicht bestätigt, abgelehnt",
    "rate_limited": "Zu viele Nachrichten, abgelehnt",
    "too_large": "Zu groß, abgelehnt",
    "unknown_provider": "Unbekannter Bezahldienst, abgelehnt",
    "unreadable": "Nicht lesbar, abgelehnt",
    "provider_unconfigured": "Bezahldienst nicht nutzbar, abgelehnt",
    "unknown_payment": "Unbekannte Zahlung, abgelehnt",
    "transaction_mismatch": "Transaktion passt nicht, abgelehnt",
}

# Payment methods as providers name them (XBezahldienste in capitals, pmPayment in lower case).
PAYMENT_METHOD = {
    "GIROPAY": "giropay",
    "PAYDIRECT": "paydirekt",
    "PAYDIREKT": "paydirekt",
    "CREDITCARD": "Kreditkarte",
    "CREDIT_CARD": "Kreditkarte",
    "PAYPAL": "PayPal",
    "SEPA": "Lastschrift",
    "DIRECTDEBIT": "Lastschrift",
    "DIRECT_DEBIT": "Lastschrift",
    "LASTSCHRIFT": "Lastschrift",
    "INVOICE": "Rechnung",
    "PREPAYMENT": "Vorkasse",
    "OTHER": "Andere Zahlart",
    "UNSPECIFIED": "Nicht angegeben",
}

BULK_STATUS = {
    "running": "Läuft",
    "done": "Fertig",
    "cancelled": "Abgebrochen",
}

# Task areas of the routing configuration (`task_area` of offices and services).
TASK_AREA = {
    "tax": "Steuern",
    "public-order": "Öffentliche Ordnung",
    "treasury": "Stadtkasse",
    "registry": "Standesamt",
}

ROLE = {"viewer": "Lesen", "operator": "Bedienen", "admin": "Verwalten"}


def label(table: dict[str, str], key: str | None) -> str:
    """The German label of `key` in `table`, or the key itself when it has none."""
    if key is None:
        return "–"
    return table.get(key, key)


# The events of a FIT-Connect case's log (the last part of the event's URI), in German.
FIT_CONNECT_EVENT = {
    "create-submission": "Einreichung angelegt",
    "submit-submission": "Einreichung vollständig übermittelt",
    "notify-submission": "Einreichung vom Zustelldienst gemeldet",
    "forward-submission": "Einreichung weitergeleitet",
    "accept-submission": "Von der Stelle angenommen",
    "reject-submission": "Von der Stelle abgelehnt",
    "delete-submission": "Einreichung vom Zustelldienst gelöscht",
}


def fit_connect_event(name: str | None) -> str:
    """An event of a FIT-Connect case's log in German; an unknown one is not shown by its key."""
    return FIT_CONNECT_EVENT.get(name or "", "Unbekannte Meldung")


def event_sentence(kind: str) -> str:
    """A history event as a German sentence; an event without one is not shown by its key."""
    return EVENT_KIND.get(kind, "Sonstiges Ereignis")


def payment_method(method: str | None) -> str:
    """A payment method in German (``GIROPAY`` -> ``giropay``); unknown ones as given."""
    if not method:
        return "Nicht angegeben"
    return PAYMENT_METHOD.get(method.strip().upper().replace("-", "_"), method)


def money(amount: str | Decimal | None, currency: str | None = "EUR") -> str:
    """An amount as clerks write it: ``35,00 €``, ``1.234,50 €`` (other currencies by code)."""
    if amount is None or amount == "":
        return "–"
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"))
    except InvalidOperation:
        return str(amount)
    text = f"{value:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".")
    return f"{text} €" if (currency or "EUR") == "EUR" else f"{text} {currency}"


def plural(count: int, one: str, many: str) -> str:
    """``1 Minute``, ``2 Minuten``: the count with the noun in the right number."""
    return f"{count} {one if count == 1 else many}"


def clock(value: dt.datetime | None) -> str:
    """The time of day in Europe/Berlin, ``08:12``."""
    if value is None:
        return "–"
    return value.astimezone(LOCAL_TZ).strftime("%H:%M")


def local_time(value: dt.datetime | None) -> str:
    """A timestamp as clerks in Hesse read it: ``01.12.2026, 09:14`` in Europe/Berlin."""
    if value is None:
        return "–"
    return value.astimezone(LOCAL_TZ).strftime("%d.%m.%Y, %H:%M")


def local_day(value: dt.date) -> str:
    """A day as ``01.12.``."""
    return value.strftime("%d.%m.")
