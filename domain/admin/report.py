"""Which days the admin page offers a daily report for, and the moment each day's report shows.

A day's report is the daily digest (`worker.digest`) as of one moment: the moment its mail
went out when it did (so the page shows what the mail said), else the end of the day, or the
present for today. The days are Europe/Berlin days, today and the 14 before it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select

from domain.admin.search import day_start
from schemas.options import LOCAL_TZ
from store.engine import Store
from store.models import DigestSent

DAYS = 15  # today and the 14 days before it


@dataclass(frozen=True)
class ReportDay:
    """One day the report can be shown for, and the moment it shows."""

    day: dt.date
    at: dt.datetime  # the state shown is the one of this moment (UTC)
    mailed_to: int | None  # recipients of the day's mail, None when none went out
    today: bool

    @property
    def basis(self) -> str:
        """What the moment is: "mail" (when the mail went out), "now" or "end" of the day."""
        if self.mailed_to is not None:
            return "mail"
        return "now" if self.today else "end"


def report_days(store: Store, now: dt.datetime, days: int = DAYS) -> list[ReportDay]:
    """Today and the days before it, newest first, each with the moment its report shows."""
    today = now.astimezone(LOCAL_TZ).date()
    wanted = [today - dt.timedelta(days=i) for i in range(days)]
    with store.read() as session:
        sent = {
            day: (sent_at, recipients)
            for day, sent_at, recipients in session.execute(
                select(DigestSent.day, DigestSent.sent_at, DigestSent.recipients).where(
                    DigestSent.day >= wanted[-1], DigestSent.day <= today
                )
            )
        }
    out = []
    for day in wanted:
        if day in sent:
            sent_at, recipients = sent[day]
            out.append(ReportDay(day, sent_at, recipients, day == today))
        elif day == today:
            out.append(ReportDay(day, now, None, True))
        else:
            end = day_start(day, plus_days=1) - dt.timedelta(microseconds=1)
            out.append(ReportDay(day, end, None, False))
    return out


def live_today(now: dt.datetime) -> ReportDay:
    """Today's report as of the present, whether or not its mail went out already."""
    return ReportDay(now.astimezone(LOCAL_TZ).date(), now, None, True)
