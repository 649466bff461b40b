"""The read API: submission status (by role), attachment fetch links, OpenAPI, JSON Schemas."""

from __future__ import annotations

from flask import Blueprint, Response, g, request
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bridge.api import views
from bridge.api.access import bearer_actor, check_role, forbidden, require_role
from bridge.api.openapi import openapi_document, service_json_schema
from bridge.respond import json_response
from bridge.state import current
from domain.accounts.accounts import Actor, Role
from domain.accounts.scopes import scope_of
from domain.delivery.fetch_links import check_link
from domain.problems import Problem, msg
from store.models import DeliveryStatus, Event, Submission, parse_reference, utcnow

blueprint = Blueprint("api", __name__)


def _not_found(reference: str) -> Problem:
    return Problem(
        404,
        "unknown-submission",
        msg("Diesen Antrag gibt es nicht.", "No such submission."),
        msg(f"Kein Antrag mit dem Aktenzeichen {reference!r}.", f"No submission {reference!r}."),
    )


@blueprint.get("/api/v1/submissions/<reference>")
@require_role(Role.VIEWER)
def submission_status(reference: str) -> Response:
    """Status, deliveries and history of one submission."""
    settings = current().settings
    actor: Actor = g.actor
    submission = _load(reference)
    _check_scope(actor, submission, reference)
    return json_response(
        views.status(submission, settings.config, settings.public_url, settings.encryption_keys)
    )


def _check_scope(actor: Actor, submission: Submission, reference: str) -> None:
    """404, as for an unknown reference, unless the case is within a staff actor's offices."""
    scope = scope_of(actor)
    if actor.office_id is None and not any(
        scope.covers(d.office_id) for d in submission.deliveries
    ):
        raise _not_found(reference)


def _other_office() -> Problem:
    return forbidden(
        "Dieser Antrag wurde nicht an Ihre Stelle zugestellt.",
        "This submission was not delivered to your office.",
    )


# The deliveries whose office has the case: to fetch, fetched, or still being tried. A
# cancelled (or re-routed away) delivery's office no longer handles it; a held one (waiting for
# the fee) has not got it yet.
READABLE = frozenset(
    {
        DeliveryStatus.PENDING,
        DeliveryStatus.AWAITING_ACCEPT,
        DeliveryStatus.DELIVERED,
        DeliveryStatus.FAILED,
    }
)


def _check_office(submission: Submission, office_id: str) -> None:
    """Raise 403 unless a delivery of `submission` to `office_id` is in a READABLE status."""
    own = [d for d in submission.deliveries if d.office_id == office_id]
    if any(d.status in READABLE for d in own):
        return
    raise _not_with_office() if own else _other_office()


def _not_with_office() -> Problem:
    return forbidden(
        "Dieser Antrag liegt Ihrer Stelle nicht vor: die Zustellung wurde storniert, umgeleitet "
        "oder wartet auf die Zahlung der Gebühr.",
        "This submission is not with your office: its delivery was cancelled, re-routed or "
        "waits for the fee to be paid.",
    )


def _fetcher(reference: str, sha256: str) -> tuple[Actor | None, str | None, Submission]:
    """Who fetches (the token's Actor, if any), the office the fetch is limited to, the submission.

    Credentials are checked before the submission is looked up: no answer tells a caller
    without them whether a reference exists.
    """
    args = request.args
    signed = any(args.get(k) for k in ("delivery", "expires", "signature"))
    if not signed:
        actor = bearer_actor()
        assert actor is not None
        check_role(actor, Role.VIEWER, offices=True)
        submission = _load(reference)
        if actor.office_id is not None:
            _check_office(submission, actor.office_id)
        _check_scope(actor, submission, reference)
        return actor, actor.office_id, submission
    bridge = current()
    check = check_link(
        args.get("delivery", ""),
        sha256,
        args.get("expires", ""),
        args.get("signature", ""),
        encryption_keys=bridge.settings.encryption_keys,
        now=utcnow(),
    )
    if check.outcome == "expired":
        raise forbidden(
            "Der Abruflink ist abgelaufen; die Stelle erhält mit der nächsten Zustellung einen neuen.",
            "The fetch link has expired; the office gets a new one with the next delivery.",
        )
    if not check.ok:
        raise forbidden("Der Abruflink ist ungültig.", "The fetch link is invalid.")
    submission = _load(reference)
    delivery = next((d for d in submission.deliveries if d.id == args.get("delivery")), None)
    if delivery is None:
        # Signed for a delivery of another submission: the link was altered.
        raise forbidden("Der Abruflink ist ungültig.", "The fetch link is invalid.")
    if delivery.status == DeliveryStatus.CANCELLED:
        # A cancelled or re-routed delivery's office no longer handles the case.
        raise forbidden(
            "Diese Zustellung wurde storniert; der Abruflink gilt nicht mehr.",
            "This delivery was cancelled; the fetch link no longer works.",
        )
    if delivery.status not in READABLE:
        raise _not_with_office()  # held for the fee: the office has not got the case yet
    actor = bearer_actor(required=False)
    if actor is not None and not scope_of(actor).covers(delivery.office_id):
        raise _other_office()
    return actor, delivery.office_id, submission


def _load(reference: str) -> Submission:
    """Read a submission with its deliveries, attachments and events, or answer 404."""
    parsed = parse_reference(reference)
    if parsed is None:
        raise _not_found(reference)
    prefix, year, number = parsed
    with current().store.read() as session:
        submission = session.scalars(
            select(Submission)
            .where(
                Submission.id == number,
                Submission.reference_prefix == prefix,
                Submission.reference_year == year,
            )
            .options(
                selectinload(Submission.deliveries),
                selectinload(Submission.attachments),
                selectinload(Submission.events),
                selectinload(Submission.payments),
            )
        ).one_or_none()
    if submission is None:
        raise _not_found(reference)
    return submission


@blueprint.get("/api/v1/submissions/<reference>/attachments/<sha256>")
def attachment(reference: str, sha256: str) -> Response:
    """An attachment's content (the fetch link of deliveries too large to carry it inline).

    A signed link (``?delivery=&expires=&signature=``, from the envelope) works for the office
    the delivery went to until it expires; an office's own token must belong to that office.
    Without a link a staff token (viewer or above) is needed, or the token of an office with a
    pending, delivered or failed delivery of this submission (not a cancelled, re-routed or
    held one).
    """
    actor, office_id, submission = _fetcher(reference, sha256.lower())
    bridge = current()
    found = next((a for a in submission.attachments if a.sha256 == sha256.lower()), None)
    if found is None or found.content is None:
        raise Problem(404, "unknown-attachment", msg("Keine solche Anlage.", "No such attachment."))
    content = bridge.vault.decrypt(found.content)
    with bridge.store.session() as session:
        session.add(
            Event(
                submission_id=submission.id,
                delivery_id=request.args.get("delivery") if office_id else None,
                kind="attachment.fetched",
                actor=actor.label if actor is not None else f"office:{office_id}",
                detail={"sha256": found.sha256, "field": found.field},
            )
        )
    return Response(
        content,
        mimetype=found.content_type,
        headers={
            "Content-Disposition": f'attachment; filename="{found.sha256[:16]}"',
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        },
    )


@blueprint.get("/openapi.json")
def openapi() -> Response:
    """The API described from the same marshmallow schemas that validate and render it."""
    return json_response(openapi_document(current().settings.config))


@blueprint.get("/schemas/<service_id>")
def service_schema(service_id: str) -> Response:
    """A service's submission schema as JSON Schema, for form designers and back offices.

    The same document is the service's request body in /openapi.json.
    """
    service = current().settings.config.services.get(service_id)
    if service is None:
        raise Problem(
            404,
            "unknown-service",
            msg("Unbekannter Online-Dienst.", "Unknown service."),
            msg(f"Den Dienst {service_id!r} gibt es hier nicht.", f"No service {service_id!r}."),
        )
    return json_response(
        service_json_schema(service), headers={"Cache-Control": "public, max-age=300"}
    )
