"""Real TLS for tests: a self-signed certificate for 127.0.0.1 (SMTP and Redis use it) and SMTP
servers that speak it."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from harness.ports import free_port


def certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "tls.crt", folder / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def encrypted(server: Any, session: Any) -> bool:
    """Whether an aiosmtpd session runs over TLS: after STARTTLS, or from its first byte."""
    transport = getattr(server, "transport", None)
    implicit = transport is not None and transport.get_extra_info("ssl_object") is not None
    return session.ssl is not None or implicit


class Inbox:
    """An aiosmtpd handler keeping every message it is given and whether it came over TLS."""

    def __init__(self) -> None:
        """Nothing received yet."""
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []
        self.encrypted: list[bool] = []
        # Every AUTH attempt: (user, whether it succeeded, whether the session was encrypted).
        self.logins: list[tuple[str, bool, bool]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        """Keep the message."""
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))
        self.encrypted.append(encrypted(server, session))
        return "250 OK"


class Accounts:
    """aiosmtpd's authenticator: one user and password; every attempt is noted in the inbox."""

    def __init__(self, inbox: Inbox, user: str, password: str) -> None:
        """Accept only `user` with `password`."""
        self.inbox, self.user, self.password = inbox, user, password

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        """Check a LOGIN or PLAIN attempt."""
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(),
            auth_data.password.decode(),
        ) == (self.user, self.password)
        user = auth_data.login.decode() if isinstance(auth_data, LoginPassword) else "?"
        self.inbox.logins.append((user, ok, encrypted(server, session)))
        return AuthResult(success=ok, handled=False)


def _auth_kwargs(inbox: Inbox, login: tuple[str, str] | None) -> dict[str, Any]:
    """Controller options for a server that requires AUTH (only over TLS, aiosmtpd's default)."""
    if login is None:
        return {}
    return {"authenticator": Accounts(inbox, *login), "auth_required": True}


@contextmanager
def starttls_server(
    folder: Path, login: tuple[str, str] | None = None
) -> Iterator[tuple[Inbox, int, Path]]:
    """An SMTP server on loopback that requires STARTTLS (and with `login`, AUTH after it):
    its inbox, port and CA file."""
    cert, key = certificate(folder)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
        **_auth_kwargs(inbox, login),
    )  # fmt: skip
    controller.start()
    try:
        yield inbox, port, cert
    finally:
        controller.stop()


@contextmanager
def implicit_tls_server(
    folder: Path, login: tuple[str, str] | None = None
) -> Iterator[tuple[Inbox, int, Path]]:
    """An SMTP server on loopback speaking TLS from the first byte (port 465 style), with
    `login` requiring AUTH: its inbox, port and CA file."""
    cert, key = certificate(folder)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    port = free_port()
    extra = _auth_kwargs(inbox, login)
    if extra:  # aiosmtpd counts only STARTTLS as TLS; this session is encrypted from the start
        extra.update(auth_require_tls=False, auth_required=False)  # (it warns of "required")
    controller = Controller(inbox, hostname="127.0.0.1", port=port, ssl_context=context, **extra)
    controller.start()
    try:
        yield inbox, port, cert
    finally:
        controller.stop()


@contextmanager
def plain_server(login: tuple[str, str] | None = None) -> Iterator[tuple[Inbox, int]]:
    """An SMTP server on loopback that offers no TLS at all (with `login`, AUTH in clear,
    which aiosmtpd then allows: the client must be the one to refuse)."""
    inbox = Inbox()
    port = free_port()
    extra: dict[str, Any] = {}
    if login is not None:
        extra = {"authenticator": Accounts(inbox, *login), "auth_require_tls": False}
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **extra)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()
