"""The email channel through the demo's real SMTP server (aiosmtpd)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from demo_backoffice import DemoBackOffice
from integrations.channels import Channel, DeliveryError, PermanentDeliveryError
from integrations.channels.email import build_message, message_id
from schemas import SCHEMAS
from tests.schemas.samples import SAMPLE_OPTIONS, dog_registration_payload, traffic_order_payload
from tests.tls_support import implicit_tls_server, starttls_server

from .conftest import OFFICE, ChannelFactory
from .factories import PDF, attachment, envelope

MAILBOX = f"{OFFICE}@backoffice.test"


def email_channel(
    backoffice: DemoBackOffice, make_channel: ChannelFactory, **options: Any
) -> Channel:
    """An email channel to the demo's SMTP server and OFFICE's mailbox.

    The demo's server on loopback speaks no TLS, so plain SMTP is asked for explicitly.
    """
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": backoffice.smtp_port,
        "tls": "insecure",
        "sender": "antraege@bridge.example.test",
        "to": MAILBOX,
        "timeout_s": 5,
    }
    values.update(options)
    return make_channel("email", **values)


def test_sends_german_case_mail_with_attachment(
    backoffice: DemoBackOffice, make_channel: ChannelFactory, http: requests.Session
) -> None:
    data = SCHEMAS.get("dog-registration@1").validate(dog_registration_payload(), SAMPLE_OPTIONS)
    env = envelope(
        payment={"status": "PAYED", "amount": "35.00", "currency": "EUR"}, data=data.data
    )
    receipt = email_channel(backoffice, make_channel).deliver(env, http)

    assert receipt.case_number is None
    [case] = backoffice.cases(OFFICE)
    assert case["format"] == "email"
    assert case["delivery_id"] == env.delivery_id
    assert case["reference"] == "US-2026-000123"
    assert case["service"] == "Hund anmelden"
    [sent] = case["attachments"]
    assert sent["filename"] == "kaufvertrag.pdf"
    assert sent["sha256"] == hashlib.sha256(PDF).hexdigest()
    mail = backoffice.document(OFFICE, env.delivery_id)
    assert mail["subject"] == "Neuer Antrag US-2026-000123: Hund anmelden"
    assert mail["message_id"] == f"<{env.delivery_id}@formcycle-bridge>"
    text = mail["text"]
    assert "Referenz:       US-2026-000123" in text
    assert "Leistung:       Hund anmelden (LeiKa 99102013104000)" in text
    assert "Gemeinde:       Usingen (AGS 06434011)" in text
    assert "Eingegangen am: 02.03.2026, 10:30 Uhr" in text  # 09:30 UTC is 10:30 in Hesse
    assert "Zahlung:        bezahlt (35,00 EUR)" in text
    assert f"Zustellungs-ID: {env.delivery_id}" in text
    # Clerks read the schema's German titles and values, never the data's keys.
    assert "  Halterin oder Halter:\n    Vorname: Erika\n" in text
    assert "      Postleitzahl: 61267\n" in text
    assert "    Geburtsdatum: 15.03.1986\n" in text
    assert "    Geschlecht: männlich (Rüde)\n" in text
    assert "    Mischling: Nein\n" in text
    assert "  Einwilligung in die Datenverarbeitung: Ja\n" in text
    for key in ("first_name", "keeper", "postal_code", "male", "privacy_consent", "True"):
        assert key not in text


def test_traffic_order_mail_names_choices_and_times_in_german(
    backoffice: DemoBackOffice, make_channel: ChannelFactory, http: requests.Session
) -> None:
    payload = traffic_order_payload(reason="construction")
    data = SCHEMAS.get("traffic-order@1").validate(payload, SAMPLE_OPTIONS).data
    env = envelope(
        service="traffic-order",
        service_title="Verkehrsrechtliche Anordnung",
        schema="traffic-order@1",
        data=data,
        flags={},
    )
    email_channel(backoffice, make_channel).deliver(env, http)

    text = backoffice.document(OFFICE, env.delivery_id)["text"]
    assert "  Anlass: Baustelle\n" in text
    assert "  Ort der Zone:\n" in text
    assert "    Straßenseite: gerade Hausnummern\n" in text
    assert "  Zeitraum:\n    Beginn: 15.06.2026 00:00\n    Ende: 29.06.2026 23:59\n" in text
    assert "    Art der Sperrung: Gehweg\n" in text
    for key in ("construction", "even", "side", "reason", "footpath", "2026-06-15"):
        assert key not in text


def test_dangerous_dog_note_is_german(
    backoffice: DemoBackOffice, make_channel: ChannelFactory, http: requests.Session
) -> None:
    env = envelope(flags={"dangerous_dog": True, "dangerous_breeds": ["Rottweiler"]})
    email_channel(backoffice, make_channel).deliver(env, http)

    text = backoffice.document(OFFICE, env.delivery_id)["text"]
    assert "Hinweise:\n  - Rasse nach § 2 HundeVO gelistet (Rottweiler)" in text
    assert "dangerous_dog" not in text


def test_same_delivery_twice_is_one_case(
    backoffice: DemoBackOffice, make_channel: ChannelFactory, http: requests.Session
) -> None:
    channel = email_channel(backoffice, make_channel)
    env = envelope()
    channel.deliver(env, http)
    channel.deliver(envelope(delivery_id=env.delivery_id, attempt=2), http)

    [case] = backoffice.cases(OFFICE)
    assert case["duplicate_count"] == 1
    assert backoffice.received_ids(OFFICE) == [env.delivery_id, env.delivery_id]


def test_attachment_without_content_is_listed_with_its_link(
    backoffice: DemoBackOffice, make_channel: ChannelFactory, http: requests.Session
) -> None:
    linked = attachment(b"E" * 300, filename="lageplan.pdf", inline_content=False)
    env = envelope(attachments=[linked])
    email_channel(backoffice, make_channel).deliver(env, http)

    [case] = backoffice.cases(OFFICE)
    assert case["attachments"] == []
    text = backoffice.document(OFFICE, env.delivery_id)["text"]
    assert "Anhänge zum Abruf" in text
    assert f"Abruf: {linked.fetch_url}" in text
    assert f"SHA-256: {linked.sha256}" in text


@pytest.mark.parametrize("code", [421, 450, 451, 452])
def test_smtp_4xx_is_transient(
    code: int, backoffice: DemoBackOffice, make_channel: ChannelFactory, http: requests.Session
) -> None:
    backoffice.set_fault(OFFICE, "status", status=code)
    with pytest.raises(DeliveryError) as info:
        email_channel(backoffice, make_channel).deliver(envelope(), http)

    assert not isinstance(info.value, PermanentDeliveryError)
    assert info.value.message.startswith(f"SMTP {code}")


@pytest.mark.parametrize("code", [550, 553, 554])
def test_smtp_5xx_is_permanent(
    code: int, backoffice: DemoBackOffice, make_channel: ChannelFactory, http: requests.Session
) -> None:
    backoffice.set_fault(OFFICE, "status", status=code)
    with pytest.raises(PermanentDeliveryError) as info:
        email_channel(backoffice, make_channel).deliver(envelope(), http)

    assert info.value.message.startswith(f"SMTP {code}")
    assert backoffice.cases() == []


def test_unreachable_mail_server_is_transient(
    closed_port: int, make_channel: ChannelFactory, http: requests.Session
) -> None:
    channel = make_channel(
        "email",
        host="127.0.0.1",
        port=closed_port,
        sender="antraege@bridge.example.test",
        to=MAILBOX,
        timeout_s=2,
    )
    with pytest.raises(DeliveryError) as info:
        channel.deliver(envelope(), http)

    assert not isinstance(info.value, PermanentDeliveryError)


def test_hanging_mail_server_times_out(
    backoffice: DemoBackOffice, make_channel: ChannelFactory, http: requests.Session
) -> None:
    backoffice.set_fault(OFFICE, "hang", count=1)
    started = time.monotonic()
    with pytest.raises(DeliveryError) as info:
        email_channel(backoffice, make_channel, timeout_s=0.5).deliver(envelope(), http)

    assert time.monotonic() - started < 5
    assert not isinstance(info.value, PermanentDeliveryError)


def test_message_headers() -> None:
    env = envelope(delivery_id="0b7c1e0e-4b7e-4c59-9d7f-2f0f3c1a9e11")
    msg = build_message(env, "antraege@bridge.example.test", MAILBOX)

    assert msg["Message-ID"] == "<0b7c1e0e-4b7e-4c59-9d7f-2f0f3c1a9e11@formcycle-bridge>"
    assert msg["Subject"] == "Neuer Antrag US-2026-000123: Hund anmelden"
    assert msg["X-Bridge-Reference"] == "US-2026-000123"
    assert msg["To"] == MAILBOX
    assert message_id("a b/c") == "<a-b-c@formcycle-bridge>"


def _to(port: int, **options: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": port,
        "sender": "antraege@bridge.example.test",
        "to": MAILBOX,
        "timeout_s": 5,
        **options,
    }


def test_by_default_a_server_without_starttls_gets_nothing(
    backoffice: DemoBackOffice, make_channel: ChannelFactory, http: requests.Session
) -> None:
    """The case is never sent in clear: the delivery fails and the mailbox stays empty."""
    channel = make_channel("email", **_to(backoffice.smtp_port))
    with pytest.raises(DeliveryError, match="STARTTLS"):
        channel.deliver(envelope(), http)
    assert backoffice.cases(OFFICE) == []


def test_starttls_with_the_towns_own_ca_delivers_encrypted(
    make_channel: ChannelFactory, http: requests.Session, tmp_path: Path
) -> None:
    with starttls_server(tmp_path) as (inbox, port, ca):
        make_channel("email", **_to(port, ca_file=str(ca))).deliver(envelope(), http)
        # The old flag still means STARTTLS with certificate checks.
        make_channel("email", **_to(port, ca_file=str(ca), starttls=True)).deliver(envelope(), http)
    assert inbox.encrypted == [True, True]
    assert inbox.messages[0][1]["Subject"].startswith("Neuer Antrag US-2026-000123")


def test_a_certificate_nobody_vouches_for_is_refused(
    make_channel: ChannelFactory, http: requests.Session, tmp_path: Path
) -> None:
    with (
        starttls_server(tmp_path) as (inbox, port, _),
        pytest.raises(PermanentDeliveryError, match="Zertifikat"),
    ):
        make_channel("email", **_to(port)).deliver(envelope(), http)
    assert inbox.messages == []


LOGIN = ("antraege@usingen.test", "Postfach-Passwort-1")


def test_logs_in_after_starttls_and_implicit_tls(
    make_channel: ChannelFactory, http: requests.Session, tmp_path: Path
) -> None:
    """A server that requires AUTH gets the office's login, only once the session is encrypted,
    with STARTTLS and with implicit TLS; a wrong password is a permanent error, nothing sent."""
    secrets = {"BRIDGE_SMTP_USER_USINGEN": LOGIN[0], "BRIDGE_SMTP_PASSWORD_USINGEN": LOGIN[1]}
    login = {
        "username_env": "BRIDGE_SMTP_USER_USINGEN",
        "password_env": "BRIDGE_SMTP_PASSWORD_USINGEN",
    }
    with starttls_server(tmp_path, login=LOGIN) as (inbox, port, ca):
        options = _to(port, ca_file=str(ca), **login)
        make_channel("email", with_secrets=secrets, **options).deliver(envelope(), http)
        wrong = {**secrets, "BRIDGE_SMTP_PASSWORD_USINGEN": "falsch"}
        with pytest.raises(PermanentDeliveryError):
            make_channel("email", with_secrets=wrong, **options).deliver(envelope(), http)
    (first, *refused) = inbox.logins  # smtplib tries each mechanism with the wrong password
    assert first == (LOGIN[0], True, True)
    assert refused
    assert all(not ok and encrypted for _, ok, encrypted in refused)
    assert inbox.encrypted == [True]
    with implicit_tls_server(tmp_path, login=LOGIN) as (inbox, port, ca):
        options = _to(port, ca_file=str(ca), tls="implicit", **login)
        make_channel("email", with_secrets=secrets, **options).deliver(envelope(), http)
    assert inbox.logins == [(LOGIN[0], True, True)]
    assert inbox.encrypted == [True]
