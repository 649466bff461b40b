"""Bulk replay on the admin page: the confirmation with the exact count, the start, progress, stop."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from flask import jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from bridge.admin import csrf as admin_csrf
from bridge.admin.blueprint import actor, blueprint, forbidden
from bridge.admin.filters import FILTER_LABELS, read_filter
from bridge.admin.labels import BULK_STATUS, SUBMISSION_STATUS, label
from bridge.admin.office_state import office_states
from bridge.state import current
from domain.accounts.accounts import Role
from domain.admin import bulk_replay
from domain.admin.search import SubmissionFilter, count_replayable
from domain.problems import Problem, msg
from worker.queue import wake_quietly

log = logging.getLogger(__name__)

BULK_FORM_KEYS = (admin_csrf.FIELD, "reason", "reason_choice", "expected")

# The usual reasons for a bulk replay, the most likely first (it is preselected); "other"
# needs the free text. The chosen sentence is what the cases' history records.
OTHER_REASON = "anderer"
REASONS = (
    ("wieder-erreichbar", "Stelle war nicht erreichbar, jetzt wieder erreichbar"),
    ("stelle-behoben", "Die Stelle hat einen Fehler in ihrem Fachverfahren behoben"),
    ("konfiguration", "Die Einstellungen der Stelle in der Brücke wurden berichtigt"),
    (OTHER_REASON, "Anderer Grund (bitte unten beschreiben)"),
)


def chosen_reason(form: Mapping[str, str]) -> str:
    """The reason to record: the chosen sentence, with the optional free text after it.

    Without a choice (a form of an older page, or a script) the free text is the reason, and
    the domain refuses an empty one; "other" needs the free text too.
    """
    text = form.get("reason", "").strip()
    choice = form.get("reason_choice")
    if choice is None or choice == OTHER_REASON:
        return text
    sentence = dict(REASONS).get(choice)
    if sentence is None:
        raise Problem(
            422,
            "bad-reason",
            msg("Bitte einen der angebotenen Gründe wählen.", "Please choose one of the reasons."),
            msg("Es wurde nichts geändert.", "Nothing was changed."),
        )
    return f"{sentence}: {text}" if text else sentence


def running_bulk() -> bulk_replay.BulkReplayView | None:
    """The bulk replay running now, if any (shown on the overview and the failures page)."""
    return next(
        (v for v in bulk_replay.latest(current().store, 1, actor=actor()) if v.active), None
    )


@blueprint.get("/fehler/alle-erneut-senden")
def bulk_confirm() -> str | Response:
    """The confirmation of a bulk replay: the exact count (the dry run) and a reason field."""
    if not actor().may(Role.OPERATOR):
        return forbidden("bulk-replay")
    flt = read_filter(request.args, extra=())
    return _confirmation(flt, count_replayable(current().store, flt, actor=actor()), 200)


def _confirmation(flt: SubmissionFilter, count: int, status: int, notice: str = "") -> Response:
    config = current().settings.config
    shown: list[tuple[str, str]] = []
    for key, value in flt.as_args().items():
        if key == "service" and value in config.services:
            value = config.services[value].title
        elif key == "office" and value in config.offices:
            value = config.offices[value].name
        elif key == "municipality":
            town = config.municipality_by_ags(value)
            value = town.name if town else value
        elif key == "status":
            value = label(SUBMISSION_STATUS, value)
        shown.append((FILTER_LABELS.get(key, key), value))
    body = render_template(
        "admin/bulk_confirm.html",
        nav="failures",
        count=count,
        filter_args=flt.as_args(),
        filter_labels=shown,
        changed_notice=notice,
        reasons=REASONS,
        chosen=request.form.get("reason_choice", REASONS[0][0]),
        reason_text=request.form.get("reason", ""),
        offices=office_states(flt, actor()) if count else [],
    )
    return Response(body, status=status, mimetype="text/html")


@blueprint.post("/fehler/alle-erneut-senden")
def bulk_start() -> Response:
    """Start the bulk replay the clerk confirmed, then show its progress (operators only).

    When the count changed since the confirmation (new failures, or someone else replayed
    some), the confirmation is shown again with the new count instead of starting.
    """
    if not actor().may(Role.OPERATOR):
        return forbidden("bulk-replay")
    bridge = current()
    flt = read_filter(request.form, extra=BULK_FORM_KEYS)
    count = count_replayable(bridge.store, flt, actor=actor())
    if request.form.get("expected", "") != str(count):
        return _confirmation(
            flt,
            count,
            409,
            "Die Anzahl hat sich seit der Bestätigung geändert. Bitte die neue Anzahl prüfen.",
        )
    view, offices = bulk_replay.start(
        bridge.store,
        bridge.settings.config,
        flt,
        actor(),
        chosen_reason(request.form),
        rate_per_office=bridge.settings.replay_rate_per_office,
    )
    wake_quietly(bridge.redis, offices, log=log)
    return redirect(url_for("admin.bulk_progress", job_id=view.id), 303)


def _bulk_or_404(job_id: int) -> bulk_replay.BulkReplayView:
    view = bulk_replay.get(current().store, job_id, actor=actor())
    if view is None:
        raise bulk_replay.unknown_replay(job_id)
    return view


@blueprint.get("/sammel/<int:job_id>")
def bulk_progress(job_id: int) -> str:
    """Processed / total / failed of a bulk replay; a small script keeps the numbers current."""
    view = _bulk_or_404(job_id)
    return render_template(
        "admin/bulk_progress.html",
        nav="failures",
        job=view,
        running=view.active,
        state_label=label(BULK_STATUS, view.status),
    )


@blueprint.post("/sammel/<int:job_id>/abbrechen")
def bulk_cancel(job_id: int) -> Response:
    """Stop a running bulk replay; what was not sent yet goes back to the failed list."""
    if not actor().may(Role.OPERATOR):
        return forbidden("bulk-cancel")
    _bulk_or_404(job_id)
    bulk_replay.cancel(current().store, job_id, actor(), request.form.get("reason", ""))
    return redirect(url_for("admin.bulk_progress", job_id=job_id, hinweis="bulk-cancelled"), 303)


@blueprint.get("/sammel/<int:job_id>/stand")
def bulk_state(job_id: int) -> Response:
    """The progress page's numbers as JSON, read by its script (static/bulk-progress.js)."""
    view = _bulk_or_404(job_id)
    return jsonify(
        running=view.active,
        state_label=label(BULK_STATUS, view.status),
        processed=view.processed,
        total=view.total,
        delivered=view.delivered,
        failed=view.failed,
    )
