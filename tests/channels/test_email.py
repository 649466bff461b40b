"""The email channel through the demo's real SMTP server (aiosmtpd)."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest
import requests

from demo_backoffice import DemoBackOffice
from worker.channels import Channel, DeliveryError, PermanentDeliveryError
from worker.channels.email import build_message, message_id

from .conftest import OFFICE, ChannelFactory
from .factories import PDF, attachment, envelope

MAILBOX = f"{OFFICE}@backoffice.test"


def email_channel(
    backoffice: DemoBackOffice, make_channel: ChannelFactory, **options: Any
) -> Channel:
    """An email channel to the demo's SMTP server and OFFICE's mailbox."""
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": backoffice.smtp_port,
        "sender": "antraege@bridge.example.test",
        "to": MAILBOX,
        "timeout_s": 5,
    }
    values.update(options)
    return make_channel("email", **values)


def test_sends_german_case_mail_with_attachment(
    backoffice: DemoBackOffice, make_channel: ChannelFactory, http: requests.Session
) -> None:
    env = envelope(payment={"status": "PAYED", "amount": "35.00", "currency": "EUR"})
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
    assert "  keeper:\n    first_name: Erika\n" in text
    assert "      postal_code: 61250" in text
    assert "    birth_date: 01.04.1980" in text
    assert "    main_breeds:\n      - Labrador\n      - Pudel" in text
    assert "  tax_reduction_requested: nein" in text


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
