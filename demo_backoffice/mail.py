"""The demo back office's SMTP side: a case mail becomes a case of the recipient's office."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer  # noqa: N811 - aiosmtpd's own alias
from aiosmtpd.smtp import Envelope as SMTPEnvelope
from aiosmtpd.smtp import Session as SMTPSession

from demo_backoffice.documents import DocumentError, read_mail
from demo_backoffice.ledger import Case, Ledger, now_iso
from demo_backoffice.web import OFFICE


def office_of(address: str) -> str:
    """The office a mailbox belongs to: the local part, e.g. usingen-steueramt@backoffice.test."""
    return address.rsplit("@", 1)[0].lower()


class MailHandler:
    """aiosmtpd hooks: faults at RCPT, filing at DATA (deduplicated by Message-ID)."""

    def __init__(self, ledger: Ledger, hang_s: float, stopping: threading.Event) -> None:
        """Share the ledger with the HTTP side."""
        self.ledger = ledger
        self.hang_s = hang_s
        self.stopping = stopping

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self,
        server: SMTPServer,
        session: SMTPSession,
        envelope: SMTPEnvelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        """Accept a mailbox of a plausible office, unless a fault says otherwise."""
        office = office_of(address)
        if not OFFICE.match(office):
            return "550 5.1.1 Unbekanntes Postfach"
        fault = self.ledger.take_fault(office)
        if fault is not None:
            if fault.mode == "hang":
                deadline = asyncio.get_running_loop().time() + self.hang_s
                while not self.stopping.is_set() and asyncio.get_running_loop().time() < deadline:
                    await asyncio.sleep(0.05)
                return "421 4.3.2 Demo: keine Antwort"
            if fault.mode == "refuse":
                return "421 4.3.2 Demo: Dienst nicht verfuegbar"
            if fault.mode == "429":
                return "451 4.7.1 Demo: zu viele Nachrichten, bitte spaeter"
            if fault.mode == "status" and fault.status is not None and fault.status >= 400:
                return f"{fault.status} Demo: simulierter Fehler"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTPServer, session: SMTPSession, envelope: SMTPEnvelope
    ) -> str:
        """File the mail as a case for every recipient office."""
        content = envelope.original_content or b""
        try:
            mail = read_mail(content)
        except DocumentError:
            return "554 5.6.0 Keine Fallnachricht"
        for address in envelope.rcpt_tos:
            office = office_of(address)
            self.ledger.arrived(office, mail.delivery_id)
            self.ledger.file(
                Case(
                    office=office,
                    delivery_id=mail.delivery_id,  # derived from the Message-ID
                    format="email",
                    reference=mail.reading.reference,
                    service=mail.reading.service,
                    case_number="",
                    received_at=now_iso(),
                    signature_valid=None,
                    attachments=mail.reading.attachments,
                    document=mail.reading.document,
                )
            )
        return "250 Message accepted"


class DemoSMTPController(Controller):
    """aiosmtpd's threaded controller, able to listen on port 0 (a free port)."""

    def _trigger_server(self) -> None:
        # aiosmtpd connects to self.port to finish starting; with port 0 that must be the real one.
        server = cast(Any, self.server)
        if self.port == 0 and server is not None:
            self.port = int(server.sockets[0].getsockname()[1])
        super()._trigger_server()  # type: ignore[no-untyped-call]
