"""SMTP connections that are encrypted unless plain text was asked for: STARTTLS, implicit TLS.

Case mails carry a whole application and fetch links; the digest names cases. Both go out
over TLS with the certificate checked (`ssl.create_default_context`, optionally against a
town's own CA file); only the mode `insecure` talks plain SMTP, and check-config warns of it.
A login (user and password) is sent only inside an encrypted session, never in clear.
"""

from __future__ import annotations

import smtplib
import ssl
from typing import Final

#: The modes an e-mail channel (`tls`) and the digest (BRIDGE_SMTP_TLS) may name.
TLS_MODES: Final = ("starttls", "implicit", "insecure")
DEFAULT_TLS: Final = "starttls"


class StartTLSMissing(smtplib.SMTPException):
    """The server offers no STARTTLS, so nothing is sent rather than sent in clear."""


class PlainLogin(smtplib.SMTPException):
    """A login was asked for over a plain connection: the password is never sent in clear."""


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Certificate and host name checked; against `ca_file` alone when given, else the system's."""
    return ssl.create_default_context(cafile=ca_file or None)


def connect(
    host: str,
    port: int,
    *,
    tls: str,
    ca_file: str | None,
    timeout: float,
    login: tuple[str, str] | None = None,
) -> smtplib.SMTP:
    """An SMTP session ready for MAIL FROM: encrypted unless `tls` is "insecure", logged in
    with `login` (user, password) once it is encrypted.

    Raises PlainLogin (before connecting) when a login is asked for without TLS,
    StartTLSMissing when STARTTLS was required but not offered, ssl errors for a certificate
    that does not check out, SMTPAuthenticationError for refused credentials, smtplib/OSError
    for everything else.
    """
    if login is not None and tls not in ("starttls", "implicit"):
        raise PlainLogin("a login needs STARTTLS or implicit TLS")
    smtp: smtplib.SMTP
    if tls == "implicit":
        smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=tls_context(ca_file))
    else:
        smtp = smtplib.SMTP(host, port, timeout=timeout)
    try:
        smtp.ehlo()
        if tls == "starttls":
            if not smtp.has_extn("starttls"):
                raise StartTLSMissing("the mail server offers no STARTTLS")
            smtp.starttls(context=tls_context(ca_file))
            smtp.ehlo()
        if login is not None:
            # Checked on the socket too: the password goes only into an encrypted session.
            if not isinstance(smtp.sock, ssl.SSLSocket):  # pragma: no cover - guarded above
                raise PlainLogin("the session is not encrypted")
            smtp.login(*login)
    except BaseException:
        smtp.close()
        raise
    return smtp
