"""The daily digest e-mail for administrators: failures per office, what waits longest, open payments.

The digest is a list of sections, each a function of its own; one that fails is replaced by
a line saying so and the others still go out (Open Forms #4447). A day's digest is sent once:
the day's row in `digests_sent` is claimed before sending (its primary key lets one of two
sweepers win) and given back if the mail server refused, so the next round tries again.

Every section describes the state at the moment it is given (`now`), which may be a past one:
the admin page's daily report (`bridge.admin.report`) builds a past day's digest as of the
moment its mail went out, from the rows and the events (`domain.admin.history`), so the page
shows what the mail said. One `build` serves the mail, `digest --print` and the page.
The page passes the reader's scope (`domain.accounts.scopes`): a clerk limited to offices
reads only their deliveries and the payments of their cases; the mail goes to administrators
and reads everything.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from domain.accounts.scopes import EVERYTHING, Scope
from domain.admin.history import deliveries_as_of, open_payments_as_of
from domain.config import Config
from domain.payments.payments import to_euros
from domain.settings import Settings
from infra.logs import log_event
from integrations.smtp import connect
from schemas.options import LOCAL_TZ
from store.engine import Store
from store.models import DeliveryStatus, DigestSent, Submission, format_reference

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Section:
    """One part of the digest: a heading and its lines."""

    title: str
    lines: list[str]


# A section as of a moment (timezone-aware, UTC; the present one for the mail), within a scope.
SectionFn = Callable[[Store, Config, dt.datetime, Scope], Section | None]


def _local(moment: dt.datetime) -> str:
    return moment.astimezone(LOCAL_TZ).strftime("%d.%m.%Y %H:%M")


def _office(config: Config, office_id: str) -> str:
    return config.offices[office_id].name if office_id in config.offices else office_id


def _provider(config: Config, provider_id: str) -> str:
    """A payment provider by its display name (what clerks read), not its configuration id."""
    found = config.payment_providers.get(provider_id)
    return found.name if found else provider_id


def _references(store: Store, submission_ids: set[int]) -> dict[int, str]:
    """The public references of these submissions."""
    with store.read() as session:
        return {
            n: format_reference(p, y, n)
            for p, y, n in session.execute(
                select(Submission.reference_prefix, Submission.reference_year, Submission.id).where(
                    Submission.id.in_(sorted(submission_ids))
                )
            )
        }


def failures_per_office(
    store: Store, config: Config, now: dt.datetime, scope: Scope = EVERYTHING
) -> Section:
    """Failed deliveries per office as of `now`: how many, since when, the latest."""
    with store.read() as session:
        failed = deliveries_as_of(session, now, {DeliveryStatus.FAILED}, scope)
    per_office: dict[str, list[dt.datetime]] = {}
    for d in failed:
        per_office.setdefault(d.office_id, []).append(d.since)
    lines = [
        f"{_office(config, o)}: {len(times)} fehlgeschlagen, "
        f"erste {_local(min(times))}, letzte {_local(max(times))}"
        for o, times in sorted(per_office.items())
    ]
    return Section("Fehlgeschlagene Zustellungen je Dienststelle", lines or ["Keine."])


def waiting_longest(
    store: Store, config: Config, now: dt.datetime, scope: Scope = EVERYTHING
) -> Section:
    """The ten deliveries waiting longest as of `now`."""
    with store.read() as session:
        waiting = deliveries_as_of(session, now, {DeliveryStatus.PENDING}, scope)[:10]
    references = _references(store, {d.submission_id for d in waiting})
    lines = [
        f"{references[d.submission_id]} an {_office(config, d.office_id)}: "
        f"wartet seit {_local(d.created_at)}, {d.attempts} Versuch(e)"
        for d in waiting
    ]
    return Section("Am längsten wartende Zustellungen", lines or ["Keine."])


#: A payment still open after this long is worth an administrator's look in the digest.
OPEN_PAYMENT_AGE = dt.timedelta(days=1)


def _money(cents: int, currency: str) -> str:
    """An amount as German readers write it: ``35,00 €`` (other currencies by their code)."""
    amount = f"{to_euros(cents):.2f}".replace(".", ",")
    return f"{amount} €" if currency == "EUR" else f"{amount} {currency}"


def open_payments(
    store: Store, config: Config, now: dt.datetime, scope: Scope = EVERYTHING
) -> Section:
    """Payments still open (INITIAL) as of `now` a day after they started, oldest first, at most
    twenty.

    Each line names the case, amount, provider and how the last check went, so an
    administrator can see whether the citizen has not paid or the provider does not answer.
    """
    with store.read() as session:
        rows = open_payments_as_of(session, now, now - OPEN_PAYMENT_AGE, 20, scope)
    references = _references(store, {p.submission_id for p in rows})
    lines = [
        f"{references[p.submission_id]}: {_money(p.amount_cents, p.currency)} bei "
        f"{_provider(config, p.provider)}, offen seit {_local(p.created_at)}"
        + (f", letzte Abfrage: {p.last_error}" if p.last_error else "")
        for p in rows
    ]
    return Section("Offene Zahlungen (älter als ein Tag)", lines or ["Keine."])


SECTIONS: Sequence[SectionFn] = (failures_per_office, waiting_longest, open_payments)


def build(
    store: Store,
    config: Config,
    now: dt.datetime,
    sections: Sequence[SectionFn] = SECTIONS,
    scope: Scope = EVERYTHING,
) -> list[Section]:
    """Every section within `scope`; a failing one becomes a line saying so, and the rest
    still come."""
    out: list[Section] = []
    for fn in sections:
        try:
            section = fn(store, config, now, scope)
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
