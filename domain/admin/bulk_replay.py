"""Bulk replay: many failed deliveries sent again, as a stored job, no faster than a rate per office.

Starting a bulk replay freezes the set of deliveries (those the dry run counted, taken under
the same filter in the same transaction), replays each through the one state machine
(`domain.delivery.deliveries.replay_in`) and staggers when each is due: the k-th delivery of
an office is due k / rate seconds after the start, so the workers release them at the
office's rate without any long-running job. The database row is the job's state; the sweeper brings its
counts up to date and marks it done (`refresh_running`), and a restart of any process loses
nothing. Only one bulk replay runs at a time: a partial unique index says so.

Cancelling puts the deliveries not yet attempted back to failed (with their former attempts);
those already sent stay as they are.

An actor limited to offices (`domain.accounts.scopes`) replays only its offices' deliveries,
and sees and cancels only bulk replays whose every delivery is within its offices.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain.accounts.accounts import Actor, Role, record_action
from domain.accounts.scopes import scope_of
from domain.admin.operations import check_reason
from domain.admin.search import SubmissionFilter, failed_query
from domain.config import Config
from domain.delivery.deliveries import refresh_statuses, replay_in
from domain.problems import Problem, msg
from store.clock import database_now
from store.engine import Store
from store.models import (
    BulkReplay,
    BulkReplayItem,
    BulkReplayStatus,
    Delivery,
    DeliveryStatus,
    Event,
)

# A bulk replay larger than this is refused: narrow the filter (Convoy caps at 10,000 too).
MAX_BULK = 10_000
# Seconds between the end of the starting transaction and the first release (its commit).
START_MARGIN_S = 0.5


@dataclass(frozen=True)
class BulkReplayView:
    """A bulk replay as the API, CLI and web page show it (counts as of now)."""

    id: int
    status: str
    filter: dict[str, str]
    total: int
    processed: int
    failed: int
    delivered: int
    created_by: str
    reason: str
    rate_per_office: float
    created_at: dt.datetime
    finished_at: dt.datetime | None
    # When the last delivery is due to be released (the expected end).
    releases_until: dt.datetime | None

    @property
    def active(self) -> bool:
        """Whether the replay still runs."""
        return self.status == BulkReplayStatus.RUNNING


def _refused(actor: Actor) -> None:
    if not actor.may(Role.OPERATOR):
        raise Problem(
            403,
            "forbidden",
            msg("Keine Berechtigung.", "Forbidden."),
            msg("Dafür ist die Rolle operator nötig.", "This needs the operator role."),
        )


def _busy(running_id: int | None) -> Problem:
    return Problem(
        409,
        "bulk-replay-running",
        msg(
            "Es läuft bereits eine Sammel-Wiederholung.",
            "A bulk replay is already running.",
        ),
        msg(
            f"Bitte warten, bis Lauf {running_id} fertig ist, oder ihn abbrechen.",
            f"Wait for run {running_id} to finish, or cancel it.",
        ),
    )


def start(
    store: Store,
    config: Config,
    flt: SubmissionFilter,
    actor: Actor,
    reason: str,
    *,
    rate_per_office: float,
) -> tuple[BulkReplayView, list[str]]:
    """Start a bulk replay of the failed deliveries matching `flt`; returns it and the offices
    to wake after the commit.

    Refused with 403 (viewer), 422 (no reason; nothing matches; more than MAX_BULK) or 409
    (another bulk replay runs). Nothing is changed by a refusal.
    """
    _refused(actor)
    reason = check_reason(reason, required=True)
    if not rate_per_office > 0:
        raise ValueError("rate_per_office must be positive")
    try:
        with store.session() as session:
            running = session.scalar(
                select(BulkReplay.id).where(BulkReplay.status == BulkReplayStatus.RUNNING)
            )
            if running is not None:
                raise _busy(running)
            began = time.monotonic()
            ids = list(
                session.scalars(
                    failed_query(flt, scope_of(actor))
                    .order_by(Delivery.office_id, Delivery.updated_at, Delivery.id)
                    .limit(MAX_BULK + 1)
                )
            )
            if not ids:
                raise Problem(
                    422,
                    "nothing-to-replay",
                    msg(
                        "Keine fehlgeschlagenen Zustellungen passen zum Filter.",
                        "No failed deliveries match the filter.",
                    ),
                )
            if len(ids) > MAX_BULK:
                raise Problem(
                    422,
                    "too-many",
                    msg(
                        f"Mehr als {MAX_BULK} Zustellungen; bitte den Filter eingrenzen.",
                        f"More than {MAX_BULK} deliveries; please narrow the filter.",
                    ),
                )
            # Loaded (and locked) as objects, so the replay below finds them in the session.
            rows = list(
                session.scalars(
                    select(Delivery)
                    .where(Delivery.id.in_(ids))
                    .order_by(Delivery.office_id, Delivery.updated_at, Delivery.id)
                    .with_for_update()
                )
            )
            previous = {d.id: d.attempts for d in rows}
            now = database_now(session.connection())
            job = BulkReplay(
                filter=flt.as_args(),
                total=len(rows),
                processed=0,
                failed=0,
                status=BulkReplayStatus.RUNNING,
                created_by=actor.label,
                reason=reason,
                rate_per_office=rate_per_office,
                created_at=now,
            )
            session.add(job)
            session.flush()
            record_action(
                session,
                actor,
                "admin.bulk_replay.started",
                reason=reason,
                detail={
                    "bulk_replay": job.id,
                    "filter": flt.as_args(),
                    "total": len(rows),
                    "rate_per_office": rate_per_office,
                },
            ).at = now
            result = replay_in(
                session, [d.id for d in rows], actor, reason, detail={"bulk_replay": job.id}
            )
            if result.skipped:
                # The rows were locked above; a skip here is a bug, not a race.
                raise RuntimeError(f"bulk replay skipped {len(result.skipped)} locked deliveries")
            # The first release comes after this transaction commits: a slow start must not
            # leave a second's worth of deliveries due at once.
            base = now + dt.timedelta(seconds=time.monotonic() - began + START_MARGIN_S)
            per_office: dict[str, int] = {}
            for d in rows:
                k = per_office.get(d.office_id, 0)
                per_office[d.office_id] = k + 1
                d.next_attempt_at = base + dt.timedelta(seconds=k / rate_per_office)
                session.add(
                    BulkReplayItem(
                        bulk_replay_id=job.id,
                        delivery_id=d.id,
                        office_id=d.office_id,
                        previous_attempts=previous[d.id],
                        release_at=d.next_attempt_at,
                        withdrawn=False,
                    )
                )
            session.flush()
            view = _view(session, job)
    except IntegrityError:
        # Two starts at once: the unique index let one in; this one changes nothing.
        with store.read() as session:
            running = session.scalar(
                select(BulkReplay.id).where(BulkReplay.status == BulkReplayStatus.RUNNING)
            )
        raise _busy(running) from None
    return view, sorted(per_office)


def _counts(session: Session, job_id: int) -> tuple[int, int, int, dt.datetime | None]:
    """(processed, failed, delivered, last release) of a bulk replay's live items."""
    attempted = (Delivery.attempts > 0) | (Delivery.status != DeliveryStatus.PENDING)
    failed = (Delivery.status == DeliveryStatus.FAILED) | (
        (Delivery.status == DeliveryStatus.PENDING) & (Delivery.attempts > 0)
    )
    row = session.execute(
        select(
            func.coalesce(func.sum(case((attempted, 1), else_=0)), 0),
            func.coalesce(func.sum(case((failed, 1), else_=0)), 0),
            func.coalesce(
                func.sum(case((Delivery.status == DeliveryStatus.DELIVERED, 1), else_=0)), 0
            ),
            func.max(BulkReplayItem.release_at),
        )
        .select_from(BulkReplayItem)
        .join(Delivery, Delivery.id == BulkReplayItem.delivery_id)
        .where(BulkReplayItem.bulk_replay_id == job_id, BulkReplayItem.withdrawn.is_(False))
    ).one()
    return int(row[0]), int(row[1]), int(row[2]), row[3]


def _view(session: Session, job: BulkReplay) -> BulkReplayView:
    processed, failed, delivered, last = job.processed, job.failed, 0, None
    if job.status == BulkReplayStatus.RUNNING:
        processed, failed, delivered, last = _counts(session, job.id)
    else:
        delivered = processed - failed
    return BulkReplayView(
        id=job.id,
        status=job.status,
        filter=dict(job.filter),
        total=job.total,
        processed=processed,
        failed=failed,
        delivered=delivered,
        created_by=job.created_by,
        reason=job.reason,
        rate_per_office=job.rate_per_office,
        created_at=job.created_at,
        finished_at=job.finished_at,
        releases_until=last,
    )


def unknown_replay(job_id: int | str) -> Problem:
    """The 404 problem of a bulk replay id that names nothing."""
    return Problem(
        404,
        "unknown-bulk-replay",
        msg("Diese Sammel-Wiederholung gibt es nicht.", "No such bulk replay."),
    )


def _visible(actor: Actor) -> ColumnElement[bool]:
    """Bulk replays `actor` may see: all, or (limited) those without another office's item."""
    scope = scope_of(actor)
    if not scope.limited:
        return and_(True)
    return ~exists().where(
        BulkReplayItem.bulk_replay_id == BulkReplay.id,
        ~scope.deliveries(BulkReplayItem.office_id),
    )


def get(store: Store, job_id: int, *, actor: Actor) -> BulkReplayView | None:
    """A bulk replay `actor` may see, with its counts as of now, or None."""
    with store.read() as session:
        job = session.scalars(
            select(BulkReplay).where(BulkReplay.id == job_id, _visible(actor))
        ).one_or_none()
        return None if job is None else _view(session, job)


def latest(store: Store, limit: int = 10, *, actor: Actor) -> list[BulkReplayView]:
    """The most recent bulk replays `actor` may see, newest first (the running one among them)."""
    with store.read() as session:
        jobs = session.scalars(
            select(BulkReplay).where(_visible(actor)).order_by(BulkReplay.id.desc()).limit(limit)
        )
        return [_view(session, j) for j in jobs]


def refresh_running(store: Store) -> BulkReplayView | None:
    """Store the running bulk replay's counts and mark it done once every delivery was tried.

    A step of the sweeper loop; returns the replay it looked at, if any.
    """
    with store.session() as session:
        job = session.scalars(
            select(BulkReplay)
            .where(BulkReplay.status == BulkReplayStatus.RUNNING)
            .with_for_update()
        ).one_or_none()
        if job is None:
            return None
        processed, failed, _delivered, _last = _counts(session, job.id)
        live = session.scalar(
            select(func.count())
            .select_from(BulkReplayItem)
            .where(BulkReplayItem.bulk_replay_id == job.id, BulkReplayItem.withdrawn.is_(False))
        )
        job.processed, job.failed = processed, failed
        if processed >= (live or 0):
            now = database_now(session.connection())
            job.status = BulkReplayStatus.DONE
            job.finished_at = now
            session.add(
                Event(
                    kind="admin.bulk_replay.done",
                    actor="sweeper",
                    at=now,
                    detail={"bulk_replay": job.id, "processed": processed, "failed": failed},
                )
            )
        return _view(session, job)


def cancel(store: Store, job_id: int, actor: Actor, reason: str) -> tuple[BulkReplayView, bool]:
    """Stop a running bulk replay; returns it and whether this call changed anything.

    The deliveries not yet attempted go back to failed with their former attempts; a replay
    already done or cancelled is left as it is (a no-op).
    """
    _refused(actor)
    reason = check_reason(reason, required=True)
    with store.session() as session:
        job = session.get(BulkReplay, job_id, with_for_update=True)
        if job is None or not session.scalar(
            select(exists().where(BulkReplay.id == job_id, _visible(actor)))
        ):
            raise unknown_replay(job_id)
        if job.status != BulkReplayStatus.RUNNING:
            return _view(session, job), False
        now = database_now(session.connection())
        waiting = session.execute(
            select(BulkReplayItem, Delivery)
            .join(Delivery, Delivery.id == BulkReplayItem.delivery_id)
            .where(
                BulkReplayItem.bulk_replay_id == job.id,
                BulkReplayItem.withdrawn.is_(False),
                Delivery.status == DeliveryStatus.PENDING,
                Delivery.attempts == 0,
                (Delivery.lease_until.is_(None)) | (Delivery.lease_until < now),
            )
            .with_for_update(of=Delivery)
        ).all()
        touched: set[int] = set()
        for item, delivery in waiting:
            item.withdrawn = True
            delivery.status = DeliveryStatus.FAILED
            delivery.attempts = item.previous_attempts
            delivery.next_attempt_at = None
            delivery.updated_at = now
            touched.add(delivery.submission_id)
        session.flush()
        if touched:
            refresh_statuses(session.connection(), touched, now)
        processed, failed, _d, _l = _counts(session, job.id)
        job.processed, job.failed = processed, failed
        job.status = BulkReplayStatus.CANCELLED
        job.finished_at = now
        record_action(
            session,
            actor,
            "admin.bulk_replay.cancelled",
            reason=reason,
            detail={"bulk_replay": job.id, "withdrawn": len(waiting), "processed": processed},
        ).at = now
        return _view(session, job), True


def as_json(view: BulkReplayView) -> dict[str, Any]:
    """The bulk replay as a JSON object (API and CLI)."""
    return {
        "id": view.id,
        "status": view.status,
        "filter": view.filter,
        "total": view.total,
        "processed": view.processed,
        "failed": view.failed,
        "delivered": view.delivered,
        "created_by": view.created_by,
        "reason": view.reason,
        "rate_per_office": view.rate_per_office,
        "created_at": view.created_at.isoformat(),
        "finished_at": view.finished_at.isoformat() if view.finished_at else None,
        "releases_until": view.releases_until.isoformat() if view.releases_until else None,
    }


def paced(store: Store, delivery_ids: list[str]) -> dict[str, float]:
    """Which of these deliveries a running bulk replay sends, with its rate per office."""
    if not delivery_ids:
        return {}
    with store.read() as session:
        rows = session.execute(
            select(BulkReplayItem.delivery_id, BulkReplay.rate_per_office)
            .join(BulkReplay, BulkReplay.id == BulkReplayItem.bulk_replay_id)
            .where(
                BulkReplay.status == BulkReplayStatus.RUNNING,
                BulkReplayItem.withdrawn.is_(False),
                BulkReplayItem.delivery_id.in_(delivery_ids),
            )
        )
        return {delivery_id: float(rate) for delivery_id, rate in rows}
