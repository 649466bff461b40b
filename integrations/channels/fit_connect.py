"""The fit-connect channel: hand an application to FIT-Connect, the federal delivery service.

Submission API v2 (docs.fitko.de; /work/shared/reference/egov-protocols.md section 1.10):
OAuth2 client credentials, the destination by id or by the Routing API (LeiKa + ARS, its
signature checked), the destination's encryption key checked, the submission created with one
announced id per attachment, every attachment and then data and metadata encrypted as JWE for
that key. A delivery is delivered only when the destination accepts it: the channel also reads
and verifies the case's event log (Security Event Tokens) for the poller. ADR 15 says why
jwcrypto and what the bridge checks itself.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from jwcrypto import jwe, jwk, jws
from jwcrypto.common import JWException
from marshmallow import ValidationError, fields, validate, validates_schema

from domain.delivery.fit_connect import ACCEPT, FINISHED_OUTCOMES, REJECT, CaseEvent
from integrations.channels.base import (
    AnswerTooLarge,
    Channel,
    ChannelOptions,
    DeliveryError,
    Envelope,
    EnvelopeAttachment,
    EnvName,
    PermanentDeliveryError,
    Progress,
    Receipt,
    channels,
    iso_utc,
    jsonable,
    read_bounded,
    status_text,
)
from integrations.channels.webhook import USER_AGENT, parse_retry_after

EVENTS = "https://schema.fitko.de/fit-connect/events/"
PROBLEMS = "https://schema.fitko.de/fit-connect/events/problems/"
METADATA_SCHEMA = "https://schema.fitko.de/fit-connect/metadata/2.1.0/metadata.schema.json"
LEIKA_URN = "urn:de:fim:leika:leistung:"
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z"
#: The encryption the docs prescribe (Verschlüsselte Übertragung): RSA-OAEP-256 + A256GCM.
KEY_ALG = "RSA-OAEP-256"
CONTENT_ENC = "A256GCM"
SIGNATURE_ALG = "PS512"
MIN_KEY_BITS = 4096
#: Answers of the APIs are small JSON documents; anything longer is not read.
MAX_ANSWER_BYTES = 1024 * 1024
#: A token is renewed this long before it runs out (a request must not carry a stale one).
TOKEN_MARGIN_S = 30.0
#: A Security Event Token issued this far ahead of our clock is still taken (clock skew).
IAT_LEEWAY_S = 60
PAYMENT_METHODS = frozenset({"GIROPAY", "PAYDIRECT", "CREDITCARD", "PAYPAL", "INVOICE", "OTHER"})
#: The problem catalogue of a rejection (docs: receiving/verification), in German words.
PROBLEM_WORDS = {
    "encryption-issue": "Entschlüsselung nicht möglich",
    "missing-schema": "Schema-Referenz fehlt",
    "unsupported-schema": "Schema wird nicht unterstützt",
    "schema-violation": "Daten entsprechen nicht dem Schema",
    "syntax-violation": "Syntaxfehler",
    "unsupported-data-format": "Datenformat wird nicht unterstützt",
    "incorrect-hash": "Prüfsumme stimmt nicht",
    "missing-attachments": "Anlagen fehlen",
    "incorrect-attachment-hash": "Prüfsumme einer Anlage stimmt nicht",
    "unexpected-attachment": "Unerwartete Anlage",
    "missing-authentication-info": "Authentifizierungsinformationen fehlen",
    "invalid-authentication-info": "Authentifizierungsinformationen ungültig",
    "service-mismatch": "Leistung passt nicht zum Zustellpunkt",
    "invalid-reply-channel": "Rückkanal ungültig",
    "technical-error": "Technischer Fehler beim Empfänger",
    # Names the stand-in (demo_fitconnect) uses beside the catalogue's.
    "hash-mismatch": "Prüfsumme stimmt nicht",
    "attachments-mismatch": "Anlagenliste stimmt nicht",
}


class FitConnectOptions(ChannelOptions):
    """Options of the fit-connect channel (docs/fit-connect.md)."""

    token_url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False)
    submission_api_url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False)
    client_id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    client_secret_env = EnvName(required=True)
    # The docs write a sender's scope `send:region:DE`; a public client saw `send-submissions`.
    scope = fields.String(load_default="send:region:DE", validate=validate.Length(max=200))
    destination_id = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Regexp(UUID_PATTERN, error="must be a destination id (a UUID)"),
    )
    routing_api_url = fields.Url(
        load_default=None, allow_none=True, schemes={"http", "https"}, require_tld=False
    )
    #: The JWKS of the key that signs the Routing API's destinationSignature.
    routing_signature_jwks_url = fields.Url(
        load_default=None, allow_none=True, schemes={"http", "https"}, require_tld=False
    )
    #: Where the Submission API publishes the keys of its own events (submit, delete ...);
    #: none: /.well-known/jwks.json on the Submission API's host.
    service_jwks_url = fields.Url(
        load_default=None, allow_none=True, schemes={"http", "https"}, require_tld=False
    )
    routing_cache_s = fields.Integer(load_default=3600, validate=validate.Range(min=0, max=86400))
    #: PEM file of the CA certificates the destination key's x5c chain must lead to.
    trust_anchor_file = fields.String(load_default=None, allow_none=True)
    #: Which of the destination's data schemas to name when it accepts several.
    schema_uri = fields.String(load_default=None, allow_none=True)
    poll_interval_s = fields.Float(load_default=60.0, validate=validate.Range(min=1, max=86400))
    connect_timeout_s = fields.Float(load_default=5.0, validate=validate.Range(min=0.01, max=120))
    read_timeout_s = fields.Float(load_default=30.0, validate=validate.Range(min=0.01, max=600))

    @validates_schema
    def _destination_or_routing(self, data: Mapping[str, Any], **_: Any) -> None:
        """Either a fixed destination, or the Routing API with the key that signs its answers."""
        if data.get("destination_id") is not None:
            return
        missing = [k for k in ("routing_api_url", "routing_signature_jwks_url") if not data.get(k)]
        if missing:
            raise ValidationError(
                "required without destination_id (routing by LeiKa and ARS)", missing[0]
            )


@dataclass
class _Token:
    value: str
    expires: float


# Per process, shared by the offices of one client: one token until shortly before it expires.
_tokens: dict[tuple[str, str, str, str], _Token] = {}
_routes: dict[tuple[str, str, str], tuple[float, str, str]] = {}
_jwks: dict[str, tuple[float, jwk.JWKSet]] = {}
_lock = threading.Lock()
#: How long a fetched JWKS (routing signer, Submission API) is trusted before it is fetched again.
JWKS_TTL_S = 3600.0


def b64url_decode(part: str) -> bytes:
    """Base64url without padding, as JOSE writes it."""
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def unverified_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and payload of a compact JWS, not yet verified (to pick the key that will)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a compact JWS")
    header = json.loads(b64url_decode(parts[0]))
    payload = json.loads(b64url_decode(parts[1]))
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise ValueError("header or payload is not an object")
    return header, payload


def verify_jws(token: str, key: jwk.JWK) -> dict[str, Any]:
    """The payload of a compact JWS signed PS512 with `key`; raises ValueError otherwise."""
    header, _ = unverified_parts(token)
    if header.get("alg") != SIGNATURE_ALG:
        raise ValueError(f"algorithm {header.get('alg')!r} is not {SIGNATURE_ALG}")
    signed = jws.JWS()
    try:
        signed.deserialize(token)
        signed.verify(key, alg=SIGNATURE_ALG)
    except (JWException, ValueError) as exc:
        raise ValueError("signature does not verify") from exc
    payload = json.loads(signed.payload)
    if not isinstance(payload, dict):
        raise ValueError("payload is not an object")
    return payload


def check_encryption_key(
    key: Mapping[str, Any], trust_anchors: Sequence[x509.Certificate] | None
) -> jwk.JWK:
    """The destination's encryption key, checked as the docs require; else a permanent error.

    kty RSA, key_ops exactly ["wrapKey"], alg RSA-OAEP-256, e AQAB, at least 4096 bit, and,
    when the operator configured trust anchors, an x5c chain to one of them whose leaf holds
    this very key. The key is built for jwcrypto as published (it accepts `wrapKey`).
    """
    problems = []
    if key.get("kty") != "RSA":
        problems.append("kty ist nicht RSA")
    if key.get("key_ops") != ["wrapKey"]:
        problems.append('key_ops ist nicht ["wrapKey"]')
    if key.get("alg") != KEY_ALG:
        problems.append(f"alg ist nicht {KEY_ALG}")
    if key.get("e") != "AQAB":
        problems.append("e ist nicht AQAB")
    try:
        bits = int.from_bytes(b64url_decode(str(key.get("n", ""))), "big").bit_length()
    except ValueError:
        bits = 0
    if bits < MIN_KEY_BITS:
        problems.append(f"Schlüssel hat {bits} statt mindestens {MIN_KEY_BITS} Bit")
    if problems:
        raise PermanentDeliveryError(
            "Der Verschlüsselungsschlüssel des Zustellpunkts ist unzulässig: " + "; ".join(problems)
        )
    try:
        built = jwk.JWK(**{k: v for k, v in key.items() if k != "x5c"})
    except (JWException, ValueError, TypeError):
        raise PermanentDeliveryError(
            "Der Verschlüsselungsschlüssel des Zustellpunkts ist nicht lesbar."
        ) from None
    if trust_anchors is not None:
        check_chain(
            key.get("x5c"), int.from_bytes(b64url_decode(str(key["n"])), "big"), trust_anchors
        )
    return built


def check_chain(x5c: Any, modulus: int, trust_anchors: Sequence[x509.Certificate]) -> None:
    """The x5c chain leads to a trust anchor, each link in its validity period and signed by
    the next, and the leaf certificate holds the key; else a permanent error.

    A plain path check (no revocation, no policy or name constraints): see docs/fit-connect.md.
    """
    if not isinstance(x5c, list) or not x5c or not all(isinstance(c, str) for c in x5c):
        raise PermanentDeliveryError(
            "Der Schlüssel des Zustellpunkts trägt keine Zertifikatskette (x5c)."
        )
    try:
        chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in x5c]
    except ValueError:
        raise PermanentDeliveryError("Die Zertifikatskette (x5c) ist nicht lesbar.") from None
    now = dt.datetime.now(dt.UTC)
    leaf_key = chain[0].public_key()
    # e is AQAB (checked before), so the modulus decides whether the leaf holds this key.
    if not (isinstance(leaf_key, rsa.RSAPublicKey) and leaf_key.public_numbers().n == modulus):
        raise PermanentDeliveryError(
            "Das Zertifikat (x5c) gehört nicht zum Schlüssel des Zustellpunkts."
        )
    for cert in chain:
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise PermanentDeliveryError("Ein Zertifikat der Kette (x5c) ist nicht gültig.")
    for child, parent in itertools.pairwise(chain):
        try:
            child.verify_directly_issued_by(parent)
        except (ValueError, TypeError, Exception):
            raise PermanentDeliveryError(
                "Die Zertifikatskette (x5c) ist nicht geschlossen."
            ) from None
    last = chain[-1]
    for anchor in trust_anchors:
        if last == anchor:
            return
        try:
            last.verify_directly_issued_by(anchor)
        except Exception:  # noqa: S112 - any failure means: not this anchor
            continue
        return
    raise PermanentDeliveryError(
        "Die Zertifikatskette (x5c) führt zu keinem konfigurierten Vertrauensanker."
    )


def load_trust_anchors(path: str) -> list[x509.Certificate]:
    """The CA certificates of a PEM file; a missing or unreadable file is a permanent error."""
    try:
        with open(path, "rb") as handle:
            return x509.load_pem_x509_certificates(handle.read())
    except (OSError, ValueError):
        raise PermanentDeliveryError(
            "Konfigurationsfehler: trust_anchor_file ist nicht lesbar."
        ) from None


#: A callback older than this is refused (docs: Callbacks); one from the future too.
CALLBACK_MAX_AGE_S = 300


def callback_problem(
    secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float
) -> str | None:
    """Why a FIT-Connect callback is not to be trusted, or None when it is.

    `callback-authentication` must be the hex HMAC-SHA512 of f"{timestamp}.{body}" under the
    secret (compared in constant time) and `callback-timestamp` at most five minutes old and
    not in the future.
    """
    if not timestamp or not signature:
        return "missing"
    if not timestamp.isdigit() or len(timestamp) > 12:
        return "timestamp"
    age = now - int(timestamp)
    if not 0 <= age < CALLBACK_MAX_AGE_S:
        return "timestamp"
    expected = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha512)
    if not hmac.compare_digest(expected.hexdigest().encode(), signature.strip().lower().encode()):
        return "signature"
    return None


def callback_cases(body: bytes, limit: int = 100) -> list[str]:
    """The case ids a verified callback names (`submissions[].caseId`), at most `limit`."""
    try:
        document = json.loads(body)
    except ValueError:
        return []
    entries = document.get("submissions") if isinstance(document, dict) else None
    found: list[str] = []
    for entry in entries if isinstance(entries, list) else []:
        case_id = entry.get("caseId") if isinstance(entry, dict) else None
        if isinstance(case_id, str) and re.fullmatch(UUID_PATTERN, case_id):
            found.append(case_id)
    return found[:limit]


def canonical_json(value: Any) -> bytes:
    """JSON bytes as hashed and encrypted (UTF-8, no insignificant whitespace)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()


def encrypt(plaintext: bytes, key: jwk.JWK, kid: str, content_type: str) -> str:
    """A compact JWE of `plaintext` for the destination's key (RSA-OAEP-256 + A256GCM)."""
    header = {"alg": KEY_ALG, "enc": CONTENT_ENC, "cty": content_type, "kid": kid}
    token = jwe.JWE(plaintext, protected=json.dumps(header))
    token.add_recipient(key)
    return str(token.serialize(compact=True))


def auth_tag(compact: str) -> str:
    """The authentication tag of a compact JWE (its last part), as an accept event names it."""
    return compact.rsplit(".", 1)[-1]


def problem_words(problems: Any) -> tuple[str, ...]:
    """A rejection's problems in German words (type from the catalogue, and where it applies)."""
    out: list[str] = []
    for problem in problems if isinstance(problems, list) else []:
        if not isinstance(problem, dict):
            continue
        kind = str(problem.get("type", ""))
        slug = kind.removeprefix(PROBLEMS) if kind.startswith(PROBLEMS) else ""
        words = PROBLEM_WORDS.get(slug, "Sonstiges Problem")
        instance = str(problem.get("instance", ""))
        where = {"metadata": "Metadaten", "data": "Fachdaten"}.get(instance)
        if instance.startswith("attachment:"):
            where = "Anlage"
        out.append(f"{words} ({where})" if where else words)
    return tuple(out)


@channels.register("fit-connect")
class FitConnectChannel(Channel):
    """Submit to a FIT-Connect destination; delivered once the destination accepts it."""

    options_schema = FitConnectOptions

    # --- delivering -------------------------------------------------------------------------

    def deliver(self, envelope: Envelope, http: requests.Session) -> Receipt:
        """Submit without a place to keep progress (tests, tools): nothing is resumed."""
        return self.deliver_tracked(envelope, http, lambda _state: True)

    def deliver_tracked(
        self, envelope: Envelope, http: requests.Session, progress: Progress
    ) -> Receipt:
        """Create (or resume) the submission, upload attachments, submit data and metadata.

        The submission id is committed through `progress` before the first upload, and after
        each upload, so that a crash resumes this submission instead of creating another.
        A submission already handed over, and neither rejected nor gone, is never sent again.
        """
        self.check_options()
        if envelope.kind != "case":
            raise PermanentDeliveryError(
                "Über FIT-Connect werden nur Anträge zugestellt, keine Zahlungsmitteilungen."
            )
        state = dict(envelope.channel_state or {})
        poll_s = float(self.options["poll_interval_s"])
        if state.get("submitted") and state.get("outcome") not in FINISHED_OUTCOMES:
            return Receipt(case_number=state.get("case_id"), awaiting_poll_s=poll_s)
        destination_id = self.destination_for(envelope, http)
        destination, kid, key = self._destination_and_key(http, destination_id)
        schema_uri = self._schema_uri(destination, envelope.leika)
        resumable = (
            state.get("submission_id")
            and state.get("destination_id") == destination_id
            and state.get("outcome") not in FINISHED_OUTCOMES
        )
        if not resumable:
            state = self._create(envelope, http, destination_id, progress)
        receipt = self._send(
            envelope, http, state, key, kid, schema_uri, progress, resumed=bool(resumable)
        )
        if receipt is None:
            # The submission was gone (deleted by the service): start one afresh, once.
            state = self._create(envelope, http, destination_id, progress)
            receipt = self._send(
                envelope, http, state, key, kid, schema_uri, progress, resumed=False
            )
            if receipt is None:
                raise DeliveryError("FIT-Connect kennt die eben angelegte Einreichung nicht.")
        return receipt

    def _destination_and_key(
        self, http: requests.Session, destination_id: str
    ) -> tuple[dict[str, Any], str, jwk.JWK]:
        """The active destination, its encryption key id and the checked key.

        A destination that rotates its key and removes the old one between our two reads
        answers 404 for the kid it named a moment ago: read the destination once more rather
        than fail the case for good. A second 404 is a destination without its key.
        """
        destination, kid = self._active_destination(http, destination_id)
        answer = self._key_answer(http, destination_id, kid, passthrough=(404,))
        if answer.status_code == 404:
            destination, kid = self._active_destination(http, destination_id)
            answer = self._key_answer(http, destination_id, kid, passthrough=())
        anchors = self.options["trust_anchor_file"]
        key = check_encryption_key(
            _read_json(answer), load_trust_anchors(anchors) if anchors else None
        )
        return destination, kid, key

    def _active_destination(
        self, http: requests.Session, destination_id: str
    ) -> tuple[dict[str, Any], str]:
        """The destination (it must be active) and the id of its encryption key."""
        destination = self._json(
            http, "GET", f"/destinations/{destination_id}", what="Zustellpunkt"
        )
        if destination.get("status", "active") != "active":
            raise PermanentDeliveryError("Der Zustellpunkt ist nicht aktiv.")
        kid = str(destination.get("encryptionKid") or "")
        if not kid:
            raise PermanentDeliveryError("Der Zustellpunkt nennt keinen Verschlüsselungsschlüssel.")
        return destination, kid

    def _key_answer(
        self,
        http: requests.Session,
        destination_id: str,
        kid: str,
        *,
        passthrough: tuple[int, ...],
    ) -> requests.Response:
        return self._call(
            http,
            "GET",
            f"/destinations/{destination_id}/keys/{quote(kid, safe='')}",
            what="Schlüssel des Zustellpunkts",
            passthrough=passthrough,
        )

    def _create(
        self, envelope: Envelope, http: requests.Session, destination_id: str, progress: Progress
    ) -> dict[str, Any]:
        """Create the submission and commit its ids before anything is uploaded to it."""
        announced = [str(uuid.uuid4()) for _ in envelope.attachments]
        created = self._json(
            http,
            "POST",
            "/submissions",
            what="Einreichung anlegen",
            body={
                "destinationId": destination_id,
                "announcedAttachments": announced,
                "publicService": {
                    "name": envelope.service_title,
                    "identifier": LEIKA_URN + envelope.leika,
                },
                "region": envelope.municipality.get("ars", ""),
            },
            expect=(200, 201),
        )
        submission_id = str(created.get("submissionId") or "")
        case_id = str(created.get("caseId") or "")
        if not submission_id or not case_id:
            raise DeliveryError("FIT-Connect hat keine Einreichungs- oder Vorgangsnummer genannt.")
        state: dict[str, Any] = {
            "destination_id": destination_id,
            "submission_id": submission_id,
            "case_id": case_id,
            "attachments": announced,
            "uploaded": [],
            "submitted": False,
        }
        if not progress(state):
            raise DeliveryError("Zustellung abgebrochen: die Reservierung ist abgelaufen.")
        return state

    def _send(
        self,
        envelope: Envelope,
        http: requests.Session,
        state: dict[str, Any],
        key: jwk.JWK,
        kid: str,
        schema_uri: str,
        progress: Progress,
        *,
        resumed: bool,
    ) -> Receipt | None:
        """Upload what is missing and submit; None when the submission no longer exists."""
        submission = f"/submissions/{state['submission_id']}"
        announced: list[str] = list(state["attachments"])
        if len(announced) != len(envelope.attachments):
            return None
        # The tags of attachments uploaded by an earlier attempt are kept: an accept names all.
        tags: dict[str, Any] = dict(state.get("tags") or {})
        tags["attachments"] = dict(tags.get("attachments") or {})
        for attachment_id, attachment in zip(announced, envelope.attachments, strict=True):
            if attachment.content is None:
                raise PermanentDeliveryError(
                    "Eine Anlage ist nicht mehr gespeichert und kann nicht übermittelt werden."
                )
            if attachment_id in state["uploaded"]:
                continue
            sealed = encrypt(attachment.content, key, kid, attachment.content_type)
            answer = self._call(
                http,
                "PUT",
                f"{submission}/attachments/{attachment_id}",
                what="Anlage hochladen",
                data=sealed.encode(),
                content_type="application/jose",
                expect=(200, 204),
                passthrough=(404,),
            )
            if answer.status_code == 404:
                return None
            tags["attachments"][attachment_id] = auth_tag(sealed)
            state["uploaded"] = [*state["uploaded"], attachment_id]
            state["tags"] = tags
            if not progress(state):
                raise DeliveryError("Zustellung abgebrochen: die Reservierung ist abgelaufen.")
        data = canonical_json(jsonable(envelope.data))
        metadata = self._metadata(envelope, data, announced, schema_uri)
        sealed_data = encrypt(data, key, kid, "application/json")
        sealed_metadata = encrypt(canonical_json(metadata), key, kid, "application/json")
        answer = self._call(
            http,
            "PUT",
            submission,
            what="Einreichung absenden",
            body={"encryptedMetadata": sealed_metadata, "encryptedData": sealed_data},
            expect=(200, 202, 204),
            passthrough=(404, 409) if resumed else (404,),
        )
        if answer.status_code == 404:
            return None
        # 409 on a resumed submission: an earlier attempt submitted it and crashed before it
        # could record that; the event log will say how it went.
        state["submitted"] = True
        state["tags"] = {
            **state.get("tags", {}),
            "metadata": auth_tag(sealed_metadata),
            "data": auth_tag(sealed_data),
        }
        progress(state)
        return Receipt(
            status_code=answer.status_code,
            case_number=state["case_id"],
            awaiting_poll_s=float(self.options["poll_interval_s"]),
        )

    def _metadata(
        self, envelope: Envelope, data: bytes, announced: list[str], schema_uri: str
    ) -> dict[str, Any]:
        """The submission's metadata: structure with hashes, service, payment, our reference."""
        metadata: dict[str, Any] = {
            "$schema": METADATA_SCHEMA,
            "contentStructure": {
                "data": {
                    "hash": {"type": "sha512", "content": hashlib.sha512(data).hexdigest()},
                    "submissionSchema": {"schemaUri": schema_uri, "mimeType": "application/json"},
                },
                "attachments": [
                    attachment_metadata(attachment_id, attachment)
                    for attachment_id, attachment in zip(
                        announced, envelope.attachments, strict=True
                    )
                ],
            },
            "publicServiceType": {
                "name": envelope.service_title,
                "identifier": LEIKA_URN + envelope.leika,
            },
            "additionalReferenceInfo": {
                "senderReference": envelope.reference,
                "applicationDate": envelope.received_at.date().isoformat(),
            },
        }
        payment = payment_information(envelope.payment)
        if payment is not None:
            metadata["paymentInformation"] = payment
        return metadata

    def _schema_uri(self, destination: Mapping[str, Any], leika: str) -> str:
        """The data schema the destination takes for this service (the metadata must name it)."""
        offered: list[str] = []
        for service in destination.get("publicServices") or destination.get("services") or []:
            if not isinstance(service, dict):
                continue
            identifier = str(service.get("identifier", ""))
            if identifier and identifier != LEIKA_URN + leika:
                continue
            for schema in service.get("submissionSchemas") or []:
                if isinstance(schema, dict) and schema.get("schemaUri"):
                    offered.append(str(schema["schemaUri"]))
        wanted = self.options.get("schema_uri")
        if wanted:
            if wanted not in offered:
                raise PermanentDeliveryError(
                    "Der Zustellpunkt nimmt das konfigurierte Datenschema (schema_uri) nicht an."
                )
            return str(wanted)
        if not offered:
            raise PermanentDeliveryError(
                "Der Zustellpunkt nennt für diese Leistung kein Datenschema."
            )
        return offered[0]

    # --- routing ----------------------------------------------------------------------------

    def destination_for(self, envelope: Envelope, http: requests.Session) -> str:
        """The destination id: configured, or found by the Routing API (LeiKa + ARS)."""
        if self.options.get("destination_id") is not None:
            return str(self.options["destination_id"])
        ars = envelope.municipality.get("ars", "")
        if not envelope.leika or not ars:
            raise PermanentDeliveryError(
                "Routing über FIT-Connect braucht Leistungsschlüssel (LeiKa) und ARS."
            )
        cache_key = (str(self.options["routing_api_url"]), envelope.leika, ars)
        with _lock:
            cached = _routes.get(cache_key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        url = str(self.options["routing_api_url"]).rstrip("/") + "/routes"
        answer = self._call(
            http,
            "GET",
            url,
            what="Routingdienst",
            auth=False,
            params={"leikaKey": envelope.leika, "ars": ars},
        )
        routes = _read_json(answer).get("routes") or []
        signer = self._jwks(http, str(self.options["routing_signature_jwks_url"]))
        for route in routes if isinstance(routes, list) else []:
            if not isinstance(route, dict):
                continue
            claims = self._verified_route(route, signer, envelope.leika)
            if claims is None:
                continue
            destination_id, host = claims
            expected = urlsplit(str(self.options["submission_api_url"])).netloc
            if host and host != expected:
                raise PermanentDeliveryError(
                    "Der zuständige Zustellpunkt liegt bei einem anderen Zustelldienst "
                    "als submission_api_url."
                )
            with _lock:
                _routes[cache_key] = (
                    time.monotonic() + float(self.options["routing_cache_s"]),
                    destination_id,
                    host,
                )
            return destination_id
        raise PermanentDeliveryError(
            "Der Routingdienst kennt für diese Leistung und Gemeinde keinen Zustellpunkt "
            "mit gültiger Signatur."
        )

    @staticmethod
    def _verified_route(
        route: Mapping[str, Any], signer: jwk.JWKSet, leika: str
    ) -> tuple[str, str] | None:
        """(destinationId, submissionHost) from a route's verified signature, else None."""
        token = route.get("destinationSignature")
        if not isinstance(token, str):
            return None
        try:
            header, _ = unverified_parts(token)
            key = signer.get_key(str(header.get("kid", "")))
            if key is None:
                return None
            claims = verify_jws(token, key)
        except ValueError:
            return None
        destination_id = claims.get("destinationId")
        if not isinstance(destination_id, str) or not destination_id:
            return None
        services = claims.get("services")
        if isinstance(services, list) and services:
            offered = {
                str(i)
                for s in services
                if isinstance(s, dict)
                for i in (s.get("leistungIDs") or [])
            }
            if LEIKA_URN + leika not in offered:
                return None
        return destination_id, str(claims.get("submissionHost") or "")

    # --- the case's event log ---------------------------------------------------------------

    def case_events(
        self, state: Mapping[str, Any], http: requests.Session
    ) -> tuple[list[CaseEvent], str | None]:
        """The case's event log, each entry verified; and why the case is gone, if it is.

        Raises DeliveryError when the log cannot be read now (the poller tries later).
        """
        self.check_options()
        case_id = str(state.get("case_id", ""))
        answer = self._call(
            http, "GET", f"/cases/{case_id}/events", what="Ereignisprotokoll", passthrough=(404,)
        )
        if answer.status_code == 404:
            return [], "FIT-Connect kennt den Vorgang nicht mehr."
        log = _read_json(answer).get("eventLog")
        if not isinstance(log, list):
            return [], None
        return [
            self.verify_event(token, state, http)
            if isinstance(token, str)
            else CaseEvent(key="unreadable", event="", verified=False, reason="kein Token")
            for token in log
        ], None

    def verify_event(
        self, token: str, state: Mapping[str, Any], http: requests.Session
    ) -> CaseEvent:
        """One Security Event Token, verified: signature (PS512) by the right key and claims.

        accept/reject must be signed by the destination's published key (its kid under
        /destinations/{id}/keys/), every other event by the Submission API's
        /.well-known/jwks.json; iss, sub (submission:<id>), txn (case:<id>) and iat (not in
        the future) must fit. Never raises for a bad token: it comes back refused.
        """
        digest = hashlib.sha256(token.encode()).hexdigest()[:32]
        try:
            header, claims = unverified_parts(token)
        except ValueError:
            return CaseEvent(key=digest, event="", verified=False, reason="kein lesbares Token")
        events = claims.get("events")
        name = ""
        if isinstance(events, dict) and len(events) == 1:
            uri = next(iter(events))
            name = uri.removeprefix(EVENTS) if uri.startswith(EVENTS) else ""
        jti = claims.get("jti")
        key_id = str(jti) if isinstance(jti, str) and 0 < len(jti) <= 64 else digest
        iat = claims.get("iat") if isinstance(claims.get("iat"), int) else None

        def refused(reason: str) -> CaseEvent:
            return CaseEvent(key=key_id, event=name, verified=False, issued_at=iat, reason=reason)

        if not name:
            return refused("unbekanntes Ereignis")
        if header.get("alg") != SIGNATURE_ALG or not header.get("kid"):
            return refused("Algorithmus oder Schlüssel-ID fehlt")
        destination_id = str(state.get("destination_id", ""))
        by_destination = name in (ACCEPT, REJECT)
        key = (
            self._destination_signing_key(http, destination_id, str(header["kid"]))
            if by_destination
            else self._service_key(http, str(header["kid"]))
        )
        if key is None:
            return refused("Signaturschlüssel unbekannt")
        try:
            claims = verify_jws(token, key)
        except ValueError:
            return refused("Signatur ungültig")
        wrong = self._claims_problem(claims, state, by_destination=by_destination)
        if wrong:
            return refused(wrong)
        body = claims["events"][EVENTS + name]
        if name == ACCEPT and not self._tags_match(body, state):
            return refused("Authentifizierungs-Tags passen nicht zur Einreichung")
        problems = problem_words(body.get("problems")) if isinstance(body, dict) else ()
        return CaseEvent(key=key_id, event=name, verified=True, issued_at=iat, problems=problems)

    def _claims_problem(
        self, claims: Mapping[str, Any], state: Mapping[str, Any], *, by_destination: bool
    ) -> str | None:
        """Why a verified token's claims do not fit this case (iss, sub, txn, iat); else None."""
        expected_iss = (
            {str(state.get("destination_id", ""))} if by_destination else self._service_issuers()
        )
        if claims.get("iss") not in expected_iss:
            return "Aussteller (iss) passt nicht"
        if claims.get("sub") != f"submission:{state.get('submission_id')}":
            return "Betreff (sub) passt nicht"
        if claims.get("txn") != f"case:{state.get('case_id')}":
            return "Vorgang (txn) passt nicht"
        iat = claims.get("iat")
        if not isinstance(iat, int) or iat > time.time() + IAT_LEEWAY_S:
            return "Ausstellungszeit (iat) fehlt oder liegt in der Zukunft"
        return None

    @staticmethod
    def _tags_match(body: Any, state: Mapping[str, Any]) -> bool:
        """An accept names the authentication tags of what we sent (when we still know them)."""
        sent = state.get("tags")
        if not isinstance(sent, dict) or "data" not in sent:
            return True
        tags = body.get("authenticationTags") if isinstance(body, dict) else None
        if not isinstance(tags, dict):
            return False
        return (
            tags.get("data") == sent.get("data")
            and tags.get("metadata") == sent.get("metadata")
            and (tags.get("attachments") or {}) == (sent.get("attachments") or {})
        )

    def _service_issuers(self) -> set[str]:
        """Who may issue the service's own events: the Submission API (with or without path)."""
        base = str(self.options["submission_api_url"]).rstrip("/")
        parts = urlsplit(base)
        return {base, f"{parts.scheme}://{parts.netloc}", parts.netloc}

    def _service_key(self, http: requests.Session, kid: str) -> jwk.JWK | None:
        url = self.options["service_jwks_url"]
        if not url:
            parts = urlsplit(str(self.options["submission_api_url"]))
            url = f"{parts.scheme}://{parts.netloc}/.well-known/jwks.json"
        return self._jwks(http, str(url)).get_key(kid)

    def _destination_signing_key(
        self, http: requests.Session, destination_id: str, kid: str
    ) -> jwk.JWK | None:
        answer = self._call(
            http,
            "GET",
            f"/destinations/{destination_id}/keys/{quote(kid, safe='')}",
            what="Signaturschlüssel des Zustellpunkts",
            passthrough=(404,),
        )
        if answer.status_code == 404:
            return None
        published = _read_json(answer)
        if published.get("kty") != "RSA" or published.get("alg") not in (None, SIGNATURE_ALG):
            return None
        if "verify" not in (published.get("key_ops") or ["verify"]):
            return None
        try:
            return jwk.JWK(**{k: v for k, v in published.items() if k != "x5c"})
        except (JWException, ValueError, TypeError):
            return None

    def _jwks(self, http: requests.Session, url: str) -> jwk.JWKSet:
        """A JWKS, fetched once an hour (signers rotate rarely; a new kid refetches it)."""
        with _lock:
            cached = _jwks.get(url)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        answer = self._call(http, "GET", url, what="Schlüsselverzeichnis (JWKS)", auth=False)
        try:
            # Read bounded like every answer (`.content` would hold a huge one whole).
            keys = jwk.JWKSet.from_json(read_bounded(answer, MAX_ANSWER_BYTES))
        except (AnswerTooLarge, requests.RequestException, JWException, ValueError, TypeError):
            raise DeliveryError("Das Schlüsselverzeichnis (JWKS) ist nicht lesbar.") from None
        with _lock:
            _jwks[url] = (time.monotonic() + JWKS_TTL_S, keys)
        return keys

    # --- HTTP -------------------------------------------------------------------------------

    def _token(self, http: requests.Session, *, renew: bool = False) -> str:
        """An access token (client credentials, secret in the form body), cached until expiry."""
        secret = self.secret("client_secret_env") or ""
        # The secret is part of the key (as a digest): a corrected secret is not served the
        # token of the refused one, nor one client's token another's.
        cache_key = (
            str(self.options["token_url"]),
            str(self.options["client_id"]),
            str(self.options["scope"]),
            hashlib.sha256(secret.encode()).hexdigest(),
        )
        with _lock:
            cached = _tokens.get(cache_key)
            if renew and cached is not None:
                del _tokens[cache_key]
                cached = None
        if cached is not None and cached.expires > time.monotonic():
            return cached.value
        form = {
            "grant_type": "client_credentials",
            "client_id": str(self.options["client_id"]),
            "client_secret": secret,
        }
        if self.options["scope"]:
            form["scope"] = str(self.options["scope"])
        try:
            response = http.post(
                str(self.options["token_url"]),
                data=form,
                timeout=self._timeouts(),
                headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise DeliveryError(
                f"Anmeldedienst von FIT-Connect nicht erreichbar ({type(exc).__name__})."
            ) from None
        if response.status_code in (400, 401, 403):
            raise PermanentDeliveryError(
                f"FIT-Connect hat die Zugangsdaten abgelehnt ({status_text(response.status_code)}):"
                " client_id und Geheimnis prüfen, dann erneut zustellen."
            )
        if response.status_code != 200:
            raise self._error(response, "Anmeldedienst")
        answer = _read_json(response)
        value = answer.get("access_token")
        if not isinstance(value, str) or not value:
            raise DeliveryError("Der Anmeldedienst hat kein Zugriffstoken geliefert.")
        lifetime = answer.get("expires_in")
        seconds = float(lifetime) if isinstance(lifetime, int | float) else 300.0
        with _lock:
            _tokens[cache_key] = _Token(value, time.monotonic() + max(seconds - TOKEN_MARGIN_S, 0))
        return value

    def _timeouts(self) -> tuple[float, float]:
        return float(self.options["connect_timeout_s"]), float(self.options["read_timeout_s"])

    def _call(
        self,
        http: requests.Session,
        method: str,
        path_or_url: str,
        *,
        what: str,
        body: Any = None,
        data: bytes | None = None,
        content_type: str | None = None,
        params: Mapping[str, str] | None = None,
        auth: bool = True,
        expect: tuple[int, ...] = (200,),
        passthrough: tuple[int, ...] = (),
    ) -> requests.Response:
        """One API request; a 401 renews the token once. Failures become DeliveryErrors."""
        url = (
            path_or_url
            if "://" in path_or_url
            else str(self.options["submission_api_url"]).rstrip("/") + path_or_url
        )
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        for renew in (False, True):
            if auth:
                headers["Authorization"] = "Bearer " + self._token(http, renew=renew)
            try:
                response = http.request(
                    method,
                    url,
                    json=body,
                    data=data,
                    params=params,
                    headers=headers,
                    timeout=self._timeouts(),
                    allow_redirects=False,
                    stream=True,
                )
            except requests.RequestException as exc:
                raise DeliveryError(f"{what}: nicht erreichbar ({type(exc).__name__}).") from None
            if response.status_code == 401 and auth and not renew:
                response.close()
                continue
            break
        if response.status_code in expect or response.status_code in passthrough:
            return response
        raise self._error(response, what)

    @staticmethod
    def _error(response: requests.Response, what: str) -> DeliveryError:
        """The error of a refused request, explained; permanent unless retrying can help."""
        status = response.status_code
        slug = ""
        try:
            problem = _read_json(response)
            kind = str(problem.get("type", ""))
            slug = kind.rsplit("/", 1)[-1][:64] if kind else ""
        except DeliveryError:
            pass
        said = f"{what}: {status_text(status)}" + (f" ({slug})" if slug else "")
        if status in (408, 429) or status >= 500:
            return DeliveryError(
                said,
                status_code=status,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
            )
        if status in (401, 403):
            return PermanentDeliveryError(
                f"{said}: FIT-Connect verweigert den Zugriff; Client, Scope und Freischaltung "
                "für den Zustellpunkt prüfen.",
                status_code=status,
            )
        if status == 404:
            return PermanentDeliveryError(f"{said}: nicht gefunden.", status_code=status)
        if status == 422:
            return PermanentDeliveryError(
                f"{said}: FIT-Connect weist die Einreichung als ungültig zurück "
                "(Metadaten, Verschlüsselung oder Datenschema).",
                status_code=status,
            )
        return PermanentDeliveryError(said, status_code=status)

    def _json(
        self,
        http: requests.Session,
        method: str,
        path: str,
        *,
        what: str,
        body: Any = None,
        expect: tuple[int, ...] = (200,),
    ) -> dict[str, Any]:
        return _read_json(self._call(http, method, path, what=what, body=body, expect=expect))


def _read_json(response: requests.Response) -> dict[str, Any]:
    """A JSON object answer of at most MAX_ANSWER_BYTES; else a DeliveryError (retry)."""
    try:
        value = json.loads(read_bounded(response, MAX_ANSWER_BYTES) or b"{}")
    except AnswerTooLarge:
        raise DeliveryError("FIT-Connect: Antwort zu groß.") from None
    except (requests.RequestException, ValueError):
        raise DeliveryError("FIT-Connect: Antwort nicht lesbar.") from None
    if not isinstance(value, dict):
        raise DeliveryError("FIT-Connect: Antwort ist kein JSON-Objekt.")
    return value


def attachment_metadata(attachment_id: str, attachment: EnvelopeAttachment) -> dict[str, Any]:
    """An attachment's entry in the metadata: id, SHA-512 of its plaintext, type, file name."""
    content = attachment.content or b""
    return {
        "attachmentId": attachment_id,
        "hash": {"type": "sha512", "content": hashlib.sha512(content).hexdigest()},
        "mimeType": attachment.content_type,
        "purpose": "attachment",
        "filename": attachment.filename,
    }


def payment_information(payment: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The metadata's paymentInformation of a paid fee (XBezahldienste field names); else None."""
    if not payment or payment.get("status") not in ("PAYED", "BOOKED"):
        return None
    method = str(payment.get("method") or "").upper()
    info: dict[str, Any] = {
        "transactionId": str(payment.get("transaction_id") or ""),
        "transactionReference": str(payment.get("transaction_reference") or ""),
        "paymentMethod": method if method in PAYMENT_METHODS else "OTHER",
        "status": "BOOKED",
        "grossAmount": float(str(payment.get("amount") or 0)),
    }
    if payment.get("method"):
        info["paymentMethodDetail"] = str(payment["method"])[:100]
    paid_at = payment.get("paid_at")
    if isinstance(paid_at, dt.datetime):
        info["transactionTimestamp"] = iso_utc(paid_at)
    return info
