"""The status and kind enums: their values, and that a member is its value everywhere.

The values are what existing databases hold, what the JSON answers and the admin pages show,
and what the migrations name (the one-running bulk replay index, a delivery's default kind);
changing one needs a migration, so they are pinned here. A member must round-trip through both
stores and read back, render and hash exactly like the plain string it stands for.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from enum import StrEnum
from typing import cast

import jinja2
import pytest
from sqlalchemy import Engine, String, Table, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from store.engine import make_engine
from store.models import (
    BulkReplay,
    BulkReplayStatus,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    Payment,
    PaymentStatus,
    Submission,
    SubmissionStatus,
)

AT = dt.datetime(2026, 12, 1, 17, 45, tzinfo=dt.UTC)

EXPECTED: dict[type[StrEnum], set[str]] = {
    SubmissionStatus: {
        "received",
        "routed",
        "delivered",
        "partially_delivered",
        "failed",
        "cancelled",
        "awaiting_payment",
    },
    DeliveryStatus: {"pending", "held", "delivered", "failed", "cancelled", "awaiting_accept"},
    DeliveryKind: {"case", "payment-notice"},
    # XBezahldienste's own spelling (upper case, "PAYED"), plus our lower-case give-ups.
    PaymentStatus: {
        "INITIAL",
        "PAYED",
        "BOOKED",
        "FAILED",
        "CANCELED",
        "expired",
        "abandoned",
        "withdrawn",
    },
    BulkReplayStatus: {"running", "done", "cancelled"},
}

# Each enum and the column that stores it.
COLUMNS: dict[type[StrEnum], InstrumentedAttribute[str]] = {
    SubmissionStatus: Submission.status,
    DeliveryStatus: Delivery.status,
    DeliveryKind: Delivery.kind,
    PaymentStatus: Payment.status,
    BulkReplayStatus: BulkReplay.status,
}


@pytest.mark.parametrize("enum", list(EXPECTED), ids=lambda e: e.__name__)
def test_values_are_the_stored_ones(enum: type[StrEnum]) -> None:
    """Each enum has exactly the values stored rows and answers use, and each fits its column."""
    assert {member.value for member in enum} == EXPECTED[enum]
    length = cast(String, COLUMNS[enum].property.columns[0].type).length
    assert length is not None
    assert all(len(member) <= length for member in enum)


def test_what_the_migrations_name() -> None:
    """The partial unique index and the kind's server default spell these values literally."""
    assert BulkReplayStatus.RUNNING.value == "running"
    assert DeliveryKind.CASE.value == "case"


def test_payment_groups_are_not_members() -> None:
    """PAID, FINAL and GIVEN_UP group statuses; they are no statuses of their own."""
    assert {"PAYED", "BOOKED"} == PaymentStatus.PAID
    assert {
        "PAYED",
        "BOOKED",
        "FAILED",
        "CANCELED",
        "expired",
        "abandoned",
        "withdrawn",
    } == PaymentStatus.FINAL
    assert {"expired", "abandoned", "withdrawn"} == PaymentStatus.GIVEN_UP
    assert len(PaymentStatus) == 8
    assert PaymentStatus.PAYED in PaymentStatus.PAID
    assert PaymentStatus.INITIAL not in PaymentStatus.FINAL


@pytest.mark.parametrize("enum", list(EXPECTED), ids=lambda e: e.__name__)
def test_a_member_is_its_value(enum: type[StrEnum]) -> None:
    """Rendered, dumped, compared and looked up, a member behaves as its plain string."""
    template = jinja2.Environment(autoescape=True).from_string("{{ s }}")
    for member in enum:
        plain = str(member.value)
        assert isinstance(member, str)
        assert str(member) == f"{member}" == format(member, "") == plain
        assert template.render(s=member) == plain
        assert json.dumps({member: member}) == json.dumps({plain: plain})
        assert member == plain
        assert hash(member) == hash(plain)
        by_plain: dict[str, int] = {plain: 1}
        by_member: dict[str, int] = {member: 1}
        assert by_plain[member] == 1
        assert by_member[plain] == 1


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """The migrated store's engine."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def rows(session: Session) -> dict[type[StrEnum], Submission | Delivery | Payment | BulkReplay]:
    """One stored row for each enum's column, with every required column filled."""
    submission = Submission(
        reference_prefix="NA",
        reference_year=2026,
        service="dog-registration",
        schema="dog-registration",
        sender="formcycle",
        municipality_ags="06434001",
        status=SubmissionStatus.RECEIVED,
    )
    session.add(submission)
    session.flush()
    delivery = Delivery(
        submission_id=submission.id, office_id="usingen", task_area="dogs", channel="http-json"
    )
    payment = Payment(
        submission_id=submission.id,
        provider="xbezahldienste",
        amount_cents=4200,
        currency="EUR",
        purpose="Hundesteuer",
        expires_at=AT,
    )
    replay = BulkReplay(filter={}, total=0, created_by="admin", reason="test", rate_per_office=1.0)
    session.add_all([delivery, payment, replay])
    session.flush()
    return {
        SubmissionStatus: submission,
        DeliveryStatus: delivery,
        DeliveryKind: delivery,
        PaymentStatus: payment,
        BulkReplayStatus: replay,
    }


def test_members_round_trip_through_the_store(engine: Engine) -> None:
    """Each member written to its column reads back as the equal plain string and filters by in_()."""
    with Session(engine) as session, session.begin():
        objects = rows(session)
        ids = {enum: obj.id for enum, obj in objects.items()}
    for enum, column in COLUMNS.items():
        table = cast(Table, column.class_.__table__)
        key = table.c.id == ids[enum]
        for member in enum:
            with engine.begin() as conn:
                conn.execute(update(table).where(key).values({column.key: member}))
            with engine.connect() as conn:
                found = conn.execute(select(column).where(key, column.in_([member]))).scalar_one()
            assert type(found) is str
            assert found == member
            assert found == member.value
