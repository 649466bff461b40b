"""The pull inbox: offices behind firewalls (and RPA robots) fetch their cases and acknowledge them."""

from __future__ import annotations

from flask import Blueprint, Response, request

from bridge.api.access import presented_token
from bridge.auth import unauthorized
from bridge.respond import json_response
from bridge.state import current
from domain.accounts.api_tokens import authenticate_token
from domain.delivery.deliveries import acknowledge, pending_for_office
from domain.problems import Problem, msg
from integrations.channels import channels
from integrations.channels.envelopes import build_envelopes
from integrations.channels.inbox import InboxChannel

blueprint = Blueprint("inbox", __name__)


def _inbox(office_id: str) -> InboxChannel:
    """The inbox channel of the office named in the path, authenticated by its bearer token."""
    bridge = current()
    office = bridge.settings.config.offices.get(office_id)
    channel = None
    if office is not None and office.channel == "inbox":
        channel = channels[office.channel](office.id, office.options, bridge.settings.secrets)
    presented = presented_token() or ""
    # Unknown office and wrong token answer alike, so office names cannot be probed.
    if not isinstance(channel, InboxChannel) or not _office_may(channel, presented):
        raise unauthorized("Das Token dieser Stelle ist ungültig.", "The office token is invalid.")
    return channel


def _office_may(channel: InboxChannel, presented: str) -> bool:
    """The routing file's inbox token, or an API token made for this office (tokens create
    --office), which an admin can let expire or revoke without touching the configuration."""
    if not presented:
        return False
    if channel.authorize(presented):
        return True
    actor = authenticate_token(current().store, presented)
    return actor is not None and actor.office_id == channel.office_id


@blueprint.get("/api/v1/inbox/<office_id>/cases")
def list_cases(office_id: str) -> Response:
    """The office's pending cases, oldest first, each with its delivery id to acknowledge."""
    inbox = _inbox(office_id)
    bridge = current()
    limit = min(max(request.args.get("limit", 20, type=int) or 20, 1), 100)
    ids = pending_for_office(bridge.store, inbox.office_id, limit)
    envelopes = build_envelopes(bridge.settings, bridge.store, bridge.vault, ids)
    return json_response({"cases": [inbox.document(e) for e in envelopes]})


@blueprint.post("/api/v1/inbox/<office_id>/cases/<delivery_id>/ack")
def ack_case(office_id: str, delivery_id: str) -> Response:
    """Confirm that the office took a case; it then leaves the inbox."""
    inbox = _inbox(office_id)
    body = request.get_json(silent=True) or {}
    case_number = body.get("case_number") if isinstance(body, dict) else None
    if case_number is not None and (not isinstance(case_number, str) or len(case_number) > 200):
        raise Problem(
            422,
            "validation",
            msg("Ungültiges Aktenzeichen der Stelle.", "Invalid case number."),
        )
    error = acknowledge(current().store, inbox.office_id, delivery_id, case_number)
    if error == "unknown":
        raise Problem(404, "unknown-case", msg("Diesen Fall gibt es nicht.", "No such case."))
    if error is not None:
        raise Problem(
            409,
            "case-not-pending",
            msg("Dieser Fall ist nicht offen.", "This case is not pending."),
        )
    return json_response({"delivery_id": delivery_id, "status": "delivered"})
