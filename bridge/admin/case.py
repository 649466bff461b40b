"""One case on the admin page: its deliveries, payment and timeline, and replay, cancel, re-route.

Every action needs the operator role and goes through the domain's operations
(`domain.admin.operations`), which record the event naming the account.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, urlencode, urlsplit

from flask import redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from bridge.admin.blueprint import actor, blueprint, forbidden
from bridge.admin.filters import PAGING
from bridge.state import current
from domain.accounts.accounts import Role
from domain.admin.case_view import submission_detail
from domain.admin.operations import (
    cancel_delivery,
    cancel_submission,
    replay_delivery,
    reroute_delivery,
)
from domain.admin.search import FILTER_KEYS
from domain.problems import Problem, msg
from worker.queue import wake_quietly

log = logging.getLogger(__name__)


@blueprint.get("/antraege/<reference>")
def case(reference: str) -> str:
    """One case: its deliveries with actions, its payment and its timeline."""
    config = current().settings.config
    detail = submission_detail(current().store, config, reference[:40], actor=actor())
    if detail is None:
        raise Problem(
            404,
            "unknown-submission",
            msg("Diesen Antrag gibt es nicht.", "No such submission."),
            msg(
                "Bitte das Aktenzeichen prüfen (z. B. NA-2026-000123).",
                "Please check the reference (e.g. NA-2026-000123).",
            ),
        )
    alternatives: dict[str, list[tuple[str, str]]] = {}
    for d in detail.deliveries:
        alternatives[d.id] = sorted(
            (
                (oid, o.name)
                for oid, o in config.offices.items()
                if o.task_area == d.task_area and oid != d.office
            ),
            key=lambda x: x[1],
        )
    return render_template(
        "admin/case.html",
        nav="submissions",
        case=detail,
        alternatives=alternatives,
        office_of={d.id: d.office_name for d in detail.deliveries},
    )


def _delivery_of_case(reference: str, delivery_id: str) -> None:
    """404 unless `delivery_id` is one of the case's deliveries (the URL names both)."""
    detail = submission_detail(
        current().store, current().settings.config, reference[:40], actor=actor()
    )
    if detail is None or delivery_id not in {d.id for d in detail.deliveries}:
        raise Problem(
            404,
            "unknown-delivery",
            msg("Diese Zustellung gibt es nicht.", "No such delivery."),
            msg("Es wurde nichts geändert.", "Nothing was changed."),
        )


def _after_action(reference: str, notice: str) -> Response:
    """Back to the failures list the clerk came from (with its filter), else to the case."""
    back = urlsplit(request.form.get("back", ""))
    if back.path == url_for("admin.failures") and not back.netloc and not back.scheme:
        query = [(k, v) for k, v in parse_qsl(back.query) if k in FILTER_KEYS + PAGING]
        query.append(("hinweis", notice))
        return redirect(back.path + "?" + urlencode(query), 303)
    return redirect(url_for("admin.case", reference=reference, hinweis=notice), 303)


@blueprint.post("/antraege/<reference>/zustellungen/<delivery_id>/erneut-senden")
def replay(reference: str, delivery_id: str) -> Response:
    """Send one failed delivery again (operators only)."""
    if not actor().may(Role.OPERATOR):
        return forbidden("replay")
    _delivery_of_case(reference, delivery_id)
    outcome = replay_delivery(current().store, delivery_id, actor(), request.form.get("reason", ""))
    wake_quietly(current().redis, outcome.wake, log=log)
    return _after_action(reference, "replayed" if outcome.changed else "noop")


@blueprint.post("/antraege/<reference>/zustellungen/<delivery_id>/abbrechen")
def cancel(reference: str, delivery_id: str) -> Response:
    """Stop one delivery for good, with a reason (operators only)."""
    if not actor().may(Role.OPERATOR):
        return forbidden("cancel")
    _delivery_of_case(reference, delivery_id)
    cancel_delivery(current().store, delivery_id, actor(), request.form.get("reason", ""))
    return _after_action(reference, "cancelled")


@blueprint.post("/antraege/<reference>/abbrechen")
def cancel_case(reference: str) -> Response:
    """Withdraw the whole case, with a reason (operators only): every open delivery within the
    account's offices is cancelled, and a fee not yet paid is withdrawn with the last one."""
    if not actor().may(Role.OPERATOR):
        return forbidden("cancel-case")
    cancel_submission(current().store, reference[:40], actor(), request.form.get("reason", ""))
    return _after_action(reference, "case-cancelled")


@blueprint.post("/antraege/<reference>/zustellungen/<delivery_id>/umleiten")
def reroute(reference: str, delivery_id: str) -> Response:
    """Send the case to another office of the same task area, with a reason (operators only)."""
    if not actor().may(Role.OPERATOR):
        return forbidden("reroute")
    _delivery_of_case(reference, delivery_id)
    outcome = reroute_delivery(
        current().store,
        current().settings.config,
        delivery_id,
        request.form.get("office", "")[:64],
        actor(),
        request.form.get("reason", ""),
    )
    wake_quietly(current().redis, outcome.wake, log=log)
    return _after_action(reference, "rerouted")
