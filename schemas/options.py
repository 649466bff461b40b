"""Per-call validation options: the injected current instant, the input kind, the rule limits."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

#: Wall-clock time of the member municipalities; dates and naive times mean this zone.
#: The product's one definition: every layer above imports it from here.
LOCAL_TZ = ZoneInfo("Europe/Berlin")

#: Defaults shared by `ValidationOptions` and the published JSON Schema.
#: Signs of a no-parking zone must stand 72 hours before it applies (StVO), so the start of a
#: traffic order must lie at least that far after the application arrives.
DEFAULT_LEAD_HOURS = 72
DEFAULT_MIN_ZONE_M = 5
DEFAULT_MAX_ZONE_M = 200


@dataclass(frozen=True)
class ValidationOptions:
    """Settings for one validation call; the schemas never read the clock themselves."""

    now: datetime.datetime
    """The instant the submission arrived (aware); date rules use its date in `LOCAL_TZ`."""
    lead_hours: int = DEFAULT_LEAD_HOURS
    min_zone_m: int = DEFAULT_MIN_ZONE_M
    max_zone_m: int = DEFAULT_MAX_ZONE_M
    unknown: Literal["reject", "ignore"] = "ignore"
    form_input: bool = False
    """True for form bodies (every value a string, converted by the field's type, German
    spellings and blanks tolerated); False for JSON bodies, typed exactly as the JSON Schema."""

    def __post_init__(self) -> None:
        """Refuse contradictory limits early, so a misconfiguration fails at start-up."""
        if not isinstance(self.now, datetime.datetime) or self.now.utcoffset() is None:
            # A naive time would silently mean the server's zone.
            raise TypeError("now must be an aware datetime.datetime")
        if self.lead_hours < 0:
            raise ValueError("lead_hours must not be negative")
        if not 0 < self.min_zone_m <= self.max_zone_m:
            raise ValueError("zone bounds must satisfy 0 < min_zone_m <= max_zone_m")
        if self.unknown not in ("reject", "ignore"):
            raise ValueError("unknown must be 'reject' or 'ignore'")

    @property
    def today(self) -> datetime.date:
        """The local date in the member municipalities at `now`."""
        return self.now.astimezone(LOCAL_TZ).date()


@dataclass(frozen=True)
class Limits:
    """The configurable limits of a service's rules, as the published JSON Schema shows them."""

    lead_hours: int = DEFAULT_LEAD_HOURS
    min_zone_m: int = DEFAULT_MIN_ZONE_M
    max_zone_m: int = DEFAULT_MAX_ZONE_M
    unknown: Literal["reject", "ignore"] = "ignore"

    @classmethod
    def of(cls, options: ValidationOptions) -> Limits:
        """The limits that ``options`` validate with."""
        return cls(options.lead_hours, options.min_zone_m, options.max_zone_m, options.unknown)
