"""GET /metrics: Prometheus text, from Redis counters and the store's current state.

Not public (docs/proxy.md): with `BRIDGE_METRICS_TOKEN` set only a scraper presenting it as a
bearer token gets the metrics; without it only a client on loopback (Prometheus on this host).
"""

from __future__ import annotations

import hmac
from collections import defaultdict
from collections.abc import Iterator

from flask import Blueprint, Response, request
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from redis.exceptions import RedisError
from sqlalchemy import func, select

from bridge.auth import unauthorized
from bridge.proxy import client_on_loopback
from bridge.state import Bridge, current
from domain.problems import Problem, msg
from infra import telemetry
from store.models import Delivery, DeliveryStatus, Submission
from worker.queue import delivery_queue
from worker.runner import live_workers

blueprint = Blueprint("metrics", __name__)


class BridgeCollector(Collector):
    """Collects the bridge's metrics at scrape time."""

    def __init__(self, bridge: Bridge) -> None:
        """Collect for one app's store and Redis."""
        self.bridge = bridge

    def collect(self) -> Iterator[Metric]:
        """Yield every metric family."""
        redis = self.bridge.redis
        up = GaugeMetricFamily("bridge_redis_up", "1 when Redis answered this scrape")
        try:
            submissions = telemetry.read_hash(redis, telemetry.SUBMISSIONS)
            attempts = telemetry.read_hash(redis, telemetry.ATTEMPTS)
            durations = telemetry.read_hash(redis, telemetry.DURATIONS)
            queued = float(delivery_queue(redis).count)
            workers = float(live_workers(redis))
            up.add_metric([], 1)
        except RedisError:
            submissions, attempts, durations = {}, {}, {}
            queued = workers = float("nan")
            up.add_metric([], 0)
        yield up
        w = GaugeMetricFamily(
            "bridge_workers", "Delivery workers with a live heartbeat in RQ's registry"
        )
        w.add_metric([], workers)
        yield w
        c = CounterMetricFamily(
            "bridge_submissions",
            "Webhook calls by service and outcome",
            labels=["service", "outcome"],
        )
        with self.bridge.store.read() as session:
            accepted = session.execute(
                select(Submission.service, func.count()).group_by(Submission.service)
            ).all()
        for service, count in sorted(accepted):
            c.add_metric([service, "accepted"], count)
        for key, value in sorted(submissions.items()):
            service, outcome = key.split("|", 1)
            c.add_metric([service, outcome], value)
        yield c
        a = CounterMetricFamily(
            "bridge_delivery_attempts",
            "Delivery attempts by office and outcome",
            labels=["office", "outcome"],
        )
        for key, value in sorted(attempts.items()):
            office, outcome = key.split("|", 1)
            a.add_metric([office, outcome], value)
        yield a
        h = HistogramMetricFamily(
            "bridge_delivery_attempt_duration_seconds",
            "Duration of delivery attempts",
            labels=["office"],
        )
        per_office: dict[str, dict[str, float]] = defaultdict(dict)
        for key, value in durations.items():
            office, bucket = key.split("|", 1)
            per_office[office][bucket] = value
        for office, buckets in sorted(per_office.items()):
            h.add_metric(
                [office],
                telemetry.cumulative(buckets, telemetry.DURATION_BUCKETS),
                sum_value=buckets.get("sum", 0.0),
            )
        yield h
        q = GaugeMetricFamily("bridge_queue_depth", "Drain jobs waiting in the delivery queue")
        q.add_metric([], queued)
        yield q
        d = GaugeMetricFamily(
            "bridge_deliveries", "Deliveries by office and status", labels=["office", "status"]
        )
        failed = GaugeMetricFamily("bridge_failed_deliveries", "Deliveries in the dead-letter list")
        total_failed = 0
        with self.bridge.store.read() as session:
            rows = session.execute(
                select(Delivery.office_id, Delivery.status, func.count()).group_by(
                    Delivery.office_id, Delivery.status
                )
            ).all()
        for office, status, count in sorted(rows):
            d.add_metric([office, status], count)
            if status == DeliveryStatus.FAILED:
                total_failed += count
        failed.add_metric([], total_failed)
        yield d
        yield failed


@blueprint.get("/metrics")
def metrics() -> Response:
    """The Prometheus exposition of the bridge's metrics, for the scraper only."""
    refusal = _refusal(current().settings.metrics_token)
    if refusal is not None:
        raise refusal
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BridgeCollector(current()))
    return Response(generate_latest(registry), mimetype="text/plain; version=0.0.4")


def _refusal(token: str) -> Problem | None:
    """Why this caller may not read the metrics, or None when it may."""
    if token:
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        # Bytes, so that any presented value compares in constant time (str needs ASCII).
        if scheme.lower() == "bearer" and hmac.compare_digest(
            presented.strip().encode(), token.encode()
        ):
            return None
        return unauthorized(
            "Die Metriken brauchen das Token aus BRIDGE_METRICS_TOKEN.",
            "The metrics need the token of BRIDGE_METRICS_TOKEN.",
        )
    if client_on_loopback():
        return None
    return Problem(
        403,
        "metrics-internal",
        msg("Die Metriken sind nur intern abrufbar.", "The metrics are internal."),
        msg(
            "Ohne BRIDGE_METRICS_TOKEN nur von diesem Rechner aus.",
            "Without BRIDGE_METRICS_TOKEN only from this host.",
        ),
    )
