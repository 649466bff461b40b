"""Every secret the settings and a routing file name, and which of them the bridge makes itself.

The bridge makes the secrets it holds alone or hands to the other side: the encryption keys,
a sender's shared secret, Standard Webhooks signing secrets (`whsec_`), an inbox's token. A
credential another party issues (a payment provider's password, client secret or salt, an
SMTP login) cannot be made up: a random value would pass `check-config` and fail at the first
payment or mail, so such a name is only listed for the operator to fill in.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from domain.config import Config
from infra.crypto import generate_key
from infra.standard_webhooks import PREFIX


class Kind(StrEnum):
    """What a secret's value is, and so how a fresh one is made (or that none can be)."""

    FERNET = "Fernet key"
    SIGNING = "Standard Webhooks signing secret"
    SHARED = "shared secret"
    ISSUED = "credential issued by the other side"


# The settings' own secrets (domain/settings.py); tests/test_secrets_command.py checks that
# every setting whose name says secret, key, password or token is either here or in
# NOT_MADE_SETTINGS, so a new one is not forgotten.
SETTINGS_SECRETS: Mapping[str, Kind] = {
    "BRIDGE_ENCRYPTION_KEYS": Kind.FERNET,
    # Chosen here and given to Prometheus, so the scrape can pass the public proxy's side.
    "BRIDGE_METRICS_TOKEN": Kind.SHARED,
}
# Secret-looking settings the command leaves alone, each with the reason.
NOT_MADE_SETTINGS: Mapping[str, str] = {
    "BRIDGE_API_TOKENS": "retired: tokens live in the database (tokens import-env moves them)",
    "BRIDGE_SMTP_PASSWORD": "issued by the town's mail server, like BRIDGE_SMTP_USER",
    "BRIDGE_FIT_CONNECT_CALLBACK_SECRET": "optional; setting it opens POST /callbacks/fit-connect,"
    " so it is chosen when the callback is registered in FIT-Connect's portal (docs/fit-connect.md)",
}
# Routing-file options (`*_env`) whose secret the bridge chooses and the other side is told.
# Every other `*_env` option names a credential the other side issues.
MADE_HERE: Mapping[str, Kind] = {
    "secret_env": Kind.SHARED,  # senders: the shared-secret header Formcycle sends
    "signing_secret_env": Kind.SIGNING,  # senders and webhook offices: Standard Webhooks
    "token_env": Kind.SHARED,  # inbox offices: the token the office fetches with
}
# When one variable is named in several places with different kinds, the stricter wins: an
# issued credential cannot be made; a whsec_ secret also serves as a shared secret.
_PRECEDENCE = (Kind.ISSUED, Kind.FERNET, Kind.SIGNING, Kind.SHARED)


@dataclass(frozen=True)
class NeededSecret:
    """One environment variable holding a secret: its kind and where it is named."""

    name: str
    kind: Kind
    where: tuple[str, ...]

    @property
    def made_here(self) -> bool:
        """True when the bridge can make a fresh value (the other side is then told it)."""
        return self.kind is not Kind.ISSUED


def needed_secrets(config: Config) -> list[NeededSecret]:
    """The settings' secrets, then those of the routing file in its order, each once."""
    found: dict[str, tuple[list[Kind], list[str]]] = {}

    def note(name: str, kind: Kind, where: str) -> None:
        kinds, places = found.setdefault(name, ([], []))
        kinds.append(kind)
        places.append(where)

    for name, kind in SETTINGS_SECRETS.items():
        note(name, kind, "settings")
    for sender in config.senders.values():
        references = {
            "secret_env": sender.secret_env,
            "signing_secret_env": sender.signing_secret_env,
        }
        for key, named in references.items():
            if named:
                note(named, MADE_HERE[key], f"senders.{sender.id}.{key}")
    for office in config.offices.values():
        for key, name in _env_options(office.options):
            note(name, MADE_HERE.get(key, Kind.ISSUED), f"offices.{office.id}.options.{key}")
    for provider in config.payment_providers.values():
        for key, name in _env_options(provider.options):
            # A provider issues all its credentials (password, client secret, salt, key).
            note(name, Kind.ISSUED, f"payment_providers.{provider.id}.options.{key}")
    return [
        NeededSecret(name, min(kinds, key=_PRECEDENCE.index), tuple(places))
        for name, (kinds, places) in found.items()
    ]


def fresh_value(kind: Kind) -> str:
    """A new random value of this kind (256 bits); an issued credential has none."""
    if kind is Kind.FERNET:
        return generate_key()
    if kind is Kind.SIGNING:
        return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()
    if kind is Kind.SHARED:
        return secrets.token_urlsafe(32)
    raise ValueError(f"a {kind} is issued by the other side, not made here")


def _env_options(options: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    return ((k, v) for k, v in options.items() if k.endswith("_env") and isinstance(v, str) and v)
