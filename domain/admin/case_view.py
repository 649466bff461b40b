"""One case as an administrator sees it: its deliveries, its payment and its timeline.

An actor limited to offices (`domain.accounts.scopes`) finds only cases with a delivery to
its offices, and sees only those deliveries and their events; any other case is "not found".
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from domain.accounts.accounts import Actor
from domain.accounts.scopes import scope_of
from domain.config import Config
from domain.payments.payments import counted, payment_view
from store.engine import Store
from store.models import Payment, PaymentCallback, Submission, parse_reference


@dataclass(frozen=True)
class DeliveryDetail:
    """One delivery of the case, with what went wrong last."""

    id: str
    office: str
    office_name: str
    task_area: str
    status: str
    attempts: int
    last_error: str | None
    last_status_code: int | None
    next_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None
    case_number: str | None
    updated_at: dt.datetime
    # The case at FIT-Connect (a fit-connect delivery only); its event log is in the timeline.
    fit_case_id: str | None = None


@dataclass(frozen=True)
class TimelineEntry:
    """One event of the case's history (ids and kinds only, never personal data)."""

    at: dt.datetime
    kind: str
    actor: str
    delivery_id: str | None
    detail: dict[str, Any]


@dataclass(frozen=True)
class JournalEntry:
    """One inbound call about one of the case's payments (the payment callback journal).

    What answers "did the provider call us, and what did we answer?": when, which provider,
    a notification or the citizen's return, and the verdict. Never the caller's address (a
    return comes from the citizen's browser) nor the body.
    """

    at: dt.datetime
    provider: str
    kind: str
    verdict: str
    payment_id: str | None
    detail: str | None


#: The most recent journal rows a case shows (each names one of its payments; a caller who
#: knows a payment id could add rows, the rate limit bounds how fast).
JOURNAL_SHOWN = 100


@dataclass(frozen=True)
class SubmissionDetail:
    """A case with everything an administrator needs to decide what to do with it."""

    id: int
    reference: str
    service: str
    service_title: str
    municipality_ags: str
    municipality: str
    status: str
    received_at: dt.datetime
    personal_data_kept: bool
    deliveries: list[DeliveryDetail]
    payment: dict[str, Any] | None
    timeline: list[TimelineEntry]
    payment_journal: list[JournalEntry]


def payment_of(session: Session, submission: Submission, config: Config) -> dict[str, Any] | None:
    """The case's payment for administrators, or None when no fee is due.

    The attempt that counts (the paid one, else the latest) with its provider, Kassenzeichen
    and status, and every attempt below it; a case stored before payments existed shows the
    configured fee without a status.
    """
    attempts = list(
        session.scalars(
            select(Payment)
            .where(Payment.submission_id == submission.id)
            .order_by(Payment.created_at, Payment.id)
        )
    )
    if attempts:
        chosen = counted(attempts)
        assert chosen is not None  # there is at least one attempt
        view = payment_view(chosen)
        view["attempts"] = [payment_view(p) for p in attempts]
        return view
    service = config.services.get(submission.service)
    if service is None or service.fee is None:
        return None
    fee = service.fee
    return {"amount": str(fee.amount), "currency": fee.currency, "purpose": fee.purpose}


def journal_of(session: Session, submission_id: int) -> list[JournalEntry]:
    """The journal rows naming the case's payments, oldest first (the latest `JOURNAL_SHOWN`)."""
    ids = select(Payment.id).where(Payment.submission_id == submission_id)
    rows = session.scalars(
        select(PaymentCallback)
        .where(PaymentCallback.payment_id.in_(ids))
        .order_by(PaymentCallback.at.desc(), PaymentCallback.id.desc())
        .limit(JOURNAL_SHOWN)
    ).all()
    return [
        JournalEntry(r.at, r.provider, r.kind, r.verdict, r.payment_id, r.detail)
        for r in reversed(rows)
    ]


def submission_detail(
    store: Store, config: Config, reference: str, *, actor: Actor
) -> SubmissionDetail | None:
    """The case with this public reference as `actor` may see it, or None when there is none
    (or it is outside the actor's scope: the answer does not tell which)."""
    parsed = parse_reference(reference)
    if parsed is None:
        return None
    prefix, year, number = parsed
    scope = scope_of(actor)
    with store.read() as session:
        s = session.scalars(
            select(Submission)
            .where(
                Submission.id == number,
                Submission.reference_prefix == prefix,
                Submission.reference_year == year,
                scope.submissions(),
            )
            .options(selectinload(Submission.deliveries), selectinload(Submission.events))
        ).one_or_none()
        if s is None:
            return None
        shown = [d for d in s.deliveries if scope.covers(d.office_id)]
        own = {d.id for d in shown}
        town = config.municipality_by_ags(s.municipality_ags)
        service = config.services.get(s.service)
        return SubmissionDetail(
            id=s.id,
            reference=s.reference,
            service=s.service,
            service_title=service.title if service else s.service,
            municipality_ags=s.municipality_ags,
            municipality=town.name if town else s.municipality_ags,
            status=s.status,
            received_at=s.received_at,
            personal_data_kept=s.data is not None,
            deliveries=[
                DeliveryDetail(
                    id=d.id,
                    office=d.office_id,
                    office_name=config.offices[d.office_id].name
                    if d.office_id in config.offices
                    else d.office_id,
                    task_area=d.task_area,
                    status=d.status,
                    attempts=d.attempts,
                    last_error=d.last_error,
                    last_status_code=d.last_status_code,
                    next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
                    delivered_at=d.delivered_at,
                    case_number=d.case_number,
                    updated_at=d.updated_at,
                    fit_case_id=d.fit_case_id,
                )
                for d in shown
            ],
            payment=payment_of(session, s, config),
            timeline=[
                TimelineEntry(e.at, e.kind, e.actor, e.delivery_id, dict(e.detail))
                for e in s.events
                if e.delivery_id is None or e.delivery_id in own
            ],
            payment_journal=journal_of(session, s.id),
        )
