"""The read API: submission status (token-authenticated), OpenAPI document, published JSON Schemas."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, Response, g, request
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bridge import views
from bridge.auth import unauthorized
from bridge.openapi import openapi_document, service_json_schema
from bridge.respond import json_response
from bridge.state import current
from domain.problems import Problem, msg
from domain.settings import ApiToken
from domain.store import Event, Submission, parse_reference

blueprint = Blueprint("api", __name__)
F = TypeVar("F", bound=Callable[..., Any])


def require_token(role: str = "reader") -> Callable[[F], F]:
    """Require a bearer token with at least `role` (admin includes reader)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            header = request.headers.get("Authorization", "")
            scheme, _, presented = header.partition(" ")
            if scheme.lower() != "bearer" or not presented:
                raise unauthorized("Es fehlt ein Zugangstoken.", "A bearer token is missing.")
            token: ApiToken | None = current().settings.token_role(presented.strip())
            if token is None:
                raise unauthorized("Das Zugangstoken ist ungültig.", "The bearer token is invalid.")
            if role == "admin" and token.role != "admin":
                raise Problem(
                    403,
                    "forbidden",
                    msg("Keine Berechtigung.", "Forbidden."),
                    msg("Dafür ist die Rolle admin nötig.", "This needs the admin role."),
                )
            g.api_token = token
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def _not_found(reference: str) -> Problem:
    return Problem(
        404,
        "unknown-submission",
        msg("Diesen Antrag gibt es nicht.", "No such submission."),
        msg(f"Kein Antrag mit dem Aktenzeichen {reference!r}.", f"No submission {reference!r}."),
    )


@blueprint.get("/api/v1/submissions/<reference>")
@require_token("reader")
def submission_status(reference: str) -> Response:
    """Status, deliveries and history of one submission."""
    settings = current().settings
    return json_response(views.status(_load(reference), settings.config, settings.public_url))


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
@require_token("reader")
def attachment(reference: str, sha256: str) -> Response:
    """An attachment's content (the fetch link of deliveries too large to carry it inline)."""
    submission = _load(reference)
    bridge = current()
    found = next((a for a in submission.attachments if a.sha256 == sha256.lower()), None)
    if found is None or found.content is None:
        raise Problem(404, "unknown-attachment", msg("Keine solche Anlage.", "No such attachment."))
    content = bridge.vault.decrypt(found.content)
    with bridge.store.session() as session:
        session.add(
            Event(
                submission_id=submission.id,
                kind="attachment.fetched",
                actor=f"token:{g.api_token.name}",
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
