"""The admin page's start: counts by status, failures per office over 14 days, queue and workers."""

from __future__ import annotations

from collections.abc import Mapping

from flask import render_template

from bridge.admin.blueprint import actor, blueprint
from bridge.admin.bulk import running_bulk
from bridge.admin.chart import office_charts
from bridge.admin.labels import DELIVERY_STATUS, SUBMISSION_STATUS, label
from bridge.state import current
from domain.admin.overview import overview as build_overview
from store.models import utcnow
from worker.queue_status import queue_status


@blueprint.get("/")
def overview() -> str:
    """Counts by status, the failure chart per office over 14 days, queue and workers."""
    bridge = current()
    config = bridge.settings.config
    queue = queue_status(bridge.redis)
    data = build_overview(
        bridge.store,
        actor=actor(),
        now=utcnow(),
        days=14,
        queue_depth=queue.depth,
        live_workers=queue.workers,
    )
    names = {oid: o.name for oid, o in config.offices.items()}
    charts = office_charts(data.days, data.failures_per_office_day, names)
    return render_template(
        "admin/overview.html",
        nav="overview",
        failed_total=data.deliveries_by_status.get("failed", 0),
        submission_counts=_counts(data.submissions_by_status, SUBMISSION_STATUS),
        delivery_counts=_counts(data.deliveries_by_status, DELIVERY_STATUS),
        charts=charts,
        days=data.days,
        per_office=data.failures_per_office_day,
        queue_depth=data.queue_depth,
        live_workers=data.live_workers,
        oldest=data.oldest_pending,
        running_bulk=running_bulk(),
    )


def _counts(counts: Mapping[str, int], names: Mapping[str, str]) -> list[tuple[str, str, int]]:
    """(status, German name, count) in the order of `names`, then any status it lacks."""
    order = [s for s in names if s in counts] + sorted(s for s in counts if s not in names)
    return [(s, label(dict(names), s), counts[s]) for s in order]
