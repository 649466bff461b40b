"""Per-call validation options: the injected "today" and the tunable limits of the rules."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Literal

#: Defaults shared by `ValidationOptions` and the JSON Schema documentation of the zone length.
DEFAULT_LEAD_DAYS = 3
DEFAULT_MIN_ZONE_M = 5
DEFAULT_MAX_ZONE_M = 200


@dataclass(frozen=True)
class ValidationOptions:
    """Settings for one validation call; the schemas never read the clock themselves."""

    today: datetime.date
    lead_days: int = DEFAULT_LEAD_DAYS
    min_zone_m: int = DEFAULT_MIN_ZONE_M
    max_zone_m: int = DEFAULT_MAX_ZONE_M
    unknown: Literal["reject", "ignore"] = "ignore"

    def __post_init__(self) -> None:
        """Refuse contradictory limits early, so a misconfiguration fails at start-up."""
        if isinstance(self.today, datetime.datetime):
            # A datetime would compare wrongly with dates (and is a date subclass).
            raise TypeError("today must be a datetime.date, not a datetime")
        if self.lead_days < 0:
            raise ValueError("lead_days must not be negative")
        if not 0 < self.min_zone_m <= self.max_zone_m:
            raise ValueError("zone bounds must satisfy 0 < min_zone_m <= max_zone_m")
        if self.unknown not in ("reject", "ignore"):
            raise ValueError("unknown must be 'reject' or 'ignore'")
