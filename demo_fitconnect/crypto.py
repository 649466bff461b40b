"""Keys, certificates and tokens of the stand-in: RSA key pairs, an x5c chain, PS512 SETs, JWE.

FIT-Connect allows only RSA keys: encryption keys are published with `key_ops ["wrapKey"]`
and `alg RSA-OAEP-256`, signature keys with `key_ops ["verify"]` and `alg PS512`, both 4096
bit with `e = AQAB` and an `x5c` chain. The chain here comes from the stand-in's own demo CA
(`ca_pem`), which plays the operator's trust anchor (the Verwaltungs-PKI in production).
"""

from __future__ import annotations

import base64
import datetime
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from jwcrypto import jwe, jwk, jws

KEY_BITS = 4096
SET_TYPE = "secevent+jwt"
SET_SCHEMA = "https://schema.fitko.de/fit-connect/set-payload/1.2.2/set-payload.schema.json"
EVENT_PREFIX = "https://schema.fitko.de/fit-connect/events/"


def _b64(der: bytes) -> str:
    """Standard base64 (with padding), as x5c entries are written (RFC 7517 4.7)."""
    return base64.b64encode(der).decode("ascii")


@dataclass
class CertificateAuthority:
    """A self-signed demo CA that issues the certificates in the keys' `x5c` chains."""

    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    @classmethod
    def create(
        cls, name: str = "Demo-Verwaltungs-PKI (FIT-Connect-Stand-in)"
    ) -> CertificateAuthority:
        """A new CA (2048 bit is enough for a demo root that never leaves loopback)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(key=key, cert=cert)

    def issue(self, public_key: rsa.RSAPublicKey, common_name: str) -> x509.Certificate:
        """A leaf certificate for `public_key`, valid for a year."""
        now = datetime.datetime.now(datetime.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    @property
    def pem(self) -> str:
        """The CA certificate in PEM: what an operator would set as the trust anchor."""
        return self.cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


@dataclass
class KeyPair:
    """One RSA key pair with its kid and what it is for ("encrypt" or "sign")."""

    purpose: str
    private: jwk.JWK
    public: dict[str, Any]
    kid: str = field(default="")

    @classmethod
    def create(cls, purpose: str, ca: CertificateAuthority, owner: str) -> KeyPair:
        """A fresh 4096-bit pair; the public JWK carries the FIT-Connect key properties."""
        kid = str(uuid.uuid4())
        pyca = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
        private = jwk.JWK.from_pyca(pyca)
        cert = ca.issue(pyca.public_key(), f"{owner} {purpose}")
        exported = json.loads(private.export_public())
        public: dict[str, Any] = {
            "kty": "RSA",
            "kid": kid,
            "n": exported["n"],
            "e": exported["e"],
            "x5c": [
                _b64(cert.public_bytes(serialization.Encoding.DER)),
                _b64(ca.cert.public_bytes(serialization.Encoding.DER)),
            ],
        }
        if purpose == "encrypt":
            public.update(key_ops=["wrapKey"], alg="RSA-OAEP-256")
        else:
            public.update(key_ops=["verify"], alg="PS512")
        return cls(purpose=purpose, private=private, public=public, kid=kid)


def jwks(*pairs: KeyPair) -> dict[str, Any]:
    """A JWK set of the public halves."""
    return {"keys": [pair.public for pair in pairs]}


def sign_jwt(pair: KeyPair, claims: dict[str, Any], typ: str = "JWT") -> str:
    """A compact JWS (PS512) over the JSON claims, the header naming the key's kid."""
    token = jws.JWS(json.dumps(claims, separators=(",", ":")).encode("utf-8"))
    header = {"typ": typ, "alg": "PS512", "kid": pair.kid}
    token.add_signature(pair.private, alg="PS512", protected=json.dumps(header))
    return str(token.serialize(compact=True))


def make_set(
    pair: KeyPair, issuer: str, event: str, submission_id: str, case_id: str, body: dict[str, Any]
) -> str:
    """A Security Event Token (RFC 8417) in FIT-Connect's set-payload 1.2.2 shape."""
    claims = {
        "$schema": SET_SCHEMA,
        "jti": str(uuid.uuid4()),
        "iss": issuer,
        "iat": int(time.time()),
        "sub": f"submission:{submission_id}",
        "txn": f"case:{case_id}",
        "events": {EVENT_PREFIX + event: body},
    }
    return sign_jwt(pair, claims, typ=SET_TYPE)


def protected_header(compact: str) -> dict[str, Any] | None:
    """The protected header of a compact JWE/JWS, or None when it is not one."""
    first = compact.split(".", 1)[0]
    try:
        raw = base64.urlsafe_b64decode(first + "=" * (-len(first) % 4))
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return header if isinstance(header, dict) else None


def is_compact_jwe(text: str) -> bool:
    """Five dot-separated base64url parts with a decodable header naming alg and enc."""
    parts = text.split(".")
    if len(parts) != 5:
        return False
    header = protected_header(text)
    return header is not None and "alg" in header and "enc" in header


def authentication_tag(compact: str) -> str:
    """The authentication tag of a compact JWE: its last segment (what the accept SET carries)."""
    return compact.rsplit(".", 1)[-1]


def decrypt(compact: str, keys: dict[str, jwk.JWK]) -> bytes:
    """The plaintext of a compact JWE, with the private key its header's kid names.

    Raises ValueError when the kid is unknown or the token does not decrypt.
    """
    header = protected_header(compact) or {}
    key = keys.get(str(header.get("kid", "")))
    if key is None:
        raise ValueError("unknown key")
    token = jwe.JWE()
    try:
        token.deserialize(compact, key=key)
    except Exception as exc:  # jwcrypto raises several unrelated types for a bad token
        raise ValueError("does not decrypt") from exc
    return bytes(token.payload)
