"""Read the event logs of FIT-Connect cases that wait for their destination's answer.

The sweeper calls `poll_cases` every round; each waiting delivery is leased while its log is
read, so two sweepers never read one case at once, and is looked at again after its office's
`poll_interval_s` (a callback makes it due at once).
"""

from __future__ import annotations

import logging

import requests

from domain.delivery.fit_connect import apply_case_events, claim_awaiting
from domain.settings import Settings
from infra.logs import log_event
from integrations.channels import DeliveryError, channels
from integrations.channels.fit_connect import FitConnectChannel
from store.engine import Store

log = logging.getLogger(__name__)
#: Cases read per sweeper round; the rest are read in the next rounds.
POLL_BATCH = 20
#: A case whose office is no longer a FIT-Connect office is looked at again after this long.
ORPHAN_POLL_S = 3600.0


def poll_cases(settings: Settings, store: Store, http: requests.Session) -> int:
    """Read the event log of every waiting case that is due; returns how many were read."""
    lease_s = 2 * 35.0 + settings.lease_margin_s
    waiting = claim_awaiting(store, POLL_BATCH, lease_s)
    for case in waiting:
        office = settings.config.offices.get(case.office_id)
        plugin = channels.get(office.channel) if office is not None else None
        if office is None or plugin is None or not issubclass(plugin, FitConnectChannel):
            log_event(log, "fit_connect.office_missing", level=logging.ERROR, office=case.office_id)
            apply_case_events(store, case, [], ORPHAN_POLL_S)
            continue
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
            continue
        status = apply_case_events(store, case, events, poll_s, gone=gone)
        log_event(log, "fit_connect.polled", delivery=case.delivery_id, status=status)
    return len(waiting)
