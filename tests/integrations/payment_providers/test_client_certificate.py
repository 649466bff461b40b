"""Client certificates (ePayBL style): mutual TLS against the simulator on an HTTPS listener."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from demo_payments import DemoPayments, SimulatorConfig
from integrations.payment_providers import ProviderUnavailable
from tests.integrations.payment_providers.conftest import AGS_NEU_ANSPACH, order, provider

KEY_PASSWORD = "schluessel-passwort"


@dataclass(frozen=True)
class Pki:
    """Throwaway certificates: a CA, the simulator's server certificate and a client's."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path  # encrypted with KEY_PASSWORD
    other_cert: Path  # a client certificate from another CA
    other_key: Path


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    issuer_name, issuer_key = issuer or (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
    elif server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey, password: str | None = None) -> Path:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    )
    return path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """Make the certificates once for the module."""
    d = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("Demo-CA", ca_key, None, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    client_key = ec.generate_private_key(ec.SECP256R1())
    other_ca_key = ec.generate_private_key(ec.SECP256R1())
    other_key = ec.generate_private_key(ec.SECP256R1())
    issuer = (ca.subject, ca_key)
    return Pki(
        ca=_write(d / "ca.pem", ca),
        server_cert=_write(d / "server.pem", _cert("127.0.0.1", server_key, issuer, server=True)),
        server_key=_write_key(d / "server.key", server_key),
        client_cert=_write(d / "client.pem", _cert("formcycle-bridge", client_key, issuer)),
        client_key=_write_key(d / "client.key", client_key, KEY_PASSWORD),
        other_cert=_write(
            d / "other.pem",
            _cert("fremd", other_key, (_name("Fremd-CA"), other_ca_key)),
        ),
        other_key=_write_key(d / "other.key", other_key),
    )


@pytest.fixture
def tls_simulator(pki: Pki) -> Iterator[DemoPayments]:
    """The simulator on HTTPS, requiring a client certificate from the demo CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca))
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    with DemoPayments(config=SimulatorConfig(auth="none"), ssl_context=context) as demo:
        yield demo


def _options(demo: DemoPayments, pki: Pki, **extra: str) -> dict[str, str]:
    return {
        "base_url": demo.xbezahldienste_url,
        "originator_id": "formcycle-bridge",
        "auth": "client_certificate",
        "cert_file": str(pki.client_cert),
        "key_file": str(pki.client_key),
        "key_password_env": "EPAYBL_KEY_PASSWORD",
        "ca_file": str(pki.ca),
        **extra,
    }


def test_mutual_tls_with_an_encrypted_key(tls_simulator: DemoPayments, pki: Pki) -> None:
    """The client certificate (key unlocked by its password) opens the provider's API."""
    assert tls_simulator.url.startswith("https://")
    epaybl = provider(_options(tls_simulator, pki), secrets={"EPAYBL_KEY_PASSWORD": KEY_PASSWORD})
    created = epaybl.create(order())
    status = epaybl.status(
        order().payment_id, created.transaction_id, municipality_ags=AGS_NEU_ANSPACH
    )
    assert status.status == "INITIAL"


def test_a_certificate_the_provider_does_not_trust_is_refused(
    tls_simulator: DemoPayments, pki: Pki
) -> None:
    """A client certificate from another CA: the handshake fails, nothing is created."""
    stranger = provider(
        {
            **_options(
                tls_simulator, pki, cert_file=str(pki.other_cert), key_file=str(pki.other_key)
            ),
        },
        secrets={"EPAYBL_KEY_PASSWORD": KEY_PASSWORD},
    )
    with pytest.raises(ProviderUnavailable, match=r"TLS|Verbindung"):
        stranger.create(order())
    assert tls_simulator.ledger.all() == []


def test_the_provider_certificate_is_checked_against_ca_file(
    tls_simulator: DemoPayments, pki: Pki
) -> None:
    """Without ca_file the demo CA is not trusted: the server certificate does not verify."""
    options = _options(tls_simulator, pki)
    del options["ca_file"]
    untrusting = provider(options, secrets={"EPAYBL_KEY_PASSWORD": KEY_PASSWORD})
    with pytest.raises(ProviderUnavailable, match="TLS"):
        untrusting.create(order())
    assert tls_simulator.ledger.all() == []


def test_an_encrypted_key_without_its_password_fails_fast(
    tls_simulator: DemoPayments, pki: Pki
) -> None:
    """No key_password_env for an encrypted key, or a wrong password: a TLS error at once
    (never OpenSSL's terminal prompt), nothing created."""
    options = _options(tls_simulator, pki)
    del options["key_password_env"]
    for epaybl in (
        provider(options, secrets={}),
        provider(_options(tls_simulator, pki), secrets={"EPAYBL_KEY_PASSWORD": "falsch"}),
    ):
        with pytest.raises(ProviderUnavailable, match="TLS"):
            epaybl.create(order())
    assert tls_simulator.ledger.all() == []
