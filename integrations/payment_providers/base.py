"""What the bridge asks of an E-Payment provider: create a transaction, ask its status, read callbacks.

Every provider (XBezahldienste REST, legacy pmPayment paypage, ...) is a plugin registered in
`providers` under the id the routing file names in `payment_providers.<id>.plugin`. A plugin
validates its own options (`options_schema`); secrets are named by environment variable
(`*_env` options) and handed to the plugin as `secrets`.

Callbacks and returns are triggers, never truth: `parse_callback` / `parse_return` only say
which payment a call is about; the status that counts is the one `status()` fetches.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, Literal

import requests
from marshmallow import Schema

from integrations.registry import Registry

#: The statuses of XBezahldienste (v1.0.0); `BOOKED` (FIT-Connect metadata) means the same as
#: `PAYED`. Legacy providers map their own codes onto these.
ProviderState = Literal["INITIAL", "PAYED", "BOOKED", "FAILED", "CANCELED"]
PAID_STATES: frozenset[str] = frozenset({"PAYED", "BOOKED"})


@dataclass(frozen=True)
class PaymentOrder:
    """What one transaction asks the citizen to pay; the plugin sanitises fields to its rules."""

    payment_id: str  # our id (32 hex): the requestId / txid the provider dedupes on
    reference: str  # the submission's public reference, e.g. "NA-2026-000123"
    amount: Decimal  # in euros, two decimals
    currency: str  # "EUR"
    purpose: str  # e.g. "NA-2026-000123 Halteverbot" (plugin cuts to 27 chars and the pattern)
    description: str  # longer text (<= 250 after sanitising)
    municipality_ags: str  # the citizen's town (endPointId or pmPayment ags when not configured)
    return_url: str  # where the citizen's browser comes back to (GET)
    notify_url: str  # where the provider may POST a notification


@dataclass(frozen=True)
class Transaction:
    """The provider's answer to a create: its id, the pay page and what it already knows."""

    transaction_id: str
    pay_url: str | None  # the page the citizen is redirected to (only while INITIAL)
    transaction_reference: str | None  # Kassenzeichen, when the provider gives it at once
    status: ProviderState = "INITIAL"


@dataclass(frozen=True)
class ProviderStatus:
    """The provider's confirmed view of one transaction (from its status call)."""

    transaction_id: str
    status: ProviderState
    amount: Decimal | None  # what the provider says was (to be) paid, in euros, as reported
    transaction_reference: str | None = None  # Kassenzeichen
    method: str | None = None  # GIROPAY, PAYDIRECT, CREDITCARD, PAYPAL, OTHER, or legacy names
    at: dt.datetime | None = None  # aware UTC, the provider's timestamp of the status
    detail: str | None = None  # statusDetail, no personal data
    currency: str | None = None  # as reported (None: the protocol reports none)


@dataclass(frozen=True)
class CallbackClaim:
    """What an inbound notify or return claims; untrusted until `status()` confirms it."""

    payment_id: str | None  # ours, when the call carries it (query parameter or txid)
    transaction_id: str | None
    status: str | None  # as claimed, in the provider's own words
    amount: Decimal | None  # as claimed, in euros


class ProviderError(Exception):
    """A provider call failed; `message` is shown to operators and carries no personal data."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        """Describe the failure (status code and a fixed text, never a response body)."""
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class ProviderUnavailable(ProviderError):
    """Network error, timeout, 5xx or 429: try again later."""


class ProviderRefused(ProviderError):
    """The provider refused the request (4xx, e.g. VALIDATION_ERROR); retrying will not help.

    `code` is the functional code of the problem answer when there is one (PAYMENT_EXISTS, ...).
    """

    def __init__(
        self, message: str, *, status_code: int | None = None, code: str | None = None
    ) -> None:
        """Describe the refusal."""
        super().__init__(message, status_code=status_code)
        self.code = code


class UnknownTransaction(ProviderRefused):
    """The provider does not know the transaction (404 / P107)."""


class ProviderConfigError(ProviderRefused):
    """The provider's options are invalid or a secret they name is not set; fix the config."""

    def __init__(self, message: str) -> None:
        """Describe the configuration problem (option names and env var names only)."""
        super().__init__(message, code="CONFIG")


class BadCallback(Exception):
    """An inbound call that cannot be read or whose signature does not verify."""


class PaymentProvider(ABC):
    """A provider plugin, configured once per `payment_providers.<id>` entry of the routing file."""

    #: Validates the `options` table of the routing file (marshmallow, unknown keys refused).
    options_schema: ClassVar[type[Schema]]
    #: Whether `status()` finds a transaction by our payment id alone (pmPayment: our id is its
    #: txid). XBezahldienste asks by the provider's transaction id only.
    finds_by_payment_id: ClassVar[bool] = False

    def __init__(
        self,
        provider_id: str,
        options: Mapping[str, Any],
        secrets: Mapping[str, str],
        session: requests.Session | None = None,
    ) -> None:
        """Bind the plugin to its validated options, the secrets its `*_env` options name and
        an HTTP session; every plugin has a `base_url` and may set `timeout_s` (default 10)."""
        self.provider_id = provider_id
        self.options = options
        self.secrets = secrets
        self.http = session or requests.Session()
        self.base_url = str(options.get("base_url", "")).rstrip("/")
        self.timeout = float(options.get("timeout_s", 10.0))
        #: How messages for operators name the provider.
        self.what = f"Zahlungsanbieter {provider_id}"

    @abstractmethod
    def create(self, order: PaymentOrder) -> Transaction:
        """Create the transaction; the same `order.payment_id` twice never makes two."""

    @abstractmethod
    def status(
        self, payment_id: str, transaction_id: str | None, *, municipality_ags: str | None = None
    ) -> ProviderStatus:
        """Ask the provider for the transaction's status (by its id, or by ours where possible).

        `municipality_ags` is the order's town: XBezahldienste and pmPayment address the status
        call by the town (endPointId / ags) when the options do not fix one, so pass it.
        """

    @abstractmethod
    def parse_callback(
        self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str]
    ) -> CallbackClaim:
        """Read a provider's notification (POST /webhooks/payments/<provider>); BadCallback if not."""

    @abstractmethod
    def parse_return(self, query: Mapping[str, str]) -> CallbackClaim:
        """Read the citizen's return to us (a signed redirect for pmPayment); BadCallback if not."""


#: The process-wide provider registry; plugins register with `@providers.register("<id>")`.
providers: Registry[type[PaymentProvider]] = Registry()
