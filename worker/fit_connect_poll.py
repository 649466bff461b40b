"""Read the event logs of FIT-Connect cases that wait for their destination's answer.

The sweeper calls `poll_cases` every round; each waiting delivery is leased while its log is
read, so two sweepers never read one case at once, and is looked at again after its office's
`poll_interval_s` (a callback makes it due at once).
"""

from __future__ import annotations

import logging
import time

import requests

from domain.delivery.fit_connect import Awaiting, apply_case_events, claim_awaiting
from domain.settings import Settings
from infra.logs import log_event
from integrations.channels import DeliveryError, channels
from integrations.channels.fit_connect import FitConnectChannel
from store.engine import Store

log = logging.getLogger(__name__)
#: Cases read per sweeper round at most; the rest are read in the next rounds.
POLL_BATCH = 20
#: A round starts no further look after this long: the sweeper also wakes offices and checks
#: payments, and a slow Submission API must not hold those up for more than one request.
POLL_BUDGET_S = 10.0
#: A case whose office is no longer a FIT-Connect office is looked at again after this long.
ORPHAN_POLL_S = 3600.0


def poll_cases(settings: Settings, store: Store, http: requests.Session) -> int:
    """Read the event log of every waiting case that is due; returns how many were read."""
    # Leased for longer than the reads of one case can take, so a lease only lapses on a crash.
    lease_s = 2 * 35.0 + settings.lease_margin_s
    began = time.monotonic()
    read = 0
    while read < POLL_BATCH and time.monotonic() - began < POLL_BUDGET_S:
        waiting = claim_awaiting(store, 1, lease_s)
        if not waiting:
            break
        _look(settings, store, http, waiting[0])
        read += 1
    return read


def _look(settings: Settings, store: Store, http: requests.Session, case: Awaiting) -> None:
    """Read and verify one case's event log and move its delivery on."""
    office = settings.config.offices.get(case.office_id)
    plugin = channels.get(office.channel) if office is not None else None
    if office is None or plugin is None or not issubclass(plugin, FitConnectChannel):
        log_event(log, "fit_connect.office_missing", level=logging.ERROR, office=case.office_id)
        apply_case_events(store, case, [], ORPHAN_POLL_S)
        return
    channel = plugin(office.id, office.options, settings.secrets)
    poll_s = float(channel.options.get("poll_interval_s", 60.0))
    try:
        events, gone = channel.case_events(case.state, http)
    except DeliveryError as exc:
        # The log cannot be read now; the case keeps waiting and is read again later.
        log_event(
            log,
            "fit_connect.poll_failed",
            level=logging.WARNING,
            delivery=case.delivery_id,
            office=office.id,
            error=exc.message,
        )
        apply_case_events(store, case, [], poll_s)
        return
    status = apply_case_events(store, case, events, poll_s, gone=gone)
    log_event(log, "fit_connect.polled", delivery=case.delivery_id, status=status)
