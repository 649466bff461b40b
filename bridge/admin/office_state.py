"""Per office beside the failed list and the bulk confirmation: failures, last delivery, reachable now?

The reachability checks (`integrations.reachability`) run concurrently within a short budget
and are kept briefly per app, so opening the list again does not check again at once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from dataclasses import dataclass

from flask import current_app

from bridge.state import current
from domain.accounts.accounts import Actor
from domain.admin.last_delivery import last_delivered
from domain.admin.search import SubmissionFilter, count_replayable
from integrations.reachability import Reachability, ReachabilityMonitor

EXTENSION = "bridge_reachability"
_CREATE = threading.Lock()


@dataclass(frozen=True)
class OfficeState:
    """One office with failed deliveries under the filter."""

    id: str
    name: str
    failed: int
    last_delivered_at: dt.datetime | None
    reach: Reachability


def monitor() -> ReachabilityMonitor:
    """The app's reachability monitor (created on first use; tests may put their own)."""
    with _CREATE:
        found = current_app.extensions.get(EXTENSION)
        if not isinstance(found, ReachabilityMonitor):
            found = ReachabilityMonitor()
            current_app.extensions[EXTENSION] = found
    return found


def office_states(flt: SubmissionFilter, actor: Actor) -> list[OfficeState]:
    """The offices with failed deliveries matching `flt`, by name, each checked for reachability;
    an office outside `actor`'s scope counts none, so it is not listed."""
    bridge = current()
    config = bridge.settings.config
    wanted = [flt.office] if flt.office is not None else list(config.offices)
    counts: dict[str, int] = {}
    for office_id in wanted:
        count = count_replayable(
            bridge.store, dataclasses.replace(flt, office=office_id), actor=actor
        )
        if count:
            counts[office_id] = count
    offices = [config.offices[o] for o in counts if o in config.offices]
    reach = monitor().check(offices)
    last = last_delivered(bridge.store, [o.id for o in offices])
    states = [OfficeState(o.id, o.name, counts[o.id], last.get(o.id), reach[o.id]) for o in offices]
    return sorted(states, key=lambda s: s.name)
