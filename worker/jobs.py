"""RQ jobs: plain typed functions that take ids and read everything else from the database."""

from __future__ import annotations

import datetime as dt
import logging
import time
from functools import cache

import requests

from domain.admin import bulk_replay
from domain.config import Office
from domain.delivery.deliveries import (
    AttemptOutcome,
    claim_due,
    record_outcomes,
    release,
    seconds_until_due,
)
from domain.delivery.fit_connect import remember_progress
from domain.settings import Settings
from infra import telemetry
from infra.crypto import Vault
from infra.logs import log_event
from infra.redis_connection import connect
from integrations.channels import Channel, DeliveryError, Envelope, PermanentDeliveryError, channels
from integrations.channels.envelopes import build_envelopes
from store.engine import Store
from worker.pacing import next_slot
from worker.queue import drain_started, wake_offices

log = logging.getLogger(__name__)
# A drain job that waits for paced deliveries ends after this and wakes its successor.
MAX_DRAIN_S = 300.0


class WorkerContext:
    """What a worker process needs, built once per process on first use (never at import)."""

    def __init__(self, settings: Settings) -> None:
        """Open the store, keys and Redis for these settings."""
        self.settings = settings
        self.store = Store.from_url(settings.database_url)
        self.vault = Vault(settings.encryption_keys)
        self.redis = connect(settings.redis_url)
        self.http = requests.Session()
        self._channels: dict[str, Channel] = {}

    def channel(self, office: Office) -> Channel:
        """The channel instance of an office (kept, so connections are reused)."""
        found = self._channels.get(office.id)
        if found is None:
            found = channels[office.channel](office.id, office.options, self.settings.secrets)
            self._channels[office.id] = found
        return found


@cache
def context() -> WorkerContext:
    """The process's worker context (settings from the environment)."""
    return WorkerContext(Settings.from_env())


def drain_office(office_id: str) -> int:
    """Deliver every due delivery of one office; returns how many attempts were made."""
    ctx = context()
    drain_started(ctx.redis, office_id)
    office = ctx.settings.config.offices.get(office_id)
    if office is None:
        log_event(log, "delivery.unknown_office", level=logging.ERROR, office=office_id)
        return 0
    channel = ctx.channel(office)
    if channel.pull:
        return 0
    attempts = 0
    began = time.monotonic()
    timeout = channel_timeout(office)
    # Leased for longer than any attempt may take, so a lease only lapses on a crash.
    lease_s = timeout + ctx.settings.lease_margin_s
    while True:
        claimed = time.monotonic()
        ids, lease_until = claim_due(ctx.store, office_id, ctx.settings.delivery_batch, lease_s)
        if not ids:
            # Due within a sweep interval (a bulk replay's paced release): wait for it here.
            wait = seconds_until_due(ctx.store, office_id, ctx.settings.sweep_interval_s)
            if wait is None:
                return attempts
            if time.monotonic() - began > MAX_DRAIN_S:
                # A long paced release: hand over to a fresh job well before RQ's timeout.
                wake_offices(ctx.redis, [office_id])
                return attempts
            time.sleep(min(wait, ctx.settings.sweep_interval_s) + 0.001)
            continue
        if len(ids) == ctx.settings.delivery_batch:
            # A backlog: let another worker help (at most one more job waits at a time).
            wake_offices(ctx.redis, [office_id])
        envelopes = build_envelopes(ctx.settings, ctx.store, ctx.vault, ids)
        rates = bulk_replay.paced(ctx.store, ids)
        outcomes: list[AttemptOutcome] = []
        for index, envelope in enumerate(envelopes):
            # A bulk replay: never faster than its rate at this office (worker.pacing).
            wait = (
                next_slot(ctx.redis, office_id, rates[envelope.delivery_id])
                if envelope.delivery_id in rates
                else 0.0
            )
            # One lease covers the batch: an attempt that could end after it is not started
            # (a slow office would otherwise let another worker take a delivery in flight).
            # The first always fits; the rest go back and the next claim takes them at once.
            if outcomes and time.monotonic() - claimed + wait + timeout > lease_s:
                release(ctx.store, [e.delivery_id for e in envelopes[index:]], lease_until)
                break
            time.sleep(wait)
            outcomes.append(attempt(ctx, channel, office, envelope, lease_until))
        recorded = record_outcomes(
            ctx.store, outcomes, ctx.settings.retry_schedule, ctx.settings.retry_jitter
        )
        attempts += len(recorded)
        telemetry.count_attempts(
            ctx.redis,
            ((office_id, _outcome_label(o), o.duration_ms / 1000) for o in recorded),
        )


def _outcome_label(outcome: AttemptOutcome) -> str:
    if outcome.ok:
        return "delivered"
    return "permanent_error" if outcome.permanent else "error"


def channel_timeout(office: Office) -> float:
    """The longest an attempt through this office's channel can take."""
    options = office.options
    return float(options.get("connect_timeout_s", 5)) + float(
        options.get("read_timeout_s", options.get("timeout_s", 30))
    )


def attempt(
    ctx: WorkerContext,
    channel: Channel,
    office: Office,
    envelope: Envelope,
    lease_until: dt.datetime,
) -> AttemptOutcome:
    """One attempt to deliver one envelope; never raises for the office's failures."""
    started = time.perf_counter()
    try:
        receipt = channel.deliver_tracked(
            envelope,
            ctx.http,
            lambda state: remember_progress(ctx.store, envelope.delivery_id, lease_until, state),
        )
    except PermanentDeliveryError as exc:
        return _failed(envelope, lease_until, exc, started, permanent=True)
    except DeliveryError as exc:
        return _failed(envelope, lease_until, exc, started, permanent=False)
    duration = (time.perf_counter() - started) * 1000
    log_event(
        log,
        "delivery.attempt",
        delivery=envelope.delivery_id,
        reference=envelope.reference,
        office=office.id,
        outcome="delivered" if receipt.awaiting_poll_s is None else "submitted",
        status_code=receipt.status_code,
        duration_ms=round(duration, 1),
    )
    return AttemptOutcome(
        delivery_id=envelope.delivery_id,
        lease_until=lease_until,
        ok=True,
        status_code=receipt.status_code,
        case_number=receipt.case_number,
        duration_ms=duration,
        awaiting_poll_s=receipt.awaiting_poll_s,
    )


def _failed(
    envelope: Envelope,
    lease_until: dt.datetime,
    exc: DeliveryError,
    started: float,
    *,
    permanent: bool,
) -> AttemptOutcome:
    duration = (time.perf_counter() - started) * 1000
    log_event(
        log,
        "delivery.attempt",
        level=logging.WARNING,
        delivery=envelope.delivery_id,
        reference=envelope.reference,
        office=envelope.office["id"],
        outcome="permanent_error" if permanent else "error",
        status_code=exc.status_code,
        error=exc.message,
        duration_ms=round(duration, 1),
    )
    return AttemptOutcome(
        delivery_id=envelope.delivery_id,
        lease_until=lease_until,
        ok=False,
        permanent=permanent,
        status_code=exc.status_code,
        error=exc.message,
        retry_after_s=exc.retry_after,
        duration_ms=duration,
    )
