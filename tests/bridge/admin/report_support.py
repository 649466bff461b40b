"""Helpers of the report and activity tests: attempts recorded by the delivery code, and a past.

The daily report of a past day is read from the events, so these helpers make deliveries fail
and arrive through `domain.delivery.deliveries` (which writes the events), never by setting
a status. `shift_back` moves every stored time into the past, as if it all happened days ago.
"""

from __future__ import annotations

import datetime as dt
import html
import re

from sqlalchemy import select

from domain.delivery.deliveries import AttemptOutcome, claim_due, record_outcomes
from store.engine import Store
from store.models import BulkReplay, Delivery, DigestSent, Event, Payment, Submission
from worker.digest import Section

OFFICE = "usingen-steueramt"


def attempt(store: Store, office: str = OFFICE, *, ok: bool) -> list[str]:
    """Every due delivery of `office` attempted once: delivered, or failed for good (HTTP 503)."""
    ids, lease_until = claim_due(store, office, 100, 30.0)
    outcomes = [
        AttemptOutcome(
            delivery_id=i,
            lease_until=lease_until,
            ok=ok,
            permanent=not ok,
            status_code=200 if ok else 503,
            case_number="AZ-1" if ok else None,
            error=None if ok else "HTTP 503",
        )
        for i in ids
    ]
    record_outcomes(store, outcomes, (1.0,), 0.0)
    return ids


def shift_back(store: Store, days: int) -> None:
    """Every stored time `days` earlier: the same history, as if it began `days` ago."""
    delta = dt.timedelta(days=days)
    with store.session() as session:
        for model in (Submission, Delivery, Event, Payment, BulkReplay):
            for row in session.scalars(select(model)):
                for column in model.__table__.columns:
                    value = getattr(row, column.key)
                    if isinstance(value, dt.datetime):
                        setattr(row, column.key, value - delta)
        for sent in session.scalars(select(DigestSent)):
            sent.day -= delta
            sent.sent_at -= delta


def mail_sections(body: str) -> list[tuple[str, list[str]]]:
    """The sections of a digest mail's text: each title (underlined) and its lines."""
    lines = body.replace("\r\n", "\n").split("\n")
    out: list[tuple[str, list[str]]] = []
    for i, line in enumerate(lines):
        if i + 1 < len(lines) and line and lines[i + 1] == "-" * len(line):
            block = []
            for following in lines[i + 2 :]:
                if not following:
                    break
                block.append(following)
            out.append((line, block))
    return out


def page_sections(page: str) -> list[tuple[str, list[str]]]:
    """The sections the report page shows: each heading and its list's lines."""
    found = re.findall(
        r'<h2 id="h-s\d+">(.*?)</h2>\s*<ul class="report-lines">(.*?)</ul>', page, re.S
    )
    return [
        (html.unescape(title), [html.unescape(li) for li in re.findall(r"<li>(.*?)</li>", ul)])
        for title, ul in found
    ]


_STAMP = re.compile(r"\d\d\.\d\d\.\d{4} \d\d:\d\d")


def moved(sections: list[tuple[str, list[str]]], days: int) -> list[tuple[str, list[str]]]:
    """The sections with every time in their lines `days` earlier (what `shift_back` did)."""

    def earlier(found: re.Match[str]) -> str:
        stamp = dt.datetime.strptime(found.group(0), "%d.%m.%Y %H:%M")
        return (stamp - dt.timedelta(days=days)).strftime("%d.%m.%Y %H:%M")

    return [(title, [_STAMP.sub(earlier, line) for line in lines]) for title, lines in sections]


def as_tuples(sections: list[Section]) -> list[tuple[str, list[str]]]:
    """Sections as (title, lines), to compare with what a page or a mail showed."""
    return [(s.title, list(s.lines)) for s in sections]
