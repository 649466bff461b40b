"""Precompiled row inserts and unsaved models, on both stores.

The intake writes its rows with `store.row_inserts.RowInsert` instead of `Connection.execute`;
what lands in the tables must be exactly what `Connection.execute` would have stored, and a
failing insert must fail as SQLAlchemy's own error, without the row's values in its text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any, cast

import pytest
from sqlalchemy import Connection, Engine, Table, func, insert, literal_column, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from store.engine import make_engine
from store.models import (
    Delivery,
    DeliveryStatus,
    Event,
    Submission,
    SubmissionStatus,
    new_id,
    transient,
)
from store.row_inserts import RowInsert

SUBMISSIONS = cast(Table, Submission.__table__)
DELIVERIES = cast(Table, Delivery.__table__)
EVENTS = cast(Table, Event.__table__)
AT = dt.datetime(2026, 12, 1, 17, 45, 12, 345678, tzinfo=dt.UTC)
# Another zone on the way in: stored as naive UTC by UTCDateTime's bind processor.
AT_BERLIN = AT.astimezone(dt.timezone(dt.timedelta(hours=1)))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """The migrated store's engine."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


def submission(key: str) -> Submission:
    """An unsaved submission with values of every kind its columns hold."""
    return transient(
        Submission,
        reference_prefix="NA",
        reference_year=2026,
        service="dog-registration",
        schema="dog-registration",
        sender="formcycle",
        idempotency_key=key,
        fingerprint="f" * 64,
        municipality_ags="06434001",
        status=SubmissionStatus.ROUTED,
        flags={"dangerous_dog": True, "Zwinger": "ä ö ü ß"},
        data=b"\x00\xffencrypted",
        received_at=AT_BERLIN,
        updated_at=AT,
    )


def stored(engine: Engine, table: Table, **where: Any) -> list[dict[str, Any]]:
    """The rows of `table` matching `where`, without their generated keys, read back by SQLAlchemy."""
    query = select(table).where(*(table.c[k] == v for k, v in where.items()))
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    for row in rows:
        row.pop("id", None)
    return rows


def insert_submission(conn: Connection, key: str) -> int:
    """Store `submission(key)` with a RowInsert; its new id."""
    ((submission_id,),) = RowInsert(
        SUBMISSIONS, conn.dialect, returning=[SUBMISSIONS.c.id]
    ).execute(conn, [submission(key)])
    assert isinstance(submission_id, int)
    return submission_id


def delivery(office_id: str, **values: Any) -> Delivery:
    """An unsaved pending case delivery to `office_id`."""
    return transient(
        Delivery,
        id=new_id(),
        office_id=office_id,
        task_area="dog_tax",
        channel="json",
        kind="case",
        status=DeliveryStatus.PENDING,
        attempts=0,
        created_at=AT,
        updated_at=AT,
        **values,
    )


def test_a_row_insert_stores_what_connection_execute_stores(engine: Engine) -> None:
    plan = RowInsert(SUBMISSIONS, engine.dialect, returning=[SUBMISSIONS.c.id])
    fast, core = submission("fast"), submission("core")
    with engine.begin() as conn:
        ((fast_id,),) = plan.execute(conn, [fast])
        values = {c.key: getattr(core, c.key) for c in SUBMISSIONS.columns if c.key != "id"}
        core_id = conn.execute(insert(SUBMISSIONS).returning(SUBMISSIONS.c.id), values).scalar()
    assert isinstance(fast_id, int)
    assert fast_id != core_id
    (row,) = stored(engine, SUBMISSIONS, idempotency_key="fast")
    (expected,) = stored(engine, SUBMISSIONS, idempotency_key="core")
    expected["idempotency_key"] = "fast"
    assert row == expected
    assert row["received_at"] == AT
    assert row["received_at"].tzinfo is dt.UTC
    assert row["flags"] == {"dangerous_dog": True, "Zwinger": "ä ö ü ß"}
    assert row["data"] == b"\x00\xffencrypted"


def test_several_rows_in_one_call_and_none_for_no_objects(engine: Engine) -> None:
    with engine.begin() as conn:
        submission_id = insert_submission(conn, "events")
        events = [
            transient(
                Event,
                submission_id=submission_id,
                kind=f"probe.{n}",
                actor="system",
                at=AT,
                delivery_id=None,
                detail={"n": n},
            )
            for n in range(3)
        ]
        plan = RowInsert(EVENTS, engine.dialect)
        assert plan.execute(conn, events) == []
        assert plan.execute(conn, []) == []
    rows = stored(engine, EVENTS, submission_id=submission_id)
    assert sorted((r["kind"], r["detail"]["n"], r["at"]) for r in rows) == [
        (f"probe.{n}", n, AT) for n in range(3)
    ]


def test_returning_comes_back_in_the_objects_order_converted(engine: Engine) -> None:
    # The intake's PostgreSQL delivery insert: due at the database's clock, read back per row.
    due_now = func.timezone(literal_column("'UTC'"), func.now())
    if engine.dialect.name == "sqlite":
        due_now = func.datetime(literal_column("'now'"))
    with engine.begin() as conn:
        submission_id = insert_submission(conn, "due")
        deliveries = [delivery(f"office-{n}", submission_id=submission_id) for n in range(3)]
        plan = RowInsert(
            DELIVERIES,
            engine.dialect,
            values={"next_attempt_at": due_now},
            returning=[DELIVERIES.c.id, DELIVERIES.c.next_attempt_at],
        )
        returned = plan.execute(conn, deliveries)
    assert [r[0] for r in returned] == [d.id for d in deliveries]
    for _, due_at in returned:
        assert isinstance(due_at, dt.datetime)
        assert due_at.tzinfo is dt.UTC
        assert abs(due_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    rows = {r["office_id"]: r for r in stored(engine, DELIVERIES, submission_id=submission_id)}
    assert [rows[d.office_id]["next_attempt_at"] for d in deliveries] == [r[1] for r in returned]


def test_a_failing_insert_raises_sqlalchemys_error_without_the_values(engine: Engine) -> None:
    plan = RowInsert(SUBMISSIONS, engine.dialect, returning=[SUBMISSIONS.c.id])
    with engine.begin() as conn:
        plan.execute(conn, [submission("twice")])
    with pytest.raises(IntegrityError) as raised, engine.begin() as conn:
        plan.execute(conn, [submission("twice")])
    assert "UNIQUE" in str(raised.value).upper()
    assert "06434001" not in str(raised.value)
    assert "parameters:" not in str(raised.value)
    # The failed transaction left nothing behind and the store takes the next insert.
    assert len(stored(engine, SUBMISSIONS, idempotency_key="twice")) == 1
    with engine.begin() as conn:
        plan.execute(conn, [submission("after")])
    assert len(stored(engine, SUBMISSIONS, idempotency_key="after")) == 1


def test_an_unsaved_model_holds_its_values_and_a_session_can_still_store_it(
    engine: Engine,
) -> None:
    with pytest.raises(TypeError, match="no attribute 'colour'"):
        transient(Submission, colour="blue")
    new = submission("session")
    assert new.deliveries == []
    assert new.events == []
    assert new.payments == []
    assert new.flags == {"dangerous_dog": True, "Zwinger": "ä ö ü ß"}
    new.deliveries.append(delivery("usingen-steueramt", next_attempt_at=AT))
    with Session(engine) as session, session.begin():
        session.add(new)
    (row,) = stored(engine, SUBMISSIONS, idempotency_key="session")
    assert row["received_at"] == AT
    assert row["municipality_ags"] == "06434001"
    (delivered,) = stored(engine, DELIVERIES, office_id="usingen-steueramt")
    assert delivered["next_attempt_at"] == AT
    assert delivered["status"] == DeliveryStatus.PENDING
