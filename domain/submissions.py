"""Persistence of a new submission: its rows in one transaction, and the look-up of a repeat.

A submission, its attachments, its deliveries and its first events are written in one
transaction; either all of it is stored or nothing is.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, func, insert, select
from sqlalchemy.exc import SQLAlchemyError as StoreError

from domain.attachments import Screened
from domain.config import Municipality, Office, Sender, Service
from domain.crypto import Vault
from domain.logs import log_event
from domain.problems import Problem, msg
from domain.store import (
    Attachment,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Event,
    Payment,
    Store,
    Submission,
    SubmissionStatus,
    new_id,
)
from schemas import Validated

log = logging.getLogger(__name__)

_SUBMISSIONS = cast(Table, Submission.__table__)
_ATTACHMENTS = cast(Table, Attachment.__table__)
_PAYMENTS = cast(Table, Payment.__table__)
_DELIVERIES = cast(Table, Delivery.__table__)
_EVENTS = cast(Table, Event.__table__)
# Built once: constructing statements per request cost more than executing them.
_INSERT_SUBMISSION = insert(_SUBMISSIONS).returning(_SUBMISSIONS.c.id)
_INSERTS = {t.name: insert(t) for t in (_ATTACHMENTS, _DELIVERIES, _EVENTS, _PAYMENTS)}
# On PostgreSQL a new delivery is due at the database's now (domain.clock: the one clock every
# host shares), set in the insert itself so the hot path pays no extra round trip. SQLite's
# file lives on this host, so this host's clock is the database's there.
# RETURNING gives the stored time back, so the answer shows what the workers will see.
_INSERT_DELIVERIES_DUE_NOW = (
    insert(_DELIVERIES)
    .values(next_attempt_at=func.timezone("UTC", func.now()))
    .returning(_DELIVERIES.c.next_attempt_at, sort_by_parameter_order=True)
)


def store_unavailable(service_id: str, exc: Exception) -> Problem:
    """The 503 answer when the store cannot be read or written (the sender should retry)."""
    log_event(
        log,
        "submission.store_failed",
        level=logging.ERROR,
        service=service_id,
        error=type(exc).__name__,
    )
    return Problem(
        503,
        "store-unavailable",
        msg("Der Antrag konnte nicht gespeichert werden.", "The submission could not be stored."),
        msg(
            "Bitte senden Sie ihn später noch einmal; es wurde nichts gespeichert.",
            "Please send it again later; nothing was stored.",
        ),
        headers={"Retry-After": "30"},
    )


def due_delivery(office: Office, now: dt.datetime) -> Delivery:
    """A new case delivery to `office`, pending and due at `now` (not yet stored)."""
    return Delivery(
        id=new_id(),
        office_id=office.id,
        task_area=office.task_area,
        channel=office.channel,
        kind=DeliveryKind.CASE,
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )


def new_submission(
    *,
    service: Service,
    sender: Sender,
    municipality: Municipality,
    validated: Validated,
    offices: Sequence[Office],
    files: Sequence[Screened],
    idempotency_key: str | None,
    fingerprint: str,
    vault: Vault,
    reference_year: int,
    now: dt.datetime,
) -> Submission:
    """The rows of a new submission (not yet stored): data and files encrypted, deliveries due."""
    submission = Submission(
        reference_prefix=municipality.reference_prefix,
        reference_year=reference_year,
        service=service.id,
        schema=service.schema,
        sender=sender.id,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        municipality_ags=municipality.ags,
        status=SubmissionStatus.ROUTED if offices else SubmissionStatus.RECEIVED,
        flags=dict(validated.flags),
        data=vault.encrypt_json(validated.data),
        received_at=now,
        updated_at=now,
    )
    for file in files:
        submission.attachments.append(
            Attachment(
                field=file.path,
                filename=vault.encrypt(file.upload.filename.encode()),
                content_type=file.content_type,
                size=len(file.upload.content),
                sha256=file.sha256,
                content=vault.encrypt(file.upload.content),
            )
        )
    deliveries = [due_delivery(o, now) for o in offices]
    submission.deliveries.extend(deliveries)
    submission.events.append(
        Event(
            kind="submission.received",
            actor=f"sender:{sender.id}",
            at=now,
            detail={
                "service": service.id,
                "schema": service.schema,
                "municipality_ags": municipality.ags,
                "attachments": len(files),
                "flags": sorted(k for k, v in validated.flags.items() if v is True),
            },
        )
    )
    for d in deliveries:
        submission.events.append(
            Event(
                kind="delivery.routed",
                actor="system",
                at=now,
                delivery_id=d.id,
                detail={"office": d.office_id, "task_area": d.task_area},
            )
        )
    return submission


def _row(obj: object, table: Any) -> dict[str, Any]:
    """The column values of a new ORM object, leaving auto-increment keys to the database."""
    return {
        c.key: getattr(obj, c.key)
        for c in table.columns
        if not (c.primary_key and c.autoincrement is True)
    }


def insert_submission(store: Store, submission: Submission) -> None:
    """Write the submission and everything that belongs to it in one transaction.

    The transaction may be shared with the submissions of concurrent requests (one commit,
    one fsync for all; domain/group_commit.py); this returns once it has committed. A second
    submission with the same (sender, service, key) raises IntegrityError and leaves nothing
    behind.
    """
    store.commits.write(lambda conn: write_submission(conn, submission))


def write_submission(conn: Connection, submission: Submission) -> None:
    """The inserts of one new submission on an open transaction.

    Core inserts of the ORM objects' values: the intake's hot path, where the unit of work's
    bookkeeping cost more than the inserts themselves (bench/intake).
    """
    submission.id = conn.execute(_INSERT_SUBMISSION, _row(submission, _SUBMISSIONS)).scalar_one()
    for table, children in (
        (_ATTACHMENTS, submission.attachments),
        (_DELIVERIES, submission.deliveries),
        (_EVENTS, submission.events),
        (_PAYMENTS, submission.payments),
    ):
        if not children:
            continue
        for child in children:
            child.submission_id = submission.id
            if isinstance(child, Payment):
                # The purpose template names the reference, known only now.
                child.purpose = child.purpose.replace("{reference}", submission.reference)
        rows = [_row(c, table) for c in children]
        if table is _DELIVERIES and conn.dialect.name == "postgresql":
            for row in rows:
                del row["next_attempt_at"]
            due = conn.execute(_INSERT_DELIVERIES_DUE_NOW, rows).scalars().all()
            for delivery, due_at in zip(submission.deliveries, due, strict=True):
                delivery.next_attempt_at = due_at
        else:
            conn.execute(_INSERTS[table.name], rows)


def find_existing(store: Store, sender: Sender, service: Service, key: str) -> Submission | None:
    """The stored submission of this sender and service under this key, with its deliveries."""
    try:
        with store.read() as session:
            found = session.scalars(
                select(Submission).where(
                    Submission.sender == sender.id,
                    Submission.service == service.id,
                    Submission.idempotency_key == key,
                )
            ).one_or_none()
            if found is not None:
                _ = list(found.deliveries)  # load before the session closes
                _ = list(found.payments)
            return found
    except StoreError as exc:
        # An unreachable store is a 503 (send again later), not an internal error.
        raise store_unavailable(service.id, exc) from None
