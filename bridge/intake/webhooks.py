"""POST /webhooks/formcycle/<service>: authenticate, parse, validate, store, answer with a reference."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, render_template, request
from werkzeug.exceptions import RequestEntityTooLarge

from bridge import auth
from bridge.api import views
from bridge.intake.bodies import SUPPORTED, media_type_of, parse_body, unsupported_media_type
from bridge.intake.pages import refusal_page
from bridge.respond import json_response, wants_html
from bridge.state import current
from domain.intake.limits import BodyLimits
from domain.problems import Problem, msg
from infra import telemetry

blueprint = Blueprint("webhooks", __name__)


def _read_body(limits: BodyLimits) -> bytes:
    """Read the body if its media type is supported; one over the limit is refused unread."""
    limit = limits.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise limits.body_too_large()
    media_type, _ = media_type_of(request.content_type)
    if media_type not in SUPPORTED:
        raise unsupported_media_type(media_type)
    # A body without Content-Length (chunked) is cut off by werkzeug at the request's maximum
    # without an error; one byte of headroom lets a longer body show as too large here
    # instead of being parsed truncated.
    request.max_content_length = limit + 1
    try:
        body = request.stream.read(limit + 1)
    except RequestEntityTooLarge:
        raise limits.body_too_large() from None
    if len(body) > limit:
        raise limits.body_too_large()
    return body


@blueprint.post("/webhooks/formcycle/<service_id>")
def receive(service_id: str) -> Response:
    """Accept one Formcycle submission for a service (see DESIGN section 4)."""
    bridge = current()
    known = service_id in bridge.settings.config.services
    try:
        response = _receive(service_id)
    except Problem as problem:
        telemetry.count_submission(
            bridge.redis, service_id if known else "unknown", str(problem.status)
        )
        if wants_html():
            service = bridge.settings.config.services.get(service_id)
            return refusal_page(problem, service.schema if service is not None else None)
        raise
    # Accepted submissions are counted from the store itself (bridge/ops/metrics.py).
    if response.headers.get("Idempotent-Replayed"):
        telemetry.count_submission(bridge.redis, service_id, "repeated")
    return response


def _receive(service_id: str) -> Response:
    bridge = current()
    settings = bridge.settings
    service = settings.config.services.get(service_id)
    if service is None:
        raise Problem(
            404,
            "unknown-service",
            msg("Unbekannter Online-Dienst.", "Unknown service."),
            msg(f"Den Dienst {service_id!r} gibt es hier nicht.", f"No service {service_id!r}."),
        )
    senders = auth.candidates(settings.config, service_id)
    limits = bridge.intake.limits
    caller, body = auth.authenticate(
        senders,
        request.headers,
        settings.secrets,
        settings.signature_tolerance_s,
        lambda: _read_body(limits),
    )
    raw = parse_body(request.content_type, body, limits)
    result = bridge.intake.submit(
        service,
        caller.sender,
        raw,
        webhook_id=caller.webhook_id,
        idempotency_header=request.headers.get("Idempotency-Key"),
    )
    if result.created:
        bridge.dispatch(result.submission)
    submission = result.submission
    headers = {"Location": views.status_path(submission)}
    if not result.created:
        headers["Idempotent-Replayed"] = "true"
    keys = settings.encryption_keys
    if wants_html():
        payment = views.answer(submission, settings.config, settings.public_url, keys).get(
            "payment"
        )
        return Response(
            confirmation_page(submission.reference, service.title, payment),
            status=202,
            headers=headers,
            mimetype="text/html",
        )
    return json_response(
        views.answer(submission, settings.config, settings.public_url, keys), 202, headers
    )


def confirmation_page(reference: str, title: str, payment: dict[str, Any] | None = None) -> str:
    """The German page Formcycle shows the citizen: the reference and, if any, the fee."""
    euros = ""
    if payment:
        sign = "€" if payment["currency"] == "EUR" else payment["currency"]
        euros = f"{payment['amount'].replace('.', ',')} {sign}"
    return render_template(
        "citizen/confirmation.html",
        reference=reference,
        title=title,
        payment=payment,
        euros=euros,
        held=payment is not None and payment["before_delivery"] and not payment["paid"],
    )
