"""The fit-connect channel's own checks, with real keys: encryption key rules, JWE, x5c, JWS.

Everything the channel checks itself rather than leaving to jwcrypto (ADR 15) is refused here
case by case, with the German explanation an administrator reads.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import tomllib
from functools import cache
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from jwcrypto import jwe, jwk, jws

from domain.config import parse_config
from integrations.channels import PermanentDeliveryError, validate_options
from integrations.channels.fit_connect import (
    attachment_metadata,
    auth_tag,
    check_encryption_key,
    encrypt,
    payment_information,
    problem_words,
    verify_jws,
)
from tests.conftest import ROOT

from .factories import attachment

#: The secrets the shipped routing file names (values do not matter to the checks).
SHIPPED_SECRETS = {
    name: "x"
    for name in (
        "BRIDGE_SECRET_FORMCYCLE",
        "BRIDGE_SECRET_FORMCYCLE_SIGNING",
        "BRIDGE_SECRET_OFFICE_SIGNING",
        "BRIDGE_SECRET_EPAY21_PASSWORD",
    )
}

DESTINATION = "7f2c1f4e-6b1a-4c3e-9d2a-0a1b2c3d4e5f"


@cache
def rsa_key(bits: int = 4096) -> rsa.RSAPrivateKey:
    """One RSA key per size for the module (4096-bit keys take a moment to make)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_jwk(bits: int = 4096) -> jwk.JWK:
    """The private key as a JWK (what the destination keeps)."""
    pem = rsa_key(bits).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return jwk.JWK.from_pem(pem)


def published(bits: int = 4096, **overrides: Any) -> dict[str, Any]:
    """The destination's encryption key as FIT-Connect publishes it."""
    public: dict[str, Any] = json.loads(private_jwk(bits).export_public())
    public.update(kid="enc-1", alg="RSA-OAEP-256", key_ops=["wrapKey"], use="enc")
    public.update(overrides)
    return public


def test_a_fit_connect_key_with_key_ops_wrapkey_is_accepted_and_encrypts() -> None:
    key = check_encryption_key(published(), None)
    sealed = encrypt(b'{"hund":"Bello"}', key, "enc-1", "application/json")

    header = json.loads(base64.urlsafe_b64decode(sealed.split(".")[0] + "=="))
    assert header == {
        "alg": "RSA-OAEP-256",
        "enc": "A256GCM",
        "cty": "application/json",
        "kid": "enc-1",
    }
    opened = jwe.JWE()
    opened.deserialize(sealed, key=private_jwk())
    assert opened.payload == b'{"hund":"Bello"}'
    assert auth_tag(sealed) == sealed.split(".")[4]


@pytest.mark.parametrize(
    ("change", "explained"),
    [
        ({"kty": "EC"}, "kty ist nicht RSA"),
        ({"key_ops": ["encrypt"]}, 'key_ops ist nicht ["wrapKey"]'),
        ({"key_ops": ["wrapKey", "encrypt"]}, 'key_ops ist nicht ["wrapKey"]'),
        ({"alg": "RSA-OAEP"}, "alg ist nicht RSA-OAEP-256"),
        ({"e": "Aw"}, "e ist nicht AQAB"),
    ],
)
def test_keys_outside_the_rules_are_refused(change: dict[str, Any], explained: str) -> None:
    with pytest.raises(PermanentDeliveryError) as refused:
        check_encryption_key(published(**change), None)

    assert refused.value.message.startswith(
        "Der Verschlüsselungsschlüssel des Zustellpunkts ist unzulässig: "
    )
    assert explained in refused.value.message


def test_a_2048_bit_key_is_refused() -> None:
    with pytest.raises(PermanentDeliveryError, match="2048 statt mindestens 4096 Bit"):
        check_encryption_key(published(2048), None)


def certificate(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: tuple[str, rsa.RSAPrivateKey] | None = None,
    *,
    days: int = 30,
    ca: bool = False,
) -> x509.Certificate:
    """A certificate for `key`, issued by `issuer` (name, key) or self-signed."""
    issuer_name, issuer_key = issuer or (subject, key)
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


def der64(cert: x509.Certificate) -> str:
    """A certificate as an x5c entry (base64 DER, not base64url)."""
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


@pytest.fixture(scope="module")
def pki() -> dict[str, Any]:
    """A root, an intermediate and the destination's leaf certificate over its key."""
    root_key, inter_key = rsa_key(2048 + 1024), rsa_key(2048)
    root = certificate("Test-Verwaltungs-PKI Wurzel", root_key, ca=True)
    inter = certificate(
        "Test-Zwischen-CA", inter_key, ("Test-Verwaltungs-PKI Wurzel", root_key), ca=True
    )
    leaf = certificate("Zustellpunkt Steueramt", rsa_key(4096), ("Test-Zwischen-CA", inter_key))
    stranger = certificate("Fremde Wurzel", rsa_key(2048 + 512), ca=True)
    return {"root": root, "inter": inter, "leaf": leaf, "stranger": stranger}


def test_an_x5c_chain_to_the_trust_anchor_is_accepted(pki: dict[str, Any]) -> None:
    key = published(x5c=[der64(pki["leaf"]), der64(pki["inter"])])

    assert check_encryption_key(key, [pki["root"]]) is not None


@pytest.mark.parametrize(
    ("chain", "explained"),
    [
        (None, "keine Zertifikatskette"),
        (["leaf"], "nicht geschlossen|keinem konfigurierten Vertrauensanker"),
        (["inter"], "gehört nicht zum Schlüssel"),
        (["leaf", "stranger"], "nicht geschlossen"),
    ],
)
def test_x5c_chains_that_do_not_hold_are_refused(
    pki: dict[str, Any], chain: list[str] | None, explained: str
) -> None:
    key = published() if chain is None else published(x5c=[der64(pki[c]) for c in chain])

    with pytest.raises(PermanentDeliveryError, match=explained):
        check_encryption_key(key, [pki["root"]])


def test_a_chain_to_another_anchor_is_refused(pki: dict[str, Any]) -> None:
    key = published(x5c=[der64(pki["leaf"]), der64(pki["inter"])])

    with pytest.raises(PermanentDeliveryError, match="keinem konfigurierten Vertrauensanker"):
        check_encryption_key(key, [pki["stranger"]])


def signed(payload: dict[str, Any], key: jwk.JWK, alg: str = "PS512") -> str:
    """A compact JWS of `payload` (what the Routing API and the event log carry)."""
    token = jws.JWS(json.dumps(payload).encode())
    token.add_signature(key, alg=alg, protected=json.dumps({"alg": alg, "kid": "sig-1"}))
    return str(token.serialize(compact=True))


def test_only_ps512_by_the_right_key_verifies() -> None:
    signer = private_jwk(2048)
    public = jwk.JWK(**json.loads(signer.export_public()))
    payload = {"destinationId": DESTINATION}

    assert verify_jws(signed(payload, signer), public) == payload
    with pytest.raises(ValueError, match="is not PS512"):
        verify_jws(signed(payload, signer, "RS512"), public)
    with pytest.raises(ValueError, match="signature does not verify"):
        verify_jws(signed(payload, private_jwk(3072)), public)
    header, _body, signature = signed(payload, signer).split(".")
    forged = base64.urlsafe_b64encode(b'{"destinationId":"other"}').rstrip(b"=").decode()
    with pytest.raises(ValueError, match="signature does not verify"):
        verify_jws(f"{header}.{forged}.{signature}", public)


def test_rejection_problems_are_put_in_german_words() -> None:
    base = "https://schema.fitko.de/fit-connect/events/problems/"
    problems = [
        {"type": base + "incorrect-attachment-hash", "instance": "attachment:abc"},
        {"type": base + "schema-violation", "instance": "data"},
        {"type": "https://example.test/own", "title": "<script>"},
    ]

    assert problem_words(problems) == (
        "Prüfsumme einer Anlage stimmt nicht (Anlage)",
        "Daten entsprechen nicht dem Schema (Fachdaten)",
        "Sonstiges Problem",
    )
    assert problem_words("not a list") == ()


def test_payment_information_of_a_paid_fee_only() -> None:
    paid = {
        "status": "PAYED",
        "amount": "35.00",
        "transaction_id": "tx-1",
        "transaction_reference": "KZ-2026-1",
        "method": "paypal",
        "paid_at": dt.datetime(2026, 3, 1, 9, 30, tzinfo=dt.UTC),
    }

    assert payment_information(paid) == {
        "transactionId": "tx-1",
        "transactionReference": "KZ-2026-1",
        "paymentMethod": "PAYPAL",
        "paymentMethodDetail": "paypal",
        "status": "BOOKED",
        "grossAmount": 35.0,
        "transactionTimestamp": "2026-03-01T09:30:00Z",
    }
    other = payment_information({**paid, "method": "SEPA-Lastschrift"})
    assert other is not None
    assert other["paymentMethod"] == "OTHER"
    assert payment_information({**paid, "status": "INITIAL"}) is None
    assert payment_information(None) is None


def test_attachment_metadata_carries_the_sha512_of_the_plaintext() -> None:
    entry = attachment_metadata("a1", attachment())

    assert entry["hash"] == {
        "type": "sha512",
        "content": hashlib.sha512(attachment().content or b"").hexdigest(),
    }
    assert entry["purpose"] == "attachment"
    assert entry["mimeType"] == "application/pdf"


BASE = {
    "token_url": "https://auth-testing.fit-connect.fitko.dev/token",
    "submission_api_url": "https://submission-api-testing.fit-connect.fitko.dev/v2",
    "client_id": "bridge-usingen",
    "client_secret_env": "FIT_CONNECT_SECRET",
}


def test_options_need_a_destination_or_the_routing_api_and_its_signer() -> None:
    assert validate_options("fit-connect", {**BASE, "destination_id": DESTINATION})[1] == []
    loaded, problems = validate_options(
        "fit-connect",
        {
            **BASE,
            "routing_api_url": "https://routing-api-testing.fit-connect.fitko.dev/v1",
            "routing_signature_jwks_url": "https://portal.example.test/.well-known/jwks.json",
        },
    )
    assert problems == []
    assert loaded["scope"] == "send:region:DE"
    assert loaded["poll_interval_s"] == 60.0

    assert validate_options("fit-connect", BASE)[1] == [
        "routing_api_url: required without destination_id (routing by LeiKa and ARS)"
    ]
    assert validate_options("fit-connect", {**BASE, "destination_id": "nope"})[1] == [
        "destination_id: must be a destination id (a UUID)"
    ]
    assert validate_options(
        "fit-connect", {**BASE, "destination_id": DESTINATION, "client_secret_env": "geheim"}
    )[1] == ["client_secret_env: must name an environment variable (A-Z, 0-9, _)"]


def test_the_shipped_commented_fit_connect_office_is_valid_once_uncommented() -> None:
    """config/routing.toml's example office, uncommented as the comment says, passes the checks,
    with a fixed destination and with routing instead."""
    shipped = (ROOT / "config" / "routing.toml").read_text(encoding="utf-8")
    lines = shipped.splitlines()
    start = lines.index("# [offices.usingen-steueramt-fitconnect]")
    block = [line.removeprefix("# ") for line in lines[start : start + 6]]
    routed = block[-1].replace(
        'destination_id = "6f1c2d3e-4b5a-4c6d-8e7f-90a1b2c3d4e5"',
        " ".join(lines[start + 8 : start + 10]).replace("#", "").strip().rstrip(","),
    )
    for office in (block, [*block[:-1], routed]):
        raw = tomllib.loads(shipped + "\n" + "\n".join(office) + "\n")
        config = parse_config(raw, {"BRIDGE_SECRET_FITCONNECT": "x", **SHIPPED_SECRETS})
        assert config.offices["usingen-steueramt-fitconnect"].channel == "fit-connect"
