"""SMTP sessions: credentials go only over an encrypted session, never in clear."""

from __future__ import annotations

from pathlib import Path

import pytest

from integrations.smtp import PlainLogin, connect
from tests.tls_support import plain_server, starttls_server

LOGIN = ("bruecke", "Digest-Passwort-123")


def test_a_login_is_refused_over_a_plain_connection() -> None:
    """Asked to log in without TLS, the bridge sends no AUTH at all (even to a server that
    would accept it in clear) and nothing else either."""
    with plain_server(login=LOGIN) as (inbox, port), pytest.raises(PlainLogin):
        connect("127.0.0.1", port, tls="insecure", ca_file=None, timeout=5, login=LOGIN)
    assert inbox.logins == []
    assert inbox.messages == []


def test_the_login_follows_starttls(tmp_path: Path) -> None:
    """With STARTTLS the login is sent inside the encrypted session."""
    with (
        starttls_server(tmp_path, login=LOGIN) as (inbox, port, ca),
        connect("127.0.0.1", port, tls="starttls", ca_file=str(ca), timeout=5, login=LOGIN) as smtp,
    ):
        smtp.sendmail("a@usingen.test", ["b@usingen.test"], b"Subject: x\r\n\r\nx\r\n")
    assert inbox.logins == [(LOGIN[0], True, True)]
    assert inbox.encrypted == [True]
