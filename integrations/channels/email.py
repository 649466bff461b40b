"""The email channel: a German case summary with the attachments, to the office's mailbox (SMTP).

Clerks read the summary, so the data appear under the schema's German titles with German
values (`schemas.labels.describe`), never under the keys the machine channels send.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
import re
import smtplib
import ssl
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import requests
from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from integrations.channels.base import (
    Channel,
    ChannelOptions,
    DeliveryError,
    Envelope,
    EnvelopeAttachment,
    EnvName,
    PermanentDeliveryError,
    Receipt,
    channels,
    inline,
    jsonable,
    utc,
)
from integrations.smtp import DEFAULT_TLS, TLS_MODES, StartTLSMissing, connect
from schemas.labels import describe, flag_notes
from schemas.options import LOCAL_TZ

MESSAGE_ID_DOMAIN = "formcycle-bridge"
DEFAULT_INLINE_LIMIT = 10 * 1024 * 1024
# Control characters would break header encoding of a citizen's file name.
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MEDIA_TYPE = re.compile(r"^([A-Za-z0-9!#$&^_.+-]+)/([A-Za-z0-9!#$&^_.+-]+)\Z")
PAYMENT_STATUS_DE = {
    "INITIAL": "offen",
    "PAYED": "bezahlt",
    "BOOKED": "bezahlt",
    "FAILED": "fehlgeschlagen",
    "CANCELED": "abgebrochen",
}


class EmailOptions(ChannelOptions):
    """Options of the email channel."""

    host = fields.String(required=True, validate=validate.Length(min=1, max=253))
    port = fields.Integer(load_default=25, validate=validate.Range(min=1, max=65535))
    # "starttls" unless the office's server needs "implicit" (port 465) or, only for a server
    # on loopback such as the demo's, "insecure" (plain SMTP; check-config warns of it).
    tls = fields.String(load_default=None, validate=validate.OneOf(TLS_MODES))
    # Before `tls` there was only this flag; true still means STARTTLS (checked certificate).
    starttls = fields.Boolean(load_default=None)
    # A PEM file with the CA that signed the server's certificate (a town's own CA).
    ca_file = fields.String(load_default=None, validate=validate.Length(min=1, max=4096))
    username_env = EnvName(load_default=None)
    password_env = EnvName(load_default=None)
    sender = fields.Email(required=True)
    to = fields.Email(required=True)
    timeout_s = fields.Float(load_default=30.0, validate=validate.Range(min=0.01, max=600))
    inline_limit_bytes = fields.Integer(
        load_default=DEFAULT_INLINE_LIMIT, validate=validate.Range(min=0, max=1024**3)
    )

    @validates_schema
    def _credentials(self, data: dict[str, Any], **kwargs: Any) -> None:
        """Credentials come in pairs and never travel in clear text."""
        user, password = data.get("username_env"), data.get("password_env")
        if bool(user) != bool(password):
            raise ValidationError(
                "username_env and password_env must be given together", "password_env"
            )
        if user and _mode(data) == "insecure":
            raise ValidationError(
                'needs tls = "starttls" or "implicit": credentials are never sent unencrypted',
                "username_env",
            )

    @validates_schema
    def _tls(self, data: dict[str, Any], **kwargs: Any) -> None:
        """Plain SMTP only by name; the old flag may not say otherwise; the CA file exists."""
        tls, starttls = data.get("tls"), data.get("starttls")
        if starttls is False and tls is None:
            raise ValidationError(
                'starttls = false no longer means plain SMTP: set tls = "insecure" for a '
                "server without TLS (only on loopback; check-config warns), or remove it",
                "starttls",
            )
        if starttls is not None and tls is not None and starttls != (tls == "starttls"):
            raise ValidationError(f"contradicts tls = {tls!r}; remove starttls", "starttls")
        ca_file = data.get("ca_file")
        if ca_file and not Path(ca_file).is_file():
            raise ValidationError("no such file", "ca_file")

    @post_load
    def _resolve(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data["tls"] = _mode(data)
        return data


def _mode(data: Mapping[str, Any]) -> str:
    """The TLS mode the options ask for: `tls`, else STARTTLS (also what starttls = true means)."""
    return str(data.get("tls") or DEFAULT_TLS)


def message_id(delivery_id: str) -> str:
    """`<delivery-id@formcycle-bridge>`: the same for every retry, so mail systems drop repeats."""
    local = re.sub(r"[^A-Za-z0-9._-]", "-", delivery_id) or "delivery"
    return f"<{local}@{MESSAGE_ID_DOMAIN}>"


def _local_time(moment: dt.datetime) -> str:
    return utc(moment).astimezone(LOCAL_TZ).strftime("%d.%m.%Y, %H:%M Uhr")


def data_lines(schema_key: str, data: Mapping[str, Any]) -> list[str]:
    """The application data as indented "Feld: Wert" lines under their German section titles."""
    lines: list[str] = []
    sections: tuple[str, ...] = ()
    for path, value in describe(schema_key, data):
        *parents, label = path
        common = 0
        while common < min(len(parents), len(sections)) and parents[common] == sections[common]:
            common += 1
        for depth in range(common, len(parents)):
            lines.append(f"{'  ' * (depth + 1)}{parents[depth]}:")
        pad = "  " * (len(parents) + 1)
        # A value spanning lines stays inside its indented block.
        text = value.replace("\r\n", "\n").replace("\n", "\n" + pad + "  ")
        lines.append(f"{pad}{label}: {text}")
        sections = tuple(parents)
    return lines


def payment_text(payment: Mapping[str, Any] | None) -> str:
    """The payment status in German, with the amount when known."""
    if payment is None:
        return "keine Gebühr"
    status = str(payment.get("status") or "")
    text = PAYMENT_STATUS_DE.get(status.upper(), status or "unbekannt")
    amount = payment.get("amount")
    if amount is not None:
        try:
            euros = f"{Decimal(str(amount)):.2f}".replace(".", ",")
            text += f" ({euros} {payment.get('currency') or 'EUR'})"
        except InvalidOperation:
            pass
    if payment.get("transaction_reference"):
        text += f", Kassenzeichen {payment['transaction_reference']}"
    if payment.get("paid_at"):
        text += f", am {_local_time(_as_datetime(payment['paid_at']))}"
    return text


def _as_datetime(value: Any) -> dt.datetime:
    """A datetime, or its ISO text as envelopes may carry it."""
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def notice_summary(envelope: Envelope) -> str:
    """The German body of a payment notice to the cash office (no personal data of the citizen)."""
    payment = envelope.payment or {}
    amount = payment.get("amount")
    euros = f"{Decimal(str(amount)):.2f}".replace(".", ",") if amount is not None else "?"
    paid_at = payment.get("paid_at")
    lines = [
        "Guten Tag,",
        "",
        "für einen Online-Antrag ist eine Zahlung eingegangen.",
        "",
        f"Referenz:       {envelope.reference}",
        f"Leistung:       {envelope.service_title} (LeiKa {envelope.leika or 'unbekannt'})",
        f"Gemeinde:       {envelope.municipality.get('name') or '?'} "
        f"(AGS {envelope.municipality.get('ags', '?')})",
        f"Kassenzeichen:  {payment.get('transaction_reference') or 'nicht angegeben'}",
        f"Betrag:         {euros} {payment.get('currency') or 'EUR'}",
        f"Zahlart:        {payment.get('method') or 'nicht angegeben'}",
        f"Bezahlt am:     {_local_time(_as_datetime(paid_at)) if paid_at else 'unbekannt'}",
        f"Verwendungszweck: {payment.get('purpose') or ''}",
        f"Transaktion:    {payment.get('provider') or '?'} {payment.get('transaction_id') or ''}",
        f"Zustellungs-ID: {envelope.delivery_id}",
        "",
        "Diese Nachricht wurde automatisch erstellt.",
    ]
    return "\n".join(lines) + "\n"


def summary(envelope: Envelope, links: list[EnvelopeAttachment]) -> str:
    """The German plain-text body of the case mail."""
    municipality = envelope.municipality
    lines = [
        "Guten Tag,",
        "",
        "über das Online-Portal ist ein neuer Antrag für Sie eingegangen.",
        "",
        f"Referenz:       {envelope.reference}",
        f"Leistung:       {envelope.service_title} (LeiKa {envelope.leika or 'unbekannt'})",
        f"Gemeinde:       {municipality.get('name') or '?'} (AGS {municipality.get('ags', '?')})",
        f"Zustellpunkt:   {envelope.office.get('name') or envelope.office.get('id', '')}",
        f"Eingegangen am: {_local_time(envelope.received_at)}",
        f"Zahlung:        {payment_text(envelope.payment)}",
        f"Zustellungs-ID: {envelope.delivery_id}",
        f"Datenschema:    {envelope.schema}",
        "",
        "Angaben:",
        *data_lines(envelope.schema, jsonable(envelope.data)),
    ]
    notes = flag_notes(envelope.schema, envelope.flags)
    if notes:
        lines += ["", "Hinweise:", *(f"  - {note}" for note in notes)]
    attached = len(envelope.attachments) - len(links)
    lines += ["", f"Anhänge: {attached} beigefügt" if attached else "Anhänge: keine beigefügt"]
    if links:
        lines.append("Anhänge zum Abruf (zu groß für die E-Mail):")
        for a in links:
            lines.append(f"  - {_filename(a)} ({a.size} Bytes)")
            lines.append(f"    Abruf: {a.fetch_url or 'nicht verfügbar'}")
            lines.append(f"    SHA-256: {a.sha256}")
    lines += [
        "",
        "Diese Nachricht wurde automatisch erstellt. Wird sie erneut zugestellt, trägt sie",
        "dieselbe Message-ID und kann als Dublette verworfen werden.",
    ]
    return "\n".join(lines) + "\n"


def _filename(attachment: EnvelopeAttachment) -> str:
    return CONTROL.sub("_", attachment.filename) or "anhang"


def build_message(
    envelope: Envelope, sender: str, to: str, inline_limit_bytes: int | None = None
) -> EmailMessage:
    """The case mail: German subject and summary, attachments attached or listed as links."""
    attach = [a for a in envelope.attachments if inline(a, inline_limit_bytes)]
    links = [a for a in envelope.attachments if not inline(a, inline_limit_bytes)]
    msg = EmailMessage(policy=email.policy.SMTP)
    if envelope.kind == "payment-notice":
        amount = (envelope.payment or {}).get("amount") or ""
        msg["Subject"] = (
            f"Zahlungseingang {envelope.reference}: {str(amount).replace('.', ',')} EUR "
            f"({envelope.service_title})"
        )
    else:
        msg["Subject"] = f"Neuer Antrag {envelope.reference}: {envelope.service_title}"
    msg["From"] = sender
    msg["To"] = to
    msg["Date"] = email.utils.format_datetime(dt.datetime.now(dt.UTC))
    msg["Message-ID"] = message_id(envelope.delivery_id)
    # Machine-readable copies for mail rules and the back office's own import.
    msg["X-Bridge-Reference"] = envelope.reference
    msg["X-Bridge-Delivery-Id"] = envelope.delivery_id
    msg["X-Bridge-Service"] = envelope.service
    msg["X-Bridge-LeiKa"] = envelope.leika
    # The version the data below follow (an office may be pinned to an older one).
    msg["X-Bridge-Schema"] = envelope.schema
    # Quoted-printable keeps the mail 7-bit clean for servers without 8BITMIME.
    body = (
        notice_summary(envelope) if envelope.kind == "payment-notice" else summary(envelope, links)
    )
    msg.set_content(body, cte="quoted-printable")
    for a in attach:
        assert a.content is not None  # inline() is only true with content
        match = MEDIA_TYPE.match(a.content_type.split(";", 1)[0].strip().lower())
        maintype, subtype = match.groups() if match else ("application", "octet-stream")
        msg.add_attachment(a.content, maintype=maintype, subtype=subtype, filename=_filename(a))
    return msg


def _smtp_error(code: int) -> DeliveryError:
    if 400 <= code < 500:
        return DeliveryError(
            f"SMTP {code}: Der Mailserver hat die Nachricht vorübergehend abgewiesen."
        )
    if 500 <= code < 600:
        return PermanentDeliveryError(f"SMTP {code}: Der Mailserver hat die Nachricht abgelehnt.")
    return DeliveryError(f"SMTP {code}: unerwartete Antwort des Mailservers.")


@channels.register("email")
class EmailChannel(Channel):
    """Send the case to the office's mailbox; `Message-ID` derives from the delivery id."""

    options_schema = EmailOptions

    def deliver(self, envelope: Envelope, http: requests.Session) -> Receipt:
        """Send one mail; SMTP 4xx and connection problems retry, 5xx is permanent."""
        self.check_options()
        username = self.secret("username_env")
        password = self.secret("password_env")
        o = self.options
        msg = build_message(envelope, o["sender"], o["to"], o["inline_limit_bytes"])
        try:
            smtp = connect(
                o["host"], o["port"], tls=o["tls"], ca_file=o["ca_file"], timeout=o["timeout_s"],
                login=(username, password) if username is not None and password is not None else None,
            )  # fmt: skip
            with smtp:
                smtp.send_message(msg, from_addr=o["sender"], to_addrs=[o["to"]])
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise _smtp_error(max(codes) if codes else 550) from None
        except StartTLSMissing:
            # Never in clear: a server that stops offering STARTTLS may be stripped by someone
            # in between, and a town that truly has none must say tls = "insecure".
            raise PermanentDeliveryError(
                "Der Mailserver bietet kein STARTTLS an; der Antrag wurde nicht unverschlüsselt "
                "gesendet."
            ) from None
        except smtplib.SMTPNotSupportedError:
            raise PermanentDeliveryError(
                "Der Mailserver unterstützt STARTTLS oder die Anmeldung nicht."
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise _smtp_error(exc.smtp_code) from None
        except ssl.SSLCertVerificationError:
            raise PermanentDeliveryError(
                "Das TLS-Zertifikat des Mailservers ist nicht vertrauenswürdig."
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            # Refused connections, timeouts, resets and disconnects: try again later.
            raise DeliveryError(
                f"Der Mailserver ist nicht erreichbar ({type(exc).__name__})."
            ) from None
        return Receipt()
