"""The daily digest e-mail for administrators: failures per office, what waits longest, open payments.

The digest is a list of sections, each a function of its own; one that fails is replaced by
a line saying so and the others still go out (Open Forms #4447). A day's digest is sent once:
the day's row in `digests_sent` is claimed before sending (its primary key lets one of two
sweepers win) and given back if the mail server refused, so the next round tries again.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from domain.config import Config
from domain.payments.payments import to_euros
from domain.settings import Settings
from infra.logs import log_event
from integrations.smtp import connect
from schemas.options import LOCAL_TZ
from store.engine import Store
from store.models import (
    Delivery,
    DeliveryStatus,
    DigestSent,
    Payment,
    PaymentStatus,
    Submission,
    format_reference,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Section:
    """One part of the digest: a heading and its lines."""

    title: str
    lines: list[str]


SectionFn = Callable[[Store, Config, dt.datetime], Section | None]


def _local(moment: dt.datetime) -> str:
    return moment.astimezone(LOCAL_TZ).strftime("%d.%m.%Y %H:%M")


def failures_per_office(store: Store, config: Config, now: dt.datetime) -> Section:
    """Failed deliveries per office: how many, since when, the latest."""
    with store.read() as session:
        rows = session.execute(
            select(
                Delivery.office_id,
                func.count(),
                func.min(Delivery.updated_at),
                func.max(Delivery.updated_at),
            )
            .where(Delivery.status == DeliveryStatus.FAILED)
            .group_by(Delivery.office_id)
            .order_by(Delivery.office_id)
        ).all()
    lines = [
        f"{config.offices[o].name if o in config.offices else o}: {n} fehlgeschlagen, "
        f"erste {_local(first)}, letzte {_local(last)}"
        for o, n, first, last in rows
    ]
    return Section("Fehlgeschlagene Zustellungen je Dienststelle", lines or ["Keine."])


def waiting_longest(store: Store, config: Config, now: dt.datetime) -> Section:
    """The ten pending deliveries waiting longest."""
    with store.read() as session:
        rows = session.execute(
            select(
                Delivery.office_id,
                Delivery.created_at,
                Delivery.attempts,
                Submission.reference_prefix,
                Submission.reference_year,
                Submission.id,
            )
            .join(Submission, Submission.id == Delivery.submission_id)
            .where(Delivery.status == DeliveryStatus.PENDING)
            .order_by(Delivery.created_at)
            .limit(10)
        ).all()
    lines = [
        f"{format_reference(p, y, n)} an "
        f"{config.offices[o].name if o in config.offices else o}: wartet seit {_local(c)}, "
        f"{a} Versuch(e)"
        for o, c, a, p, y, n in rows
    ]
    return Section("Am längsten wartende Zustellungen", lines or ["Keine."])


#: A payment still open after this long is worth an administrator's look in the digest.
OPEN_PAYMENT_AGE = dt.timedelta(days=1)


def open_payments(store: Store, config: Config, now: dt.datetime) -> Section:
    """Payments still open (INITIAL) a day after they started, oldest first, at most twenty.

    Each line names the case, amount, provider and how the last check went, so an
    administrator can see whether the citizen has not paid or the provider does not answer.
    """
    with store.read() as session:
        rows = session.execute(
            select(
                Payment.amount_cents,
                Payment.currency,
                Payment.provider,
                Payment.created_at,
                Payment.last_error,
                Submission.reference_prefix,
                Submission.reference_year,
                Submission.id,
            )
            .join(Submission, Submission.id == Payment.submission_id)
            .where(
                Payment.status == PaymentStatus.INITIAL,
                Payment.created_at <= now - OPEN_PAYMENT_AGE,
            )
            .order_by(Payment.created_at)
            .limit(20)
        ).all()
    lines = [
        f"{format_reference(p, y, n)}: {to_euros(cents)} {currency} bei {provider}, "
        f"offen seit {_local(created)}" + (f", letzte Abfrage: {error}" if error else "")
        for cents, currency, provider, created, error, p, y, n in rows
    ]
    return Section("Offene Zahlungen (älter als ein Tag)", lines or ["Keine."])


SECTIONS: Sequence[SectionFn] = (failures_per_office, waiting_longest, open_payments)


def build(
    store: Store, config: Config, now: dt.datetime, sections: Sequence[SectionFn] = SECTIONS
) -> list[Section]:
    """Every section; a failing one becomes a line saying so, and the rest still come."""
    out: list[Section] = []
    for fn in sections:
        try:
            section = fn(store, config, now)
        except Exception as exc:
            log_event(
                log, "digest.section_failed", level=logging.ERROR, section=fn.__name__,
                error=type(exc).__name__,
            )  # fmt: skip
            section = Section(fn.__name__, ["Dieser Abschnitt konnte nicht erstellt werden."])
        if section is not None:
            out.append(section)
    return out


def render(sections: Sequence[Section], day: dt.date, public_url: str = "") -> str:
    """The digest's plain-text body in German; its links are absolute (BRIDGE_PUBLIC_URL),
    since a path alone leads nowhere from a mail client."""
    base = public_url.rstrip("/")
    parts = [f"Tagesbericht der Formcycle/Civento-Brücke vom {day.strftime('%d.%m.%Y')}", ""]
    for section in sections:
        parts += [section.title, "-" * len(section.title), *section.lines, ""]
    parts += [
        f"Übersicht: {base}/admin/ (Anmeldung erforderlich)",
        f"Fehler ansehen und erneut senden: {base}/admin/fehler",
    ]
    return "\n".join(parts) + "\n"


def send(settings: Settings, body: str, day: dt.date) -> int:
    """Mail the digest to every recipient (one mail each); returns how many were sent.

    Over TLS unless BRIDGE_SMTP_TLS=insecure: a server offering no STARTTLS gets nothing.
    With BRIDGE_SMTP_USER and BRIDGE_SMTP_PASSWORD it logs in inside the encrypted session.
    """
    sent = 0
    smtp = connect(
        settings.smtp_host,
        settings.smtp_port,
        tls=settings.smtp_tls,
        ca_file=settings.smtp_ca_file,
        timeout=10,
        login=(
            (settings.smtp_user, settings.smtp_password)
            if settings.smtp_user and settings.smtp_password
            else None
        ),
    )
    with smtp:
        for recipient in settings.digest_recipients:
            message = EmailMessage()
            message["From"] = settings.smtp_from
            message["To"] = recipient
            message["Subject"] = f"Brücke: Tagesbericht {day.strftime('%d.%m.%Y')}"
            message["Message-ID"] = make_msgid(domain="formcycle-bridge")
            message.set_content(body)
            smtp.send_message(message)
            sent += 1
    return sent


def send_once(
    settings: Settings, store: Store, now: dt.datetime, sections: Sequence[SectionFn] = SECTIONS
) -> bool:
    """Send today's digest unless it went out already; True when this call sent it."""
    if not settings.digest_recipients:
        return False
    day = now.astimezone(LOCAL_TZ).date()
    try:
        with store.session() as session:
            session.add(
                DigestSent(day=day, sent_at=now, recipients=len(settings.digest_recipients))
            )
    except IntegrityError:
        return False
    try:
        body = render(build(store, settings.config, now, sections), day, settings.public_url)
        send(settings, body, day)
    except (OSError, smtplib.SMTPException) as exc:
        with store.session() as session:
            session.execute(delete(DigestSent).where(DigestSent.day == day))
        log_event(log, "digest.send_failed", level=logging.WARNING, error=type(exc).__name__)
        return False
    log_event(log, "digest.sent", day=day.isoformat(), recipients=len(settings.digest_recipients))
    return True


def due(settings: Settings, now: dt.datetime) -> bool:
    """Whether it is late enough in the Berlin day to send the digest."""
    return (
        bool(settings.digest_recipients) and now.astimezone(LOCAL_TZ).hour >= settings.digest_hour
    )
