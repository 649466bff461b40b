"""What the provider plugins share: the options base, secrets, HTTP error mapping, sanitisers."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
from marshmallow import RAISE, Schema

from integrations.channels.base import status_text
from integrations.payment_providers.base import (
    ProviderConfigError,
    ProviderRefused,
    ProviderUnavailable,
    UnknownTransaction,
)

#: The functional codes of XBezahldienste problem answers. A provider's other text is never
#: copied into our messages (it could echo input), only one of these codes.
FUNCTIONAL_CODES = frozenset(
    {
        "NO_VALID_ORIGINATOR_OR_ENDPOINT",
        "NO_VALID_ORIGINATOR_OR_DESTINATION",
        "PAYMENT_EXISTS",
        "CALCULATION_ERROR",
        "BOOKING_DATA_MISSING",
        "VALIDATION_ERROR",
        "UNSPECIFIED",
        "FORBIDDEN",
    }
)

#: Umlauts and sharp s spelled out, so "Gebühr" keeps its meaning in an ASCII-only field.
_SPELLED = str.maketrans(
    {"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"}
)


class ProviderOptions(Schema):
    """Base of every provider's options schema: unknown options are errors, not ignored."""

    class Meta:
        """Refuse option keys the plugin does not know (typos would otherwise go unnoticed)."""

        unknown = RAISE


def secret(
    provider_id: str, options: Mapping[str, Any], secrets: Mapping[str, str], option: str
) -> str | None:
    """The secret the `*_env` option `option` names; None when the option is not set.

    A set option whose variable is missing raises ProviderConfigError (retrying will not help).
    """
    env_name = options.get(option)
    if not env_name:
        return None
    value = secrets.get(str(env_name))
    if not value:
        raise ProviderConfigError(
            f"Konfigurationsfehler beim Zahlungsanbieter {provider_id}: "
            f"Das Geheimnis {env_name} ({option}) ist nicht gesetzt."
        )
    return value


def send(
    http: requests.Session,
    method: str,
    url: str,
    *,
    what: str,
    timeout: float,
    not_found_is_unknown: bool = False,
    **kwargs: Any,
) -> requests.Response:
    """Send one request and map failures to the provider errors; returns a 2xx response.

    Network errors, timeouts, 5xx and 429 are ProviderUnavailable (try later); 404 is
    UnknownTransaction when asked (status calls), other 4xx ProviderRefused with the
    functional code of a problem answer. Messages name `what` and the status, never a body.
    """
    try:
        response = http.request(method, url, timeout=timeout, allow_redirects=False, **kwargs)
    except requests.Timeout:
        raise ProviderUnavailable(f"{what}: Zeitüberschreitung") from None
    except requests.exceptions.SSLError:
        # Usually configuration (certificate, CA), sometimes a provider's transient fault:
        # retried like an outage, but named so an operator looks at the certificates.
        raise ProviderUnavailable(f"{what}: TLS-Fehler (Zertifikate prüfen)") from None
    except requests.ConnectionError:
        raise ProviderUnavailable(f"{what}: keine Verbindung") from None
    except requests.RequestException:
        raise ProviderUnavailable(f"{what}: Anfrage fehlgeschlagen") from None
    code = response.status_code
    if 200 <= code < 300:
        return response
    message = f"{what}: {status_text(code)}"
    if code >= 500 or code in (408, 429):
        raise ProviderUnavailable(message, status_code=code)
    functional = functional_code(response)
    if code == 404 and not_found_is_unknown:
        raise UnknownTransaction(message, status_code=code, code=functional)
    if functional is not None:
        message += f" ({functional})"
    raise ProviderRefused(message, status_code=code, code=functional)


def functional_code(response: requests.Response) -> str | None:
    """The XBezahldienste `functionalCode` of a problem answer, when it is a known one."""
    try:
        body = json.loads(response.content[:65536])
    except (ValueError, UnicodeDecodeError):
        return None
    code = body.get("functionalCode") if isinstance(body, dict) else None
    return code if isinstance(code, str) and code in FUNCTIONAL_CODES else None


def json_body(response: requests.Response, what: str) -> dict[str, Any]:
    """The JSON object of a 2xx answer (decimals kept exact); ProviderUnavailable if it is none.

    An unreadable success answer is treated as a provider fault worth retrying, not as a
    refusal: the transaction may well exist, and the next call (idempotent) will tell.
    """
    try:
        body = json.loads(response.content, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise ProviderUnavailable(
            f"{what}: unlesbare Antwort", status_code=response.status_code
        ) from None
    if not isinstance(body, dict):
        raise ProviderUnavailable(f"{what}: unlesbare Antwort", status_code=response.status_code)
    return body


def text_or_none(value: Any, limit: int = 250) -> str | None:
    """A provider's string field, or None when absent, empty or not a string (cut to `limit`)."""
    if not isinstance(value, str) or not value:
        return None
    return value[:limit]


#: A provider's transaction id: kept whole (never cut: a cut id finds nothing later).
TRANSACTION_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


def transaction_id_or_none(value: Any) -> str | None:
    """A provider's transaction id when it is a plain id of at most 128 characters, else None."""
    return value if isinstance(value, str) and TRANSACTION_ID.fullmatch(value) else None


def pay_url_or_none(value: Any) -> str | None:
    """A pay page URL the citizen may be sent to: http(s) only, <= 2082, no whitespace."""
    if not isinstance(value, str) or len(value) > 2082:
        return None
    if not re.fullmatch(r"https?://[^\s]+", value, flags=re.IGNORECASE):
        return None
    return value


def decimal_or_none(value: Any) -> Decimal | None:
    """A provider's amount as a Decimal, or None when it is absent or no number."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def ascii_field(text: str, allowed: str, limit: int) -> str:
    """`text` with umlauts spelled out, accents dropped, other characters outside `allowed`
    (a regex character class body) removed, whitespace collapsed, cut to `limit`."""
    spelled = unicodedata.normalize("NFKD", text.translate(_SPELLED))
    kept = re.sub(f"[^{allowed}]", "", "".join(c for c in spelled if not unicodedata.combining(c)))
    return " ".join(kept.split())[:limit].strip()


#: XBezahldienste `requestId`: <= 36 characters of `^[\w\d-]+$` (ASCII: the standard's JSON
#: Schema regex knows only ASCII word characters).
REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}\Z")
#: XBezahldienste `purpose`: <= 27 characters of `^[\w\d\s-]+$`.
PURPOSE = re.compile(r"^[A-Za-z0-9_\s-]{1,27}\Z")
#: XBezahldienste `description`: <= 250 characters of `^[\w\d\s-,\.\u00C0-\u017F]+$`.
DESCRIPTION = re.compile(r"^[A-Za-z0-9_\s,.\u00C0-\u017F-]{1,250}\Z")


def sanitize_request_id(text: str) -> str:
    """Our payment id as an XBezahldienste `requestId` (<= 36 of [A-Za-z0-9_-]).

    Our ids are 32 hex digits and pass unchanged; anything else is cleaned, and an id with
    nothing left is refused (a made-up id would break the provider's dedupe).
    """
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "", text)[:36]
    if not cleaned:
        raise ValueError("payment id has no character allowed in a requestId")
    return cleaned


def sanitize_purpose(text: str, fallback: str = "Gebuehr") -> str:
    """A `purpose` (Verwendungszweck) matching the standard: <= 27 of letters, digits, _ - space.

    "NA-2026-000123 Halteverbot / Umzug" becomes "NA-2026-000123 Halteverbot"; umlauts are
    spelled out (the cash office reads the purpose on bank statements, where they break).
    """
    cleaned = ascii_field(text, r"A-Za-z0-9_\s-", 27)
    return cleaned or fallback


def sanitize_description(text: str, fallback: str) -> str:
    """A `description` matching the standard: <= 250 of letters (Latin-1/Extended-A kept),
    digits, space, _ - , ."""
    spelled = unicodedata.normalize("NFC", text)
    kept = re.sub(r"[^A-Za-z0-9_\s,.\u00C0-\u017F-]", "", spelled)
    cleaned = " ".join(kept.split())[:250].strip()
    return cleaned or sanitize_purpose(fallback)
