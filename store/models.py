"""The case tables: SQLAlchemy models for submissions, attachments, deliveries, events and payments.

The database is the state machine; the queue only carries work. SQLite (WAL) is the embedded
default, PostgreSQL the production store; both run the same code and the same migrations.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from enum import StrEnum, nonmember
from typing import Any, TypeVar, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    mapped_column,
    relationship,
)
from sqlalchemy.orm.attributes import instance_dict, set_committed_value

# SQLite only turns INTEGER PRIMARY KEY into an auto-incrementing rowid for plain INTEGER.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> dt.datetime:
    """The current time, timezone-aware in UTC (the only clock the store uses)."""
    return dt.datetime.now(dt.UTC)


def new_id() -> str:
    """A random public identifier (32 hex characters) for deliveries."""
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Stores aware datetimes as naive UTC and gives them back aware, the same on every store."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        """Convert to naive UTC on the way in."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        """Attach UTC on the way out."""
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of the store's tables."""


B = TypeVar("B", bound=Base)


def transient(cls: type[B], **values: Any) -> B:
    """A new, unsaved object of a model holding `values`, built without attribute events.

    The declarative constructor fires the unit of work's events for every value and every
    collection append; for the rows the intake writes with Core inserts (store/row_inserts.py)
    that bookkeeping cost about six times what building the objects does. A collection among
    `values` (a list) is set as it is, and one not given starts empty. The object can still be
    added to a session: a flush inserts what it holds.
    """
    columns, collections = _attributes(cls)
    unknown = values.keys() - columns - collections
    if unknown:
        raise TypeError(f"{cls.__name__} has no attribute {sorted(unknown)[0]!r}")
    obj = cast(B, cls.__mapper__.class_manager.new_instance())
    for key in collections:
        set_committed_value(obj, key, values.pop(key, []))
    instance_dict(obj).update(values)
    return obj


@functools.cache
def _attributes(cls: type[Base]) -> tuple[frozenset[str], frozenset[str]]:
    """A model's column attributes and its collections (one-to-many relationships)."""
    mapper = cls.__mapper__
    columns = frozenset(mapper.column_attrs.keys())
    collections = frozenset(k for k, r in mapper.relationships.items() if r.uselist)
    return columns, collections


# The statuses and kinds are StrEnums: each member is the str it stands for, so the database,
# JSON, templates and logs see the same value as before, and a plain string read back from a
# column compares (and hashes) equal to its member.
class SubmissionStatus(StrEnum):
    """Status names of a submission, derived from its deliveries once it is routed."""

    RECEIVED = "received"
    ROUTED = "routed"
    DELIVERED = "delivered"
    PARTIALLY_DELIVERED = "partially_delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # A fee is due before delivery (domain/payments/payments.py): the case deliveries are held.
    AWAITING_PAYMENT = "awaiting_payment"


class DeliveryStatus(StrEnum):
    """Status names of a delivery; `failed` is the dead-letter list."""

    PENDING = "pending"
    # Waits for the fee to be paid; neither claimed nor swept until domain/payments releases it.
    HELD = "held"
    DELIVERED = "delivered"
    FAILED = "failed"
    CANCELLED = "cancelled"
    # Handed over to FIT-Connect and submitted; delivered only once the destination accepts it
    # (ADR 15). The sweeper polls the case's event log; `next_attempt_at` is the next poll.
    AWAITING_ACCEPT = "awaiting_accept"


class Submission(Base):
    """One citizen application; its data and attachments are encrypted at rest."""

    __tablename__ = "submissions"
    __table_args__ = (
        # A key names a submission of one sender for one service: the same Formcycle process
        # id may come with a dog registration and a traffic order (ADR 6).
        UniqueConstraint(
            "sender", "service", "idempotency_key", name="uq_submissions_sender_service_key"
        ),
        Index("ix_submissions_service_received", "service", "received_at"),
        # The admin lists (newest first, by status or town): migration 0005.
        Index("ix_submissions_received", "received_at"),
        Index("ix_submissions_status_received", "status", "received_at"),
        Index("ix_submissions_municipality_received", "municipality_ags", "received_at"),
        {"sqlite_autoincrement": True},
    )

    # The number is the public reference's sequence: unique under any concurrency, never reused.
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    reference_prefix: Mapped[str] = mapped_column(String(4))
    reference_year: Mapped[int] = mapped_column(Integer)
    service: Mapped[str] = mapped_column(String(64))
    schema: Mapped[str] = mapped_column(String(64))
    sender: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    # SHA-256 of what was accepted (domain/intake/idempotency.py); NULL for rows stored before
    # fingerprints existed, whose repeats are all answered with the original.
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    municipality_ags: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(32))
    flags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    data: Mapped[bytes | None] = mapped_column(LargeBinary)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="submission", order_by="Attachment.id", cascade="all, delete-orphan"
    )
    deliveries: Mapped[list[Delivery]] = relationship(
        back_populates="submission", order_by="Delivery.created_at", cascade="all, delete-orphan"
    )
    events: Mapped[list[Event]] = relationship(
        back_populates="submission", order_by="Event.id", cascade="all, delete-orphan"
    )
    # Payment attempts (issue 7), oldest first; loaded only when asked for.
    payments: Mapped[list[Payment]] = relationship(
        order_by="Payment.created_at", cascade="all, delete-orphan", lazy="select"
    )

    @property
    def reference(self) -> str:
        """The public reference, e.g. NA-2026-000123."""
        return format_reference(self.reference_prefix, self.reference_year, self.id)


class Attachment(Base):
    """A file that came with a submission; name and content encrypted, hash in the clear."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    field: Mapped[str] = mapped_column(String(200))
    filename: Mapped[bytes] = mapped_column(LargeBinary)
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes | None] = mapped_column(LargeBinary)

    submission: Mapped[Submission] = relationship(back_populates="attachments")


class DeliveryKind(StrEnum):
    """What a delivery carries: the case itself, or the notice of a payment to the cash office."""

    CASE = "case"
    PAYMENT_NOTICE = "payment-notice"


class Delivery(Base):
    """One submission to one office; its own status, attempts and schedule."""

    __tablename__ = "deliveries"
    # Status first: the pending rows are few, whatever the history. Office second: the
    # sweeper's DISTINCT office_id reads them in order (no sort, so no planner with statistics
    # prefers a scan of the office index), and a drain's claim of one office is one range.
    __table_args__ = (
        Index("ix_deliveries_due_by_office", "status", "office_id", "next_attempt_at"),
        # Exactly one payment notice per paid transaction, whatever runs concurrently.
        Index("uq_deliveries_payment_id", "payment_id", unique=True),
        # The dead-letter list, newest failure first (migration 0005).
        Index("ix_deliveries_status_updated", "status", "updated_at"),
        # The rows changed after a past moment, for that moment's daily report (migration 0009).
        Index("ix_deliveries_updated", "updated_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    office_id: Mapped[str] = mapped_column(String(64), index=True)
    task_area: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    case_number: Mapped[str | None] = mapped_column(String(200))
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    kind: Mapped[str] = mapped_column(
        String(16), default=DeliveryKind.CASE, server_default=DeliveryKind.CASE
    )
    # The paid payment a payment notice reports (NULL for case deliveries).
    payment_id: Mapped[str | None] = mapped_column(String(32))
    # FIT-Connect (migration 0010): the submission and case ids, kept from the moment the
    # submission is created so that a crashed attempt resumes it instead of creating another,
    # and the channel's progress (announced attachment ids, uploads, authentication tags).
    fit_submission_id: Mapped[str | None] = mapped_column(String(36))
    fit_case_id: Mapped[str | None] = mapped_column(String(36), index=True)
    fit_state: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    submission: Mapped[Submission] = relationship(back_populates="deliveries")


class Event(Base):
    """Append-only history of a submission, its deliveries and every admin action."""

    __tablename__ = "events"
    # Failures per office and day for the overview and digest (migration 0005).
    __table_args__ = (Index("ix_events_kind_at", "kind", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    submission_id: Mapped[int | None] = mapped_column(ForeignKey("submissions.id"), index=True)
    delivery_id: Mapped[str | None] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    submission: Mapped[Submission | None] = relationship(back_populates="events")


# --- E-Payment (issue 7): payments and the journal of provider callbacks -----------------------


class PaymentStatus(StrEnum):
    """Statuses of a payment: XBezahldienste's, plus our own (lower case) give-ups.

    `expired`: open past its deadline. `abandoned`: replaced by a new attempt because its
    create's answer was lost or refused as PAYMENT_EXISTS. `withdrawn`: the case was cancelled
    while it was open. A payment the provider confirms later still leaves any of the three
    (the money is there), and the reconciliation keeps asking about the last two.
    """

    INITIAL = "INITIAL"
    PAYED = "PAYED"
    BOOKED = "BOOKED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    EXPIRED = "expired"
    ABANDONED = "abandoned"
    WITHDRAWN = "withdrawn"
    # Groups of statuses, not statuses themselves: nonmember keeps them out of the members.
    PAID = nonmember(frozenset({PAYED, BOOKED}))
    FINAL = nonmember(frozenset({PAYED, BOOKED, FAILED, CANCELED, EXPIRED, ABANDONED, WITHDRAWN}))
    #: Our own give-ups: a payment the provider confirms later may still leave them.
    GIVEN_UP = nonmember(frozenset({EXPIRED, ABANDONED, WITHDRAWN}))


class Payment(Base):
    """One fee transaction with a provider; moved only by domain/payments/payments.py, forward only."""

    __tablename__ = "payments"
    __table_args__ = (
        # Dedupe on the provider's transaction: one row per transaction of a provider.
        UniqueConstraint("provider", "transaction_id", name="uq_payments_provider_transaction"),
        Index("ix_payments_check", "status", "next_check_at"),
        # The rows changed after a past moment, for that moment's daily report (migration 0009).
        Index("ix_payments_updated", "updated_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"), index=True)
    provider: Mapped[str] = mapped_column(String(64))
    transaction_id: Mapped[str | None] = mapped_column(String(200))
    transaction_reference: Mapped[str | None] = mapped_column(String(200))  # Kassenzeichen
    pay_url: Mapped[str | None] = mapped_column(Text)
    # Integer cents: money is never a float.
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    purpose: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=PaymentStatus.INITIAL)
    method: Mapped[str | None] = mapped_column(String(64))
    # "bridge" (we created it) or "formcycle" (adopted from the form's own payment plugin).
    origin: Mapped[str] = mapped_column(String(16), default="bridge")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # Reconciliation: checks so far, when the next one is due, who holds the row meanwhile.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Provider errors in a row (migration 0007): the error cap counts these, not the checks.
    check_errors: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_check_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


class PaymentCallback(Base):
    """The journal of every inbound provider call, kept even when it was refused."""

    __tablename__ = "payment_callbacks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    provider: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "notify" or "return"
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    body_truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    payment_id: Mapped[str | None] = mapped_column(String(32), index=True)
    verdict: Mapped[str] = mapped_column(String(32), default="received")
    detail: Mapped[str | None] = mapped_column(String(200))


# --- Administration: bulk replays and the daily digest (issue 8, migration 0005) ------------


class BulkReplayStatus(StrEnum):
    """Status names of a bulk replay; only one may be `running` at a time (a unique index)."""

    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"


class BulkReplay(Base):
    """A replay of many failed deliveries chosen by a filter: the stored, pollable job."""

    __tablename__ = "bulk_replays"
    __table_args__ = (
        # One active bulk replay at a time, enforced by the database on every store.
        Index(
            "uq_bulk_replays_one_running",
            "status",
            unique=True,
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    filter: Mapped[dict[str, Any]] = mapped_column(JSON)
    total: Mapped[int] = mapped_column(Integer)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default=BulkReplayStatus.RUNNING)
    created_by: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    rate_per_office: Mapped[float] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class BulkReplayItem(Base):
    """One delivery a bulk replay took: the set is frozen when the replay starts."""

    __tablename__ = "bulk_replay_items"

    bulk_replay_id: Mapped[int] = mapped_column(ForeignKey("bulk_replays.id"), primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)
    office_id: Mapped[str] = mapped_column(String(64))
    previous_attempts: Mapped[int] = mapped_column(Integer)
    release_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # Set when the replay was cancelled before this delivery was sent (it is failed again).
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False)


class DigestSent(Base):
    """A day whose digest went out: the primary key makes two sweepers send it once."""

    __tablename__ = "digests_sent"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    sent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    recipients: Mapped[int] = mapped_column(Integer, default=0)


def format_reference(prefix: str, year: int, number: int) -> str:
    """Format a public reference; numbers grow past six digits rather than wrap."""
    return f"{prefix}-{year}-{number:06d}"


def parse_reference(reference: str) -> tuple[str, int, int] | None:
    """Split a public reference into (prefix, year, number), or None when it is not one."""
    # ASCII only: str.isdigit() also takes "¹" (which int() refuses) and "٠١" (read as 01).
    if not reference.isascii():
        return None
    parts = reference.split("-")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[0].isupper():
        return None
    if not (parts[1].isdigit() and len(parts[1]) == 4 and parts[2].isdigit()):
        return None
    if not 1 <= len(parts[2]) <= 18:
        return None
    return parts[0], int(parts[1]), int(parts[2])
