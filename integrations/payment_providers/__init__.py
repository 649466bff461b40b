"""E-Payment provider plugins; importing this package registers the built-in providers.

The plugin modules are imported here on purpose (explicit plugin loading, as for channels):
which town pays through which provider is configuration, which providers exist is code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from integrations.channels.base import load_options
from integrations.payment_providers import pmpayment, xbezahldienste
from integrations.payment_providers.base import (
    PAID_STATES,
    BadCallback,
    CallbackClaim,
    PaymentOrder,
    PaymentProvider,
    ProviderConfigError,
    ProviderError,
    ProviderRefused,
    ProviderState,
    ProviderStatus,
    ProviderUnavailable,
    Transaction,
    UnknownTransaction,
    providers,
)

__all__ = [
    "PAID_STATES",
    "BadCallback",
    "CallbackClaim",
    "PaymentOrder",
    "PaymentProvider",
    "ProviderConfigError",
    "ProviderError",
    "ProviderRefused",
    "ProviderState",
    "ProviderStatus",
    "ProviderUnavailable",
    "Transaction",
    "UnknownTransaction",
    "build_provider",
    "pmpayment",
    "providers",
    "secret_names",
    "validate_provider_options",
    "xbezahldienste",
]


def validate_provider_options(
    plugin: str, options: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """Load a provider's options with its plugin's schema.

    Returns the loaded options (defaults filled in) and every problem as a "dotted.path:
    message" line; the options are only usable when the problem list is empty. An unknown
    plugin is one problem line naming the known ones.
    """
    provider = providers.get(plugin)
    if provider is None:
        known = ", ".join(sorted(providers)) or "none"
        return {}, [f"plugin: unknown payment provider plugin {plugin!r} (known: {known})"]
    return load_options(provider.options_schema, options)


def secret_names(plugin: str, options: Mapping[str, Any]) -> set[str]:
    """The environment variables the options name in their `*_env` keys (for the config check)."""
    if providers.get(plugin) is None:
        return set()
    return {
        value
        for key, value in options.items()
        if key.endswith("_env") and isinstance(value, str) and value
    }


def build_provider(
    provider_id: str,
    plugin: str,
    options: Mapping[str, Any],
    secrets: Mapping[str, str],
    session: requests.Session | None = None,
) -> PaymentProvider:
    """The configured provider `provider_id`, its options validated again.

    `secrets` maps environment variable names to values (as `Settings.secrets`). Invalid
    options or an unknown plugin raise ProviderConfigError naming the option keys only; a
    missing secret is only noticed when a call needs it (also ProviderConfigError).
    """
    loaded, problems = validate_provider_options(plugin, options)
    if problems:
        raise ProviderConfigError(
            f"Konfigurationsfehler beim Zahlungsanbieter {provider_id}: " + "; ".join(problems)
        )
    return providers[plugin](provider_id, loaded, secrets, session)
