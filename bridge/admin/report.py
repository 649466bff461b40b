"""The daily report on the admin page: today's and the 14 days before, as the daily mail said it.

The page shows `worker.digest.build` as of the day's moment (`domain.admin.report`): the
moment the day's mail went out, else the end of the day, or the present for today. Any
signed-in account may read it: it holds what the overview and the failed list show anyway
(counts, references, offices), no citizen's data. An account limited to offices reads only
its offices' deliveries and the payments of its cases (`domain.accounts.scopes`), as on the
failed list; the mail itself goes to administrators and holds every office.
"""

from __future__ import annotations

import datetime as dt

from flask import render_template, request

from bridge.admin.blueprint import actor, blueprint
from bridge.state import current
from domain.accounts.scopes import scope_of
from domain.admin.report import ReportDay, live_today, report_days
from domain.problems import Problem, msg
from store.models import utcnow
from worker import digest


def _chosen(days: list[ReportDay], now: dt.datetime) -> ReportDay:
    """The day the query asks for (`tag=JJJJ-MM-TT`, `stand=jetzt` for today's present)."""
    raw = request.args.get("tag", "")
    live = request.args.get("stand", "") == "jetzt"
    if not raw:
        return live_today(now) if live else days[0]
    try:
        if not raw.isascii() or len(raw) != 10:
            raise ValueError(raw)
        day = dt.date.fromisoformat(raw)
    except ValueError:
        raise Problem(
            400,
            "bad-day",
            msg("Kein gültiger Tag.", "Not a valid day."),
            msg("Der Tag hat die Form JJJJ-MM-TT.", "The day has the form YYYY-MM-DD."),
        ) from None
    for offered in days:
        if offered.day == day:
            return live_today(now) if live and offered.today else offered
    raise Problem(
        404,
        "no-report",
        msg("Für diesen Tag gibt es keinen Bericht.", "No report for this day."),
        msg(
            "Berichte gibt es für heute und die 14 Tage davor.",
            "Reports exist for today and the 14 days before.",
        ),
    )


@blueprint.get("/bericht")
def report() -> str:
    """The daily report of the chosen day, with the list of days to choose from."""
    bridge = current()
    now = utcnow()
    days = report_days(bridge.store, now)
    chosen = _chosen(days, now)
    scope = scope_of(actor())
    sections = digest.build(bridge.store, bridge.settings.config, chosen.at, scope=scope)
    return render_template(
        "admin/report.html",
        nav="report",
        days=days,
        chosen=chosen,
        sent_today=days[0].mailed_to is not None,
        sections=sections,
        limited=scope.limited,
    )
