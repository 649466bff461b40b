"""Retention: old delivered cases lose their personal data and keep their history; nothing in flight."""

from __future__ import annotations

import datetime as dt
import io

from flask.testing import FlaskClient
from sqlalchemy import select, text, update

from domain.delivery.retention import purge
from domain.settings import Settings
from store.engine import Store
from store.models import Delivery, Payment, Submission
from tests.admin_support import HEADERS, post
from tests.conftest import bridge_cli
from tests.factories import PDF, flatten, traffic


def _construction(client: FlaskClient) -> str:
    data: dict[str, object] = dict(flatten(traffic(reason="construction")))
    data["site_plan"] = (io.BytesIO(PDF), "Lageplan Müller.pdf", "application/pdf")
    response = client.post(
        "/webhooks/formcycle/traffic-order",
        data=data,
        headers=HEADERS,
        content_type="multipart/form-data",
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    reference: str = response.get_json()["reference"]
    return reference


def _number(reference: str) -> int:
    return int(reference.rsplit("-", 1)[1])


def _kinds(store: Store, submission_id: int) -> list[str]:
    with store.engine.connect() as conn:
        return [
            r.kind
            for r in conn.execute(
                text("SELECT kind FROM events WHERE submission_id = :s ORDER BY id"),
                {"s": submission_id},
            )
        ]


def _accepted(client: FlaskClient) -> list[str]:
    lines = client.get("/metrics").get_data(as_text=True).splitlines()
    return [line for line in lines if line.startswith("bridge_submissions_total")]


def test_purge_clears_old_delivered_cases_and_keeps_history(
    client: FlaskClient, store: Store, environ: dict[str, str]
) -> None:
    """Raw rows prove it: data and file gone, hash/size/type, deliveries and events kept."""
    old = _construction(client)
    recent = post(client)
    failed = post(client)
    pending = post(client)
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=100)
    with store.session() as session:
        for ref, status, at in (
            (old, "delivered", long_ago),
            (recent, "delivered", dt.datetime.now(dt.UTC) - dt.timedelta(days=10)),
            (failed, "failed", None),
        ):
            session.execute(
                update(Delivery)
                .where(Delivery.submission_id == _number(ref))
                .values(status=status, delivered_at=at, attempts=1)
            )
            session.execute(
                update(Submission).where(Submission.id == _number(ref)).values(status=status)
            )
        # The traffic order's fee was paid (only an open payment keeps a case, see below).
        session.execute(
            update(Payment).where(Payment.submission_id == _number(old)).values(status="PAYED")
        )
    metrics_before = _accepted(client)
    history_before = _kinds(store, _number(old))
    dry = bridge_cli(environ, "purge", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "1 submission(s) would be purged (dry run)" in dry.stdout
    done = bridge_cli(environ, "purge")
    assert done.returncode == 0, done.stderr
    assert "purged 1 submission(s) and 1 attachment(s)" in done.stdout
    with store.engine.connect() as conn:
        rows = {r.id: r.data for r in conn.execute(text("SELECT id, data FROM submissions"))}
        (att,) = conn.execute(
            text("SELECT filename, content, sha256, size, content_type FROM attachments")
        ).all()
        events = [
            r.kind
            for r in conn.execute(
                text("SELECT kind FROM events WHERE submission_id = :s ORDER BY id"),
                {"s": _number(old)},
            )
        ]
        deliveries = conn.execute(
            text("SELECT count(*) FROM deliveries WHERE submission_id = :s"), {"s": _number(old)}
        ).scalar_one()
    assert rows[_number(old)] is None
    assert all(rows[_number(r)] is not None for r in (recent, failed, pending))
    assert att.content is None
    assert bytes(att.filename) == b""
    assert (att.size, att.content_type) == (len(PDF), "application/pdf")
    assert len(att.sha256) == 64
    assert events == [*history_before, "retention.purged"]
    assert deliveries == 1
    # The metrics count rows, which a purge keeps: the counters do not go back.
    assert _accepted(client) == metrics_before
    again = bridge_cli(environ, "purge")
    assert again.returncode == 0  # nothing due is no failure
    assert "purged 0 submission(s)" in again.stdout
    with store.read() as session:
        assert session.scalar(select(Submission.status).where(Submission.id == _number(old))) == (
            "delivered"
        )


def test_a_case_whose_payment_is_still_open_is_kept(
    client: FlaskClient, store: Store, environ: dict[str, str]
) -> None:
    """Delivered long ago, but its fee is still INITIAL (not reconciled): the data stays, so
    that a late payment can still reach the cash office with the case."""
    reference = _construction(client)
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=100)
    with store.session() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.submission_id == _number(reference))
            .values(status="delivered", delivered_at=long_ago, attempts=1)
        )
        [status] = session.scalars(
            select(Payment.status).where(Payment.submission_id == _number(reference))
        )
    assert status == "INITIAL"
    dry = bridge_cli(environ, "purge", "--dry-run")
    assert (dry.returncode, dry.stdout.strip()) == (0, "0 submission(s) would be purged (dry run)")
    with store.engine.connect() as conn:
        data = conn.execute(
            text("SELECT data FROM submissions WHERE id = :s"), {"s": _number(reference)}
        ).scalar_one()
    assert data is not None
    with store.session() as session:
        session.execute(
            update(Payment)
            .where(Payment.submission_id == _number(reference))
            .values(status="expired")
        )
    # Once the payment is final (here: expired) the case is purged like any other.
    done = bridge_cli(environ, "purge")
    assert done.returncode == 0, done.stderr


def _personal(store: Store, submission_id: int) -> tuple[object, list[object]]:
    """The submission's stored data and its attachments' contents, read straight from the rows."""
    with store.engine.connect() as conn:
        data = conn.execute(
            text("SELECT data FROM submissions WHERE id = :s"), {"s": submission_id}
        ).scalar_one()
        contents = list(
            conn.execute(
                text("SELECT content FROM attachments WHERE submission_id = :s"),
                {"s": submission_id},
            ).scalars()
        )
    return data, contents


def test_unpaid_and_cancelled_cases_are_purged_after_the_period(
    client: FlaskClient, store: Store, settings: Settings
) -> None:
    """Counted from the expiry or the cancellation; open payments and pending deliveries stay."""
    now = dt.datetime.now(dt.UTC)
    long_ago, lately = now - dt.timedelta(days=100), now - dt.timedelta(days=10)
    expired, expired_lately, still_open = (_construction(client) for _ in range(3))
    cancelled, cancelled_lately, pending = post(client), post(client), post(client)
    with store.session() as session:
        for ref, status, at in (
            (expired, "expired", long_ago),
            (expired_lately, "expired", lately),
        ):
            session.execute(
                update(Payment)
                .where(Payment.submission_id == _number(ref))
                .values(status=status, expires_at=at, updated_at=at)
            )
        # The open one was started long ago, but its deadline has not passed.
        session.execute(
            update(Payment)
            .where(Payment.submission_id == _number(still_open))
            .values(created_at=long_ago, updated_at=long_ago, expires_at=now + dt.timedelta(1))
        )
        for ref in (expired, expired_lately, still_open):
            session.execute(
                update(Delivery)
                .where(Delivery.submission_id == _number(ref))
                .values(status="held", created_at=long_ago)
            )
        for ref, at in ((cancelled, long_ago), (cancelled_lately, lately)):
            session.execute(
                update(Delivery)
                .where(Delivery.submission_id == _number(ref))
                .values(status="cancelled", updated_at=at, created_at=long_ago)
            )
            session.execute(
                update(Submission).where(Submission.id == _number(ref)).values(status="cancelled")
            )
        session.execute(
            update(Delivery)
            .where(Delivery.submission_id == _number(pending))
            .values(created_at=long_ago, updated_at=long_ago)
        )
    history = {ref: _kinds(store, _number(ref)) for ref in (expired, cancelled)}
    data, contents = _personal(store, _number(expired))
    assert data is not None
    assert contents != []
    assert all(c is not None for c in contents)

    result = purge(store, settings.config)

    assert (result.submissions, result.attachments) == (2, 1)
    for ref in (expired, cancelled):
        data, contents = _personal(store, _number(ref))
        assert data is None
        assert all(c is None for c in contents)
        assert _kinds(store, _number(ref)) == [*history[ref], "retention.purged"]
    with store.engine.connect() as conn:
        (filename,) = conn.execute(
            text("SELECT filename FROM attachments WHERE submission_id = :s"),
            {"s": _number(expired)},
        ).one()
        kept = conn.execute(
            text(
                "SELECT s.status, count(d.id) FROM submissions s JOIN deliveries d "
                "ON d.submission_id = s.id WHERE s.id = :s GROUP BY s.status"
            ),
            {"s": _number(cancelled)},
        ).one()
        payments = conn.execute(
            text("SELECT status FROM payments WHERE submission_id = :s"), {"s": _number(expired)}
        ).scalar_one()
    assert bytes(filename) == b""
    assert tuple(kept) == ("cancelled", 1)
    assert payments == "expired"
    for ref in (expired_lately, still_open, cancelled_lately, pending):
        data, _ = _personal(store, _number(ref))
        assert data is not None, ref
    assert purge(store, settings.config).submissions == 0
