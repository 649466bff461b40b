"""The daily digest: German mail per recipient over real SMTP, once a day, sections fail alone."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask.testing import FlaskClient
from sqlalchemy import select, update

from domain.accounts.scopes import Scope
from domain.settings import Settings, SettingsError
from harness.ports import free_port
from schemas.options import LOCAL_TZ
from store.engine import Store
from store.models import DigestSent, Payment
from tests.admin_support import fail_all, post
from tests.conftest import bridge_cli
from tests.tls_support import implicit_tls_server, starttls_server
from worker import digest


class Inbox:
    """An aiosmtpd handler keeping every message it is given."""

    def __init__(self) -> None:
        """Nothing received yet."""
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        """Keep the message."""
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server on loopback."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


@pytest.fixture
def environ(environ: dict[str, str], smtp: tuple[Inbox, int]) -> dict[str, str]:
    """Two recipients and the loopback SMTP server (plain, so asked for explicitly)."""
    environ.update(
        BRIDGE_SMTP_TLS="insecure",
        BRIDGE_DIGEST_RECIPIENTS="it@usingen.test, kasse@neu-anspach.test",
        BRIDGE_SMTP_HOST="127.0.0.1",
        BRIDGE_SMTP_PORT=str(smtp[1]),
        BRIDGE_SMTP_FROM="bruecke@usingen.test",
    )
    return environ


def _broken(store: Store, config: Any, now: dt.datetime, scope: Scope) -> digest.Section:
    raise RuntimeError("this section is broken")


def test_digest_once_a_day_and_a_broken_section_does_not_stop_it(
    client: FlaskClient, store: Store, settings: Settings, smtp: tuple[Inbox, int]
) -> None:
    """Each recipient gets one German mail; the same day again sends nothing."""
    inbox, _ = smtp
    post(client)
    post(client)
    post(client, "traffic-order")
    fail_all(store)
    # The sections describe the state at `now`: the present, as when the sweeper sends it.
    now = dt.datetime.now(dt.UTC)
    sections = (_broken, *digest.SECTIONS)
    assert digest.send_once(settings, store, now, sections) is True
    assert sorted(r for rcpt, _ in inbox.messages for r in rcpt) == [
        "it@usingen.test", "kasse@neu-anspach.test",
    ]  # fmt: skip
    message = inbox.messages[0][1]
    today = now.astimezone(LOCAL_TZ).date()
    assert message["Subject"] == f"Brücke: Tagesbericht {today.strftime('%d.%m.%Y')}"
    body = message.get_content()
    assert "Dieser Abschnitt konnte nicht erstellt werden." in body
    assert "Steueramt Usingen: 2 fehlgeschlagen, erste " in body
    assert "Ordnungsamt Neu-Anspach: 1 fehlgeschlagen" in body
    assert "Am längsten wartende Zustellungen" in body
    # Twice the same day (a second sweeper, a restart): nothing more is sent.
    assert digest.send_once(settings, store, now + dt.timedelta(hours=3), sections) is False
    assert len(inbox.messages) == 2
    with store.read() as session:
        assert list(session.scalars(select(DigestSent.day))) == [today]


def test_refused_mail_is_tried_again(
    client: FlaskClient, store: Store, settings: Settings, smtp: tuple[Inbox, int]
) -> None:
    """With the mail server away the day is not marked sent, so the next round tries again."""

    away = replace(settings, smtp_port=free_port())
    now = dt.datetime(2026, 12, 2, 8, 0, tzinfo=dt.UTC)
    assert digest.send_once(away, store, now) is False
    with store.read() as session:
        assert list(session.scalars(select(DigestSent.day))) == []
    assert digest.send_once(settings, store, now) is True
    assert len(smtp[0].messages) == 2


def test_cli_prints_the_digest(client: FlaskClient, environ: dict[str, str]) -> None:
    """`digest --print` shows the German text and sends nothing; its links are absolute,
    from BRIDGE_PUBLIC_URL, so they work from a mail client."""
    public = {**environ, "BRIDGE_PUBLIC_URL": "https://bruecke.usingen.de/"}
    done = bridge_cli(public, "digest", "--print")
    assert done.returncode == 0, done.stderr
    assert "Tagesbericht der Formcycle/Civento-Brücke" in done.stdout
    assert "Fehlgeschlagene Zustellungen je Dienststelle\n" in done.stdout
    assert "https://bruecke.usingen.de/admin/fehler" in done.stdout
    assert "https://bruecke.usingen.de/admin/ " in done.stdout
    assert " /admin" not in done.stdout  # no path without its host


def test_payments_left_open_are_listed(
    client: FlaskClient, store: Store, settings: Settings
) -> None:
    """A fee still open a day after it started is named with case, amount and provider; a
    fresh one is not (the citizen may be on the pay page right now)."""
    old = post(client, "traffic-order")
    fresh = post(client, "traffic-order")
    now = dt.datetime.now(dt.UTC)
    with store.session() as session:
        session.execute(
            update(Payment)
            .where(Payment.submission_id == int(old.rsplit("-", 1)[1]))
            .values(created_at=now - dt.timedelta(days=2))
        )
    section = digest.open_payments(store, settings.config, now)
    assert section.title == "Offene Zahlungen (älter als ein Tag)"
    [line] = section.lines
    assert line.startswith(f"{old}: 35,00 € bei epay21 (ekom21), offen seit ")
    assert fresh not in line


def test_by_default_the_digest_is_never_sent_in_clear(
    environ: dict[str, str], store: Store, smtp: tuple[Inbox, int]
) -> None:
    """Without BRIDGE_SMTP_TLS a server offering no STARTTLS gets nothing; the day stays open."""
    plain = {k: v for k, v in environ.items() if k != "BRIDGE_SMTP_TLS"}
    settings = Settings.from_env(plain)
    assert settings.smtp_tls == "starttls"
    now = dt.datetime(2026, 12, 3, 8, 0, tzinfo=dt.UTC)
    assert digest.send_once(settings, store, now) is False
    assert smtp[0].messages == []
    with store.read() as session:
        assert list(session.scalars(select(DigestSent.day))) == []


def test_the_digest_goes_over_starttls_to_the_towns_ca(
    environ: dict[str, str], store: Store, tmp_path: Path
) -> None:
    with starttls_server(tmp_path) as (inbox, port, ca):
        base = {k: v for k, v in environ.items() if k != "BRIDGE_SMTP_TLS"}
        settings = Settings.from_env({**base, "BRIDGE_SMTP_PORT": str(port)})
        now = dt.datetime(2026, 12, 4, 8, 0, tzinfo=dt.UTC)
        # A certificate nobody vouches for is refused, and the next round tries again.
        assert digest.send_once(settings, store, now) is False
        trusted = replace(settings, smtp_ca_file=str(ca))
        assert digest.send_once(trusted, store, now) is True
    assert inbox.encrypted == [True, True]


LOGIN = ("bruecke@usingen.test", "Digest-Passwort-123")


def test_the_digest_logs_in_over_starttls_and_implicit_tls(
    environ: dict[str, str], store: Store, tmp_path: Path
) -> None:
    """BRIDGE_SMTP_USER and BRIDGE_SMTP_PASSWORD log in once the session is encrypted; a
    refused login sends nothing and leaves the day open for the next round."""
    base = {k: v for k, v in environ.items() if k != "BRIDGE_SMTP_TLS"}
    base.update(BRIDGE_SMTP_USER=LOGIN[0], BRIDGE_SMTP_PASSWORD="falsch")
    now = dt.datetime(2026, 12, 5, 8, 0, tzinfo=dt.UTC)
    with starttls_server(tmp_path, login=LOGIN) as (inbox, port, ca):
        env = {**base, "BRIDGE_SMTP_PORT": str(port), "BRIDGE_SMTP_CA_FILE": str(ca)}
        assert digest.send_once(Settings.from_env(env), store, now) is False
        assert inbox.messages == []
        env["BRIDGE_SMTP_PASSWORD"] = LOGIN[1]
        assert digest.send_once(Settings.from_env(env), store, now) is True
    assert inbox.logins[-1] == (LOGIN[0], True, True)
    assert all(encrypted for _, _, encrypted in inbox.logins)
    assert inbox.encrypted == [True, True]  # one mail per recipient
    with implicit_tls_server(tmp_path, login=LOGIN) as (inbox, port, ca):
        env = {
            **base, "BRIDGE_SMTP_PASSWORD": LOGIN[1], "BRIDGE_SMTP_TLS": "implicit",
            "BRIDGE_SMTP_PORT": str(port), "BRIDGE_SMTP_CA_FILE": str(ca),
        }  # fmt: skip
        assert digest.send_once(Settings.from_env(env), store, now + dt.timedelta(days=1))
    assert inbox.logins == [(LOGIN[0], True, True)]


def test_digest_credentials_come_in_pairs_and_never_in_clear(environ: dict[str, str]) -> None:
    """A user without a password (or the other way round) and a login over plain SMTP are
    refused at start-up, each with its variable named; the password is never shown."""
    with pytest.raises(SettingsError) as user_only:
        Settings.from_env({**environ, "BRIDGE_SMTP_USER": LOGIN[0]})
    assert any(p.startswith("BRIDGE_SMTP_PASSWORD:") for p in user_only.value.problems)
    with pytest.raises(SettingsError) as plain:
        Settings.from_env(
            {**environ, "BRIDGE_SMTP_USER": LOGIN[0], "BRIDGE_SMTP_PASSWORD": LOGIN[1]}
        )  # environ asks for BRIDGE_SMTP_TLS=insecure
    assert any(p.startswith("BRIDGE_SMTP_USER:") for p in plain.value.problems)
    assert LOGIN[1] not in str(plain.value)
    settings = Settings.from_env(
        {k: v for k, v in environ.items() if k != "BRIDGE_SMTP_TLS"}
        | {"BRIDGE_SMTP_USER": LOGIN[0], "BRIDGE_SMTP_PASSWORD": LOGIN[1]}
    )
    assert LOGIN[1] not in repr(settings)
