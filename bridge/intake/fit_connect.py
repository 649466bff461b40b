"""FIT-Connect's callbacks: a verified one makes the named cases' event logs due for a look.

A callback only says that news are waiting (docs: Callbacks); the truth is the case's event
log, read and verified by the sweeper (worker/fit_connect_poll.py). So a callback changes no
delivery itself, and a replayed one within its five minutes costs one extra look at most.
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, abort, request

from bridge.respond import json_response
from bridge.state import current
from domain.delivery.fit_connect import poll_soon
from domain.problems import Problem, msg
from infra.logs import log_event
from integrations.channels.fit_connect import callback_cases, callback_problem

log = logging.getLogger(__name__)
blueprint = Blueprint("fit_connect_callbacks", __name__)
#: A callback names a few submissions; anything larger is not one.
MAX_CALLBACK_BYTES = 64 * 1024


@blueprint.post("/callbacks/fit-connect")
def callback() -> Response:
    """Verify the HMAC and the timestamp, then make each named case due for a look (202)."""
    secret = current().settings.fit_connect_callback_secret
    if not secret:
        abort(404)
    length = request.content_length
    if length is not None and length > MAX_CALLBACK_BYTES:
        raise Problem(
            413,
            "body-too-large",
            msg("Die Nachricht ist zu groß.", "The message is too large."),
        )
    body = request.stream.read(MAX_CALLBACK_BYTES + 1)
    if len(body) > MAX_CALLBACK_BYTES:
        raise Problem(
            413,
            "body-too-large",
            msg("Die Nachricht ist zu groß.", "The message is too large."),
        )
    problem = callback_problem(
        secret,
        request.headers.get("callback-timestamp"),
        request.headers.get("callback-authentication"),
        body,
        time.time(),
    )
    if problem is not None:
        log_event(log, "fit_connect.callback_refused", level=logging.WARNING, reason=problem)
        raise Problem(
            401,
            "unauthorized",
            msg(
                "Die Signatur oder der Zeitstempel des Rückrufs ist ungültig.",
                "The callback's signature or timestamp is invalid.",
            ),
        )
    cases = callback_cases(body)
    due = sum(poll_soon(current().store, case_id) for case_id in cases)
    log_event(log, "fit_connect.callback", cases=len(cases), due=due)
    return json_response({"cases": len(cases), "due": due}, status=202)
