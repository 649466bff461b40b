"""What the API answers, as marshmallow schemas: used to render answers and to describe them in OpenAPI."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from domain.config import Config
from domain.store import Submission


class MunicipalityView(Schema):
    """The citizen's municipality the submission was resolved to."""

    name = fields.String(required=True)
    ags = fields.String(required=True, metadata={"description": "8-digit official key (AGS)"})


class DeliveryView(Schema):
    """One delivery of the submission to one office."""

    id = fields.String(required=True, metadata={"description": "stable delivery id (webhook-id)"})
    office = fields.String(required=True)
    office_name = fields.String(required=True)
    task_area = fields.String(required=True)
    status = fields.String(required=True)
    attempts = fields.Integer(required=True)
    next_attempt_at = fields.AwareDateTime(allow_none=True)
    case_number = fields.String(allow_none=True)
    delivered_at = fields.AwareDateTime(allow_none=True)


class LinksView(Schema):
    """Where to look next."""

    status = fields.String(required=True)


class PaymentView(Schema):
    """The fee due for the submission (the online payment itself follows with E-Payment)."""

    amount = fields.String(required=True, metadata={"example": "35.00"})
    currency = fields.String(required=True)
    purpose = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "due until paid"})


class SubmissionAnswer(Schema):
    """The answer to an accepted submission (202)."""

    reference = fields.String(required=True, metadata={"example": "NA-2026-000123"})
    status = fields.String(required=True)
    service = fields.String(required=True)
    received_at = fields.AwareDateTime(required=True)
    municipality = fields.Nested(MunicipalityView, required=True)
    deliveries = fields.List(fields.Nested(DeliveryView), required=True)
    links = fields.Nested(LinksView, required=True)
    payment = fields.Nested(PaymentView, metadata={"description": "only when a fee is due"})


class AttachmentView(Schema):
    """Metadata of an attachment (its name and content stay encrypted)."""

    field = fields.String(required=True)
    content_type = fields.String(required=True)
    size = fields.Integer(required=True)
    sha256 = fields.String(required=True)


class EventView(Schema):
    """One entry of the submission's history."""

    at = fields.AwareDateTime(required=True)
    kind = fields.String(required=True)
    actor = fields.String(required=True)
    delivery_id = fields.String(allow_none=True)
    detail = fields.Dict(required=True)


class SubmissionStatusView(SubmissionAnswer):
    """The status resource: the answer plus flags, attachments and history."""

    schema = fields.String(required=True)
    flags = fields.Dict(required=True)
    attachments = fields.List(fields.Nested(AttachmentView), required=True)
    history = fields.List(fields.Nested(EventView), required=True)


class FieldErrorView(Schema):
    """A failing field in a 422 problem."""

    field = fields.String(required=True)
    message = fields.String(required=True)


class ProblemView(Schema):
    """An RFC 9457 problem document."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    instance = fields.String()
    errors = fields.List(fields.Nested(FieldErrorView))


_ANSWER = SubmissionAnswer()
_STATUS = SubmissionStatusView()


def status_path(submission: Submission) -> str:
    """The path of a submission's status resource."""
    return f"/api/v1/submissions/{submission.reference}"


def _base(submission: Submission, config: Config) -> dict[str, Any]:
    municipality = config.municipality_by_ags(submission.municipality_ags)
    service = config.services.get(submission.service)
    fee = service.fee if service is not None else None
    payment = (
        {
            "amount": str(fee.amount),
            "currency": fee.currency,
            "purpose": fee.purpose,
            "status": "due",
        }
        if fee is not None
        else None
    )
    body: dict[str, Any] = {
        "reference": submission.reference,
        "status": submission.status,
        "service": submission.service,
        "received_at": submission.received_at,
        "municipality": {
            "name": municipality.name if municipality else submission.municipality_ags,
            "ags": submission.municipality_ags,
        },
        "deliveries": [
            {
                "id": d.id,
                "office": d.office_id,
                "office_name": config.offices[d.office_id].name
                if d.office_id in config.offices
                else d.office_id,
                "task_area": d.task_area,
                "status": d.status,
                "attempts": d.attempts,
                "next_attempt_at": d.next_attempt_at if d.status == "pending" else None,
                "case_number": d.case_number,
                "delivered_at": d.delivered_at,
            }
            for d in submission.deliveries
        ],
        "links": {"status": status_path(submission)},
    }
    if payment is not None:
        body["payment"] = payment
    return body


def answer(submission: Submission, config: Config) -> dict[str, Any]:
    """The 202 answer for a stored submission."""
    result: dict[str, Any] = _ANSWER.dump(_base(submission, config))
    return result


def status(submission: Submission, config: Config) -> dict[str, Any]:
    """The status resource for a stored submission."""
    body = _base(submission, config)
    body.update(
        schema=submission.schema,
        flags=submission.flags,
        attachments=[
            {"field": a.field, "content_type": a.content_type, "size": a.size, "sha256": a.sha256}
            for a in submission.attachments
        ],
        history=[
            {
                "at": e.at,
                "kind": e.kind,
                "actor": e.actor,
                "delivery_id": e.delivery_id,
                "detail": e.detail,
            }
            for e in submission.events
        ],
    )
    result: dict[str, Any] = _STATUS.dump(body)
    return result
