"""What clerks read on the admin page: German names for statuses, events and keys.

The page shows labels, never field keys or status codes; an unknown key is shown as it is,
so a status added later is still visible (just not translated yet).
"""

from __future__ import annotations

import datetime as dt

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

EVENT_KIND = {
    "submission.received": "Antrag eingegangen",
    "delivery.routed": "Zustellung angelegt",
    "delivery.delivered": "Zugestellt",
    "delivery.failed": "Zustellung fehlgeschlagen",
    "delivery.retry_scheduled": "Neuer Versuch geplant",
    "delivery.replayed": "Erneut gesendet",
    "delivery.cancelled": "Zustellung abgebrochen",
    "delivery.rerouted": "An andere Stelle umgeleitet",
    "attachment.fetched": "Anhang abgerufen",
    "delivery.job_crashed": "Zustellauftrag abgestürzt",
    "queue.job_crashed": "Zustellauftrag abgestürzt",
    "admin.bulk_replay.started": "Sammel-Wiederholung gestartet",
    "admin.bulk_replay.done": "Sammel-Wiederholung fertig",
    "admin.bulk_replay.cancelled": "Sammel-Wiederholung abgebrochen",
    "retention.purged": "Personenbezogene Daten gelöscht (Aufbewahrungsfrist)",
    "payment.created": "Zahlung angelegt",
    "payment.status": "Zahlungsstatus geändert",
    "payment.abandoned": "Zahlungsversuch ersetzt (Antwort des Anbieters verloren)",
    "payment.attempt_started": "Neuer Zahlungsversuch",
    "payment.withdrawn": "Zahlung zurückgezogen (Antrag abgebrochen)",
    "payment.amount_mismatch": "Betrag oder Währung stimmt nicht (nicht bezahlt)",
    "payment.refund_due": "Zahlung ohne offenen Antrag: Erstattung prüfen",
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


def local_time(value: dt.datetime | None) -> str:
    """A timestamp as clerks in Hesse read it: ``01.12.2026, 09:14`` in Europe/Berlin."""
    if value is None:
        return "–"
    return value.astimezone(LOCAL_TZ).strftime("%d.%m.%Y, %H:%M")


def local_day(value: dt.date) -> str:
    """A day as ``01.12.``."""
    return value.strftime("%d.%m.")
