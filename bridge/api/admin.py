"""The admin API under /api/v1/: find cases and failures, replay, cancel, re-route, bulk replay.

Reading needs the viewer role, acting the operator role; every action is recorded by the
domain (`domain.admin.operations`, `domain.admin.bulk_replay`) with the acting account or token. Bodies
are small JSON objects; anything else is a problem answer, never a 5xx.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from flask import Blueprint, Response, g, request

from bridge.api.access import require_role
from bridge.intake.bodies import media_type_of
from bridge.respond import json_response, language
from bridge.state import current
from domain.accounts.accounts import Actor, Role
from domain.admin import bulk_replay
from domain.admin.case_view import submission_detail
from domain.admin.operations import (
    Outcome,
    cancel_submission,
    replay_delivery,
    reroute_delivery,
    unknown_submission,
)
from domain.admin.overview import overview
from domain.admin.search import (
    SubmissionFilter,
    count_replayable,
    failed_deliveries,
    list_submissions,
)
from domain.problems import FieldError, Problem, msg
from worker.queue import wake_quietly
from worker.queue_status import queue_status

blueprint = Blueprint("admin_api", __name__)
log = logging.getLogger(__name__)
MAX_BODY = 16 * 1024
MAX_ID = 2**62


def _json(value: Any) -> Any:
    """Dataclass values made JSON-ready: datetimes and dates as ISO 8601."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value


def _bad_body(de: str, en: str, field: str | None = None) -> Problem:
    return Problem(
        400,
        "bad-body",
        msg("Der Inhalt der Anfrage ist ungültig.", "The request body is invalid."),
        msg(de, en),
        errors=[FieldError(field, msg(de, en))] if field else [],
    )


def _body() -> dict[str, Any]:
    """The request's JSON object ({} when empty), at most MAX_BODY bytes."""
    if (request.content_length or 0) > MAX_BODY:
        raise Problem(
            413, "too-large", msg("Die Anfrage ist zu groß.", "The request is too large.")
        )
    raw = request.stream.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise Problem(
            413, "too-large", msg("Die Anfrage ist zu groß.", "The request is too large.")
        )
    if not raw.strip():
        return {}
    media_type, _ = media_type_of(request.content_type)
    if media_type != "application/json":
        raise Problem(
            415,
            "unsupported-media-type",
            msg("Bitte JSON senden.", "Please send JSON."),
            msg("Erwartet: application/json.", "Expected: application/json."),
        )
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _bad_body("Kein gültiges JSON.", "Not valid JSON.") from None
    if not isinstance(data, dict):
        raise _bad_body("Erwartet wird ein JSON-Objekt.", "A JSON object is expected.")
    return data


def _text(body: Mapping[str, Any], key: str, *, required: bool = False) -> str:
    value = body.get(key)
    if value is None:
        if required:
            raise Problem(
                422,
                "missing-field",
                msg(f"Es fehlt {key!r}.", f"{key!r} is missing."),
                errors=[FieldError(key, msg("Pflichtangabe.", "Required."))],
            )
        return ""
    if not isinstance(value, str):
        raise _bad_body("Muss ein Text sein.", "Must be a string.", key)
    return value


def _int_arg(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 7):
        raise Problem(
            400,
            "bad-filter",
            msg("Der Filter ist ungültig.", "The filter is invalid."),
            errors=[FieldError(name, msg("Muss eine ganze Zahl sein.", "Must be an integer."))],
        )
    return int(raw)


def _actor() -> Actor:
    actor = g.actor
    assert isinstance(actor, Actor)
    return actor


def _outcome(outcome: Outcome) -> Response:
    wake_quietly(current().redis, outcome.wake, log=log)
    message = outcome.message.en if language() == "en" else str(outcome.message)
    return json_response(
        {"changed": outcome.changed, "message": message, "deliveries": outcome.delivery_ids}
    )


def _filter() -> SubmissionFilter:
    return SubmissionFilter.from_args(request.args, current().settings.config)


@blueprint.get("/api/v1/submissions")
@require_role(Role.VIEWER)
def submissions() -> Response:
    """Submissions matching the filter, newest first, a page at a time."""
    bridge = current()
    page = list_submissions(
        bridge.store,
        _filter(),
        bridge.settings.config,
        actor=_actor(),
        page=_int_arg("page", 1),
        per_page=_int_arg("per_page", 50),
    )
    return json_response(
        {
            "total": page.total,
            "page": page.page,
            "per_page": page.per_page,
            "pages": page.pages,
            "items": [_json(asdict(item)) for item in page.items],
        }
    )


@blueprint.get("/api/v1/deliveries/failed")
@require_role(Role.VIEWER)
def failed() -> Response:
    """The dead-letter list with the last error, most recently failed first."""
    page = failed_deliveries(
        current().store,
        _filter(),
        actor=_actor(),
        page=_int_arg("page", 1),
        per_page=_int_arg("per_page", 50),
    )
    return json_response(
        {
            "total": page.total,
            "page": page.page,
            "per_page": page.per_page,
            "pages": page.pages,
            "items": [_json(asdict(item)) for item in page.items],
        }
    )


@blueprint.get("/api/v1/submissions/<reference>/detail")
@require_role(Role.VIEWER)
def detail(reference: str) -> Response:
    """One case for administrators: deliveries with their last errors, payment, timeline."""
    found = submission_detail(current().store, current().settings.config, reference, actor=_actor())
    if found is None:
        raise unknown_submission(reference)
    return json_response(_json(asdict(found)))


@blueprint.get("/api/v1/overview")
@require_role(Role.VIEWER)
def overview_view() -> Response:
    """Counts by status, failures per office and day, oldest pending, queue and workers."""
    bridge = current()
    queue = queue_status(bridge.redis)
    found = overview(
        bridge.store,
        actor=_actor(),
        now=dt.datetime.now(dt.UTC),
        queue_depth=queue.depth,
        live_workers=queue.workers,
    )
    return json_response(_json(asdict(found)))


@blueprint.post("/api/v1/deliveries/<delivery_id>/replay")
@require_role(Role.OPERATOR)
def replay(delivery_id: str) -> Response:
    """Send one failed delivery again; a pending one is answered as nothing to do."""
    body = _body()
    return _outcome(replay_delivery(current().store, delivery_id, _actor(), _text(body, "reason")))


@blueprint.post("/api/v1/deliveries/<delivery_id>/reroute")
@require_role(Role.OPERATOR)
def reroute(delivery_id: str) -> Response:
    """Send a case to another office of the same task area ({office, reason})."""
    body = _body()
    office = _text(body, "office", required=True)
    reason = _text(body, "reason", required=True)
    bridge = current()
    return _outcome(
        reroute_delivery(
            bridge.store, bridge.settings.config, delivery_id, office, _actor(), reason
        )
    )


@blueprint.post("/api/v1/submissions/<reference>/cancel")
@require_role(Role.OPERATOR)
def cancel(reference: str) -> Response:
    """Cancel every delivery of a case not yet delivered ({reason})."""
    body = _body()
    reason = _text(body, "reason", required=True)
    return _outcome(cancel_submission(current().store, reference, _actor(), reason))


@blueprint.post("/api/v1/replays")
@require_role(Role.OPERATOR)
def start_replay() -> Response:
    """Bulk replay by filter: `dry_run` answers the exact count, otherwise 202 and the job."""
    body = _body()
    bridge = current()
    raw_filter = body.get("filter", {})
    if not isinstance(raw_filter, dict):
        raise _bad_body("Muss ein JSON-Objekt sein.", "Must be a JSON object.", "filter")
    flt = SubmissionFilter.from_args(raw_filter, bridge.settings.config, extra=())
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise _bad_body("Muss true oder false sein.", "Must be true or false.", "dry_run")
    if dry_run:
        return json_response(
            {
                "dry_run": True,
                "count": count_replayable(bridge.store, flt, actor=_actor()),
                "filter": flt.as_args(),
            }
        )
    reason = _text(body, "reason", required=True)
    view, offices = bulk_replay.start(
        bridge.store,
        bridge.settings.config,
        flt,
        _actor(),
        reason,
        rate_per_office=bridge.settings.replay_rate_per_office,
    )
    wake_quietly(current().redis, offices, log=log)
    return json_response(
        bulk_replay.as_json(view), 202, headers={"Location": f"/api/v1/replays/{view.id}"}
    )


def _job_id(raw: int) -> int:
    if raw > MAX_ID:
        raise bulk_replay.unknown_replay(raw)
    return raw


@blueprint.get("/api/v1/replays/<int:job_id>")
@require_role(Role.VIEWER)
def replay_status(job_id: int) -> Response:
    """A bulk replay's progress: total, processed, failed, status."""
    found = bulk_replay.get(current().store, _job_id(job_id), actor=_actor())
    if found is None:
        raise bulk_replay.unknown_replay(job_id)
    return json_response(bulk_replay.as_json(found))


@blueprint.post("/api/v1/replays/<int:job_id>/cancel")
@require_role(Role.OPERATOR)
def cancel_replay(job_id: int) -> Response:
    """Stop a bulk replay ({reason}); deliveries not yet sent go back to failed."""
    body = _body()
    reason = _text(body, "reason", required=True)
    view, changed = bulk_replay.cancel(current().store, _job_id(job_id), _actor(), reason)
    return json_response({**bulk_replay.as_json(view), "changed": changed})
