"""What the stand-in remembers: clients, tokens, destinations, submissions, event logs, faults.

One lock guards it all; the HTTP handlers and the test API both go through `State`.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from jwcrypto import jwk

from demo_fitconnect.crypto import CertificateAuthority, KeyPair

EVENT_PROBLEM_PREFIX = "https://schema.fitko.de/fit-connect/events/problems/"

# The receiver's problem catalogue (docs.fitko.de, receiving/verification): type suffix ->
# (title, the instance it usually names). A test may pick any of these for a forced reject.
PROBLEMS: dict[str, tuple[str, str]] = {
    "encryption-issue": ("Entschlüsselungs-Fehler", "metadata"),
    "syntax-violation": ("Syntax-Fehler", "metadata"),
    "schema-violation": ("Schema-Fehler", "metadata"),
    "unsupported-schema": ("Nicht unterstütztes Schema", "metadata"),
    "service-mismatch": ("Verwaltungsleistung stimmt nicht überein", "metadata"),
    "attachments-mismatch": ("Fehlerhafte Anlagen-Liste", "metadata"),
    "hash-mismatch": ("Prüfsumme stimmt nicht", "data"),
    "technical-error": ("Technischer Fehler", "submission"),
}


def problem(kind: str, detail: str, instance: str | None = None) -> dict[str, str]:
    """One entry of a reject event's `problems`, typed from the catalogue."""
    title, default_instance = PROBLEMS[kind]
    return {
        "type": EVENT_PROBLEM_PREFIX + kind,
        "title": title,
        "detail": detail,
        "instance": instance or default_instance,
    }


@dataclass
class Outage:
    """A fault that answers `status` to the next `remaining` requests (None: until lifted)."""

    active: bool = False
    remaining: int | None = None
    status: int = 503

    def take(self) -> bool:
        """Whether this request fails; counts it down."""
        if not self.active:
            return False
        if self.remaining is not None:
            self.remaining -= 1
            if self.remaining <= 0:
                self.active = False
        return True


@dataclass
class Token:
    """An issued access token."""

    client_id: str
    scope: str
    expires_at: float


@dataclass
class Destination:
    """A destination (Zustellpunkt) with its services, regions and key pairs."""

    destination_id: str
    name: str
    leika_keys: list[str]
    ars: list[str]
    schema_uris: list[str]
    encryption: KeyPair
    signing: KeyPair
    status: str = "active"
    # Private keys the destination still decrypts with, by kid (the current one included).
    decrypt_keys: dict[str, jwk.JWK] = field(default_factory=dict)
    # Public keys still served under /keys/{kid}: the current pair, the signing key, and
    # encryption keys rotated out but kept.
    published: dict[str, dict[str, Any]] = field(default_factory=dict)

    def schemas_for(self, leika: str) -> list[str]:
        """The data schemas the destination takes for one service.

        With as many schemas as LeiKa keys they pair up by position (one schema a service);
        otherwise every service takes every schema.
        """
        if len(self.schema_uris) == len(self.leika_keys) > 1:
            return [self.schema_uris[self.leika_keys.index(leika)]]
        return list(self.schema_uris)

    def document(self) -> dict[str, Any]:
        """The destination as GET /destinations/{id} answers it."""
        regions = [
            f"urn:de:bund:destatis:bevoelkerungsstatistik:schluessel:rs:{a}" for a in self.ars
        ]
        return {
            "destinationId": self.destination_id,
            "name": self.name,
            "status": self.status,
            "encryptionKid": self.encryption.kid,
            "metadataVersions": ["2.1.0"],
            "publicServices": [
                {
                    "name": self.name,
                    "identifier": f"urn:de:fim:leika:leistung:{key}",
                    "submissionSchemas": [
                        {"schemaUri": uri, "mimeType": "application/json"}
                        for uri in self.schemas_for(key)
                    ],
                    "regions": regions,
                }
                for key in self.leika_keys
            ],
        }


@dataclass
class Submission:
    """A submission from creation to the destination's decision."""

    submission_id: str
    case_id: str
    destination_id: str
    client_id: str
    announced: list[str]
    public_service: dict[str, Any]
    region: str | None
    attachments: dict[str, str] = field(default_factory=dict)
    encrypted_metadata: str | None = None
    encrypted_data: str | None = None
    status: str = "incomplete"


@dataclass
class Event:
    """One SET in a case's event log, with when it becomes visible (the lag fault)."""

    token: str
    visible_at: float = 0.0
    hidden_polls: int = 0


@dataclass
class Received:
    """What the simulated destination fetched and decrypted, and what it decided."""

    destination_id: str
    submission_id: str
    case_id: str
    metadata: dict[str, Any] | None
    data: bytes | None
    attachments: dict[str, bytes]
    hashes_ok: bool
    decision: str
    problems: list[dict[str, str]]
    kid: str = ""  # the encryption key the metadata was sealed for
    at: float = field(default_factory=time.time)  # when the destination decided

    def summary(self) -> dict[str, Any]:
        """As a plain dict (what `received()` lists)."""
        return {
            "destination_id": self.destination_id,
            "submission_id": self.submission_id,
            "case_id": self.case_id,
            "metadata": self.metadata,
            "data": self.data,
            "attachments": dict(self.attachments),
            "hashes_ok": self.hashes_ok,
            "decision": self.decision,
            "problems": list(self.problems),
            "kid": self.kid,
            "at": self.at,
        }


class State:
    """Everything the stand-in knows, behind one lock."""

    def __init__(
        self, clients: dict[str, str], token_lifetime_s: float, scope: str, ca: CertificateAuthority
    ) -> None:
        """Start empty but for the clients and the settings."""
        self.lock = threading.RLock()
        self.clients = dict(clients)
        self.token_lifetime_s = token_lifetime_s
        self.scope = scope
        self.ca = ca
        self.tokens: dict[str, Token] = {}
        self.destinations: dict[str, Destination] = {}
        self.submissions: dict[str, Submission] = {}
        self.cases: dict[str, list[Event]] = {}
        self.received: list[Received] = []
        self.requests: list[tuple[str, str]] = []
        self.token_outage = Outage()
        self.api_outage = Outage()
        self.forced_rejects: list[tuple[str | None, dict[str, str]]] = []
        self.lag_s = 0.0
        self.lag_polls = 0

    def set_outage(self, part: str, outage: Outage) -> None:
        """Put an outage on the token endpoint ("token") or the Submission API ("submission")."""
        with self.lock:
            if part == "token":
                self.token_outage = outage
            else:
                self.api_outage = outage

    def reset_faults(self) -> None:
        """Every fault off: outages, queued rejects, lag."""
        with self.lock:
            self.token_outage = Outage()
            self.api_outage = Outage()
            self.forced_rejects.clear()
            self.lag_s = 0.0
            self.lag_polls = 0

    def issue_token(self, client_id: str, scope: str) -> tuple[str, Token]:
        """A fresh opaque access token for the client."""
        value = secrets.token_urlsafe(32)
        token = Token(client_id, scope, time.time() + self.token_lifetime_s)
        with self.lock:
            self.tokens[value] = token
        return value, token

    def add_destination(
        self,
        name: str,
        leika_keys: list[str],
        ars: list[str],
        schema_uris: list[str],
        destination_id: str | None = None,
    ) -> Destination:
        """A new active destination with fresh encryption and signing key pairs."""
        destination_id = destination_id or str(uuid.uuid4())
        encryption = KeyPair.create("encrypt", self.ca, destination_id)
        signing = KeyPair.create("sign", self.ca, destination_id)
        dest = Destination(destination_id, name, leika_keys, ars, schema_uris, encryption, signing)
        dest.decrypt_keys[encryption.kid] = encryption.private
        dest.published[encryption.kid] = encryption.public
        dest.published[signing.kid] = signing.public
        with self.lock:
            self.destinations[destination_id] = dest
        return dest

    def rotate(self, destination_id: str, keep_old: bool) -> str:
        """A new encryption key pair; the old one is forgotten unless `keep_old`."""
        with self.lock:
            dest = self.destinations[destination_id]
        fresh = KeyPair.create("encrypt", self.ca, destination_id)
        with self.lock:
            old = dest.encryption
            if not keep_old:
                dest.decrypt_keys.pop(old.kid, None)
                dest.published.pop(old.kid, None)
            dest.encryption = fresh
            dest.decrypt_keys[fresh.kid] = fresh.private
            dest.published[fresh.kid] = fresh.public
        return fresh.kid

    def append_event(self, case_id: str, token: str) -> None:
        """Add a SET to a case's log, hidden for the lag currently set."""
        with self.lock:
            event = Event(token, time.time() + self.lag_s, self.lag_polls)
            self.cases.setdefault(case_id, []).append(event)

    def visible_events(self, case_id: str) -> list[str]:
        """The SETs a poll sees now; a poll counts down the events hidden for polls."""
        now = time.time()
        with self.lock:
            shown: list[str] = []
            blocked = False
            for event in self.cases.get(case_id, []):
                hidden = event.hidden_polls > 0 or event.visible_at > now
                if event.hidden_polls > 0:
                    event.hidden_polls -= 1
                # The log stays in order: nothing after a hidden event shows either.
                blocked = blocked or hidden
                if not blocked:
                    shown.append(event.token)
            return shown

    def take_forced_reject(self, destination_id: str) -> dict[str, str] | None:
        """The problem of the first queued forced reject meant for this destination (or any)."""
        with self.lock:
            for index, (target, prob) in enumerate(self.forced_rejects):
                if target is None or target == destination_id:
                    del self.forced_rejects[index]
                    return prob
        return None
