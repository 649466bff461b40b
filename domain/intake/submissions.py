"""Persistence of a new submission: its rows in one transaction, and the look-up of a repeat.

A submission, its attachments, its deliveries and its first events are written in one
transaction; either all of it is stored or nothing is.
"""

from __future__ import annotations

import datetime as dt
import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Connection, Table, func, literal_column, select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import SQLAlchemyError as StoreError

from domain.config import Municipality, Office, Sender, Service
from domain.intake.attachments import Screened
from domain.problems import Problem, msg
from infra.crypto import Vault
from infra.logs import log_event
from schemas import Validated
from store.engine import Store
from store.models import (
    Attachment,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Event,
    Payment,
    Submission,
    SubmissionStatus,
    new_id,
    transient,
)
from store.row_inserts import RowInsert

log = logging.getLogger(__name__)

_SUBMISSIONS = cast(Table, Submission.__table__)
_ATTACHMENTS = cast(Table, Attachment.__table__)
_PAYMENTS = cast(Table, Payment.__table__)
_DELIVERIES = cast(Table, Delivery.__table__)
_EVENTS = cast(Table, Event.__table__)
_DATABASE_NOW_UTC = func.timezone(literal_column("'UTC'"), func.now())


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
    return transient(
        Delivery,
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
    deliveries = [due_delivery(o, now) for o in offices]
    received = transient(
        Event,
        kind="submission.received",
        actor=f"sender:{sender.id}",
        at=now,
        delivery_id=None,
        detail={
            "service": service.id,
            "schema": service.schema,
            "municipality_ags": municipality.ags,
            "attachments": len(files),
            "flags": sorted(k for k, v in validated.flags.items() if v is True),
        },
    )
    routed = [
        transient(
            Event,
            kind="delivery.routed",
            actor="system",
            at=now,
            delivery_id=d.id,
            detail={"office": d.office_id, "task_area": d.task_area},
        )
        for d in deliveries
    ]
    return transient(
        Submission,
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
        attachments=[
            transient(
                Attachment,
                field=file.path,
                filename=vault.encrypt(file.filename.encode()),
                content_type=file.content_type,
                size=len(file.upload.content),
                sha256=file.sha256,
                content=vault.encrypt(file.upload.content),
            )
            for file in files
        ],
        deliveries=deliveries,
        events=[received, *routed],
    )


@dataclass(frozen=True)
class _Inserts:
    """The inserts of a new submission's rows, compiled for one dialect."""

    submission: RowInsert
    attachments: RowInsert
    deliveries: RowInsert
    events: RowInsert
    payments: RowInsert


_COMPILED: weakref.WeakKeyDictionary[Dialect, _Inserts] = weakref.WeakKeyDictionary()


def _inserts(dialect: Dialect) -> _Inserts:
    """The inserts for this dialect, compiled on first use (two threads racing compile alike)."""
    found = _COMPILED.get(dialect)
    if found is not None:
        return found
    if dialect.name == "postgresql":
        # A new delivery is due at the database's now (store.clock: the one clock every host
        # shares), set in the insert itself: no extra round trip. RETURNING gives the stored
        # time back, so the answer shows what the workers will see. SQLite's file lives on
        # this host, so this host's clock is the database's there.
        deliveries = RowInsert(
            _DELIVERIES,
            dialect,
            values={"next_attempt_at": _DATABASE_NOW_UTC},
            returning=[_DELIVERIES.c.next_attempt_at],
        )
    else:
        deliveries = RowInsert(_DELIVERIES, dialect)
    found = _Inserts(
        submission=RowInsert(_SUBMISSIONS, dialect, returning=[_SUBMISSIONS.c.id]),
        attachments=RowInsert(_ATTACHMENTS, dialect),
        deliveries=deliveries,
        events=RowInsert(_EVENTS, dialect),
        payments=RowInsert(_PAYMENTS, dialect),
    )
    _COMPILED[dialect] = found
    return found


def insert_submission(store: Store, submission: Submission) -> None:
    """Write the submission and everything that belongs to it in one transaction.

    The transaction may be shared with the submissions of concurrent requests (one commit,
    one fsync for all; store/group_commit.py); this returns once it has committed. A second
    submission with the same (sender, service, key) raises IntegrityError and leaves nothing
    behind.
    """
    store.commits.write(lambda conn: write_submission(conn, submission))


def write_submission(conn: Connection, submission: Submission) -> None:
    """The inserts of one new submission on an open transaction.

    Precompiled inserts of the objects' values on the driver's cursor (store/row_inserts.py):
    the intake's hot path, where the unit of work's and then Connection.execute's bookkeeping
    cost more than the inserts themselves (bench/README.md).
    """
    inserts = _inserts(conn.dialect)
    ((submission.id,),) = inserts.submission.execute(conn, [submission])
    children: list[Attachment | Delivery | Event | Payment] = [
        *submission.attachments,
        *submission.deliveries,
        *submission.events,
        *submission.payments,
    ]
    for child in children:
        child.submission_id = submission.id
    for payment in submission.payments:
        # The purpose template names the reference, known only now.
        payment.purpose = payment.purpose.replace("{reference}", submission.reference)
    inserts.attachments.execute(conn, submission.attachments)
    due = inserts.deliveries.execute(conn, submission.deliveries)
    for delivery, (due_at,) in zip(submission.deliveries, due, strict=False):
        delivery.next_attempt_at = due_at
    inserts.events.execute(conn, submission.events)
    inserts.payments.execute(conn, submission.payments)


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
