"""What the API answers, as marshmallow schemas: used to render answers and to describe them in OpenAPI."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from marshmallow import Schema, fields

from domain.config import Config
from domain.payments import pay_links as links
from domain.payments.payments import counted, payment_view, to_euros
from store.models import Payment, Submission


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
    fit_connect_case_id = fields.String(
        allow_none=True,
        metadata={
            "description": "FIT-Connect case id (status resource of a fit-connect delivery only; "
            "its verified event log is in the history as fit_connect.event)"
        },
    )


class LinksView(Schema):
    """Where to look next."""

    status = fields.String(required=True)


class PaymentAttemptView(Schema):
    """One payment attempt (a transaction with the provider)."""

    id = fields.String(required=True, metadata={"description": "our payment id (32 hex)"})
    status = fields.String(
        required=True,
        metadata={
            "description": "INITIAL, PAYED, BOOKED (both paid), FAILED, CANCELED, and our own "
            "expired, abandoned (replaced after a lost create answer), withdrawn (case cancelled)"
        },
    )
    amount = fields.String(required=True)
    currency = fields.String(required=True)
    provider = fields.String(required=True)
    transaction_id = fields.String(allow_none=True)
    transaction_reference = fields.String(
        allow_none=True, metadata={"description": "Kassenzeichen"}
    )
    method = fields.String(allow_none=True)
    created_at = fields.AwareDateTime(required=True)
    paid_at = fields.AwareDateTime(allow_none=True)
    expires_at = fields.AwareDateTime(required=True)


class PaymentView(Schema):
    """The fee of the submission and where the citizen pays it."""

    amount = fields.String(required=True, metadata={"example": "35.00"})
    currency = fields.String(required=True)
    purpose = fields.String(required=True)
    status = fields.String(
        required=True,
        metadata={
            "description": "the counted attempt's status: INITIAL (open), PAYED/BOOKED (paid), "
            "FAILED, CANCELED, expired (the pay link then starts a new attempt), withdrawn (the "
            "case was cancelled before it was paid)"
        },
    )
    paid = fields.Boolean(required=True)
    before_delivery = fields.Boolean(
        required=True, metadata={"description": "the case goes to the office once paid"}
    )
    url = fields.String(
        required=True,
        metadata={
            "description": "the link the citizen follows to pay: the bridge's pay page with a "
            "signed token (`/pay/{reference}?token=...`) that expires with the payment; the "
            "reference alone shows and creates nothing"
        },
    )
    transaction_reference = fields.String(
        allow_none=True, metadata={"description": "Kassenzeichen"}
    )
    paid_at = fields.AwareDateTime(allow_none=True)
    attempts = fields.List(
        fields.Nested(PaymentAttemptView), metadata={"description": "status resource only"}
    )


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


def pay_url(
    public_url: str, submission: Submission, payment: Payment, keys: tuple[str, ...], hours: int
) -> str:
    """The citizen's pay link: the bridge's own pay page, with a token (domain.payments.pay_links).

    It expires with the payment; once that payment is over (expired, failed, cancelled), a link
    given out now lives as long as a new attempt would, so that the status resource always
    shows a link an operator may pass on.
    """
    now = dt.datetime.now(dt.UTC)
    expires_at = payment.expires_at if payment.expires_at > now else now + dt.timedelta(hours=hours)
    return links.pay_url(
        public_url, submission.reference, encryption_keys=keys, expires_at=expires_at
    )


Moment = Callable[[dt.datetime | None], Any]
"""How `_base` writes a point in time: as the datetime (for a schema dump) or as JSON text."""


def _as_is(moment: dt.datetime | None) -> dt.datetime | None:
    """The point in time unchanged, for a schema's AwareDateTime to format."""
    return moment


def _iso(moment: dt.datetime | None) -> str | None:
    """The point in time as AwareDateTime dumps it (ISO 8601), None staying None."""
    return None if moment is None else moment.isoformat()


def _payment(
    submission: Submission,
    config: Config,
    public_url: str,
    keys: tuple[str, ...],
    attempts: bool,
    moment: Moment,
) -> dict[str, Any] | None:
    """The payment part: the counted attempt (the paid one, else the latest) and the link."""
    service = config.services.get(submission.service)
    fee = service.fee if service is not None else None
    found = counted(submission.payments)
    if found is None:
        return None
    body: dict[str, Any] = {
        "amount": str(to_euros(found.amount_cents)),
        "currency": found.currency,
        "purpose": found.purpose,
        "status": found.status,
        "paid": found.status in ("PAYED", "BOOKED"),
        "before_delivery": bool(fee and fee.before_delivery),
        "url": pay_url(public_url, submission, found, keys, fee.expires_after_hours if fee else 72),
        "transaction_reference": found.transaction_reference,
        "paid_at": moment(found.paid_at),
    }
    if attempts:
        body["attempts"] = [payment_view(p) for p in submission.payments]
    return body


def _base(
    submission: Submission,
    config: Config,
    public_url: str = "",
    keys: tuple[str, ...] = (),
    attempts: bool = False,
    moment: Moment = _as_is,
) -> dict[str, Any]:
    """The answer's fields in `SubmissionAnswer`'s order, points in time written by ``moment``."""
    municipality = config.municipality_by_ags(submission.municipality_ags)
    payment = _payment(submission, config, public_url, keys, attempts, moment)
    body: dict[str, Any] = {
        "reference": submission.reference,
        "status": submission.status,
        "service": submission.service,
        "received_at": moment(submission.received_at),
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
                "next_attempt_at": moment(d.next_attempt_at if d.status == "pending" else None),
                "case_number": d.case_number,
                "delivered_at": moment(d.delivered_at),
            }
            for d in submission.deliveries
        ],
        "links": {"status": status_path(submission)},
    }
    if payment is not None:
        body["payment"] = payment
    return body


def answer(
    submission: Submission, config: Config, public_url: str, keys: tuple[str, ...]
) -> dict[str, Any]:
    """The 202 answer for a stored submission.

    Built as `_ANSWER.dump` would write it (same keys, order and values; tests/bridge/api/test_views.py
    compares them) without the dump, which cost more than building the body: every value
    here already has its JSON type except the points in time.
    """
    return _base(submission, config, public_url, keys, moment=_iso)


def status(
    submission: Submission, config: Config, public_url: str, keys: tuple[str, ...]
) -> dict[str, Any]:
    """The status resource for a stored submission (with every payment attempt)."""
    body = _base(submission, config, public_url, keys, attempts=True)
    for view, delivery in zip(body["deliveries"], submission.deliveries, strict=True):
        if delivery.fit_case_id is not None:
            view["fit_connect_case_id"] = delivery.fit_case_id
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
