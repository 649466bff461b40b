"""An office's delivery error in plain German words, for clerks; the stored text stays one click away.

A delivery stores its last error as the channel wrote it (``HTTP 500 Internal Server Error: ...``,
``Der Zustellpunkt ist nicht erreichbar (ConnectionError).``) and the HTTP status code apart.
Clerks read what happened, not the protocol: the page shows `explain(...)` and keeps the stored
text in a ``<details>`` element.
"""

from __future__ import annotations

import re

from domain.delivery.fit_connect import REJECTED

_SMTP = re.compile(r"\bSMTP (\d{3})\b")


def _http(code: int) -> str:
    """The sentence for an office's HTTP answer `code`."""
    if 300 <= code < 400:
        return (
            f"Die Stelle leitet an eine andere Adresse weiter (HTTP {code}); die Adresse der "
            "Stelle muss in der Konfiguration berichtigt werden."
        )
    if code in (401, 403):
        return f"Die Stelle hat die Anmeldung der Brücke abgelehnt (HTTP {code})."
    if code == 408:
        return f"Die Stelle hat die Anfrage wegen Zeitüberschreitung abgebrochen (HTTP {code})."
    if code == 429:
        return f"Die Stelle war überlastet und bat, später erneut zu senden (HTTP {code})."
    if 400 <= code < 500:
        return f"Die Stelle hat den Antrag abgelehnt (HTTP {code})."
    if 500 <= code < 600:
        return f"Die Stelle antwortete mit einem Serverfehler (HTTP {code})."
    return f"Die Stelle gab eine unerwartete Antwort (HTTP {code})."


def _smtp(code: int) -> str:
    if 400 <= code < 500:
        return (
            f"Der Mailserver der Stelle hat die Nachricht vorübergehend abgewiesen (SMTP {code})."
        )
    return f"Der Mailserver der Stelle hat die Nachricht abgelehnt (SMTP {code})."


# Words of the stored text that say what happened when no status code was stored.
_BY_TEXT = (
    (
        ("zeitüberschreitung", "timeout"),
        "Die Stelle hat nicht rechtzeitig geantwortet (Zeitüberschreitung).",
    ),
    (
        ("mailserver ist nicht erreichbar",),
        "Der Mailserver der Stelle war nicht erreichbar (keine Verbindung).",
    ),
    (
        ("nicht erreichbar", "connectionerror", "refused"),
        "Die Stelle war nicht erreichbar: die Verbindung wurde abgelehnt oder kam nicht zustande.",
    ),
    (
        ("starttls", "zertifikat", "tls"),
        "Die verschlüsselte Verbindung zur Stelle kam nicht zustande.",
    ),
    (
        ("adresse des zustellpunkts ist ungültig",),
        "Die Adresse der Stelle in der Konfiguration ist ungültig.",
    ),
    (
        ("konfigurationsfehler", "secret"),
        "Die Einstellungen der Stelle in der Brücke sind unvollständig oder fehlerhaft.",
    ),
    (("abgestürzt", "crash"), "Der Zustellauftrag brach unerwartet ab."),
)


def explain(error: str | None, status_code: int | None = None) -> str:
    """The error as a plain German sentence: what the office did, with the code in brackets."""
    if error and error.startswith(REJECTED):
        # A FIT-Connect destination's rejection is stored in plain German words already.
        return error
    if status_code is None and error:
        found = re.match(r"HTTP (\d{3})\b", error)
        status_code = int(found.group(1)) if found else None
    if status_code is not None and 100 <= status_code < 600:
        return _http(status_code)
    if not error:
        return "Die Zustellung ist fehlgeschlagen."
    smtp = _SMTP.search(error)
    if smtp:
        return _smtp(int(smtp.group(1)))
    lowered = error.lower()
    for words, sentence in _BY_TEXT:
        if any(w in lowered for w in words):
            return sentence
    return "Die Zustellung ist fehlgeschlagen."
