"""What the demo back office remembers: cases per office, every arrival, and the fault switch."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import Any

FAULT_MODES = ("ok", "refuse", "status", "hang", "429")
DEFAULT_RETRY_AFTER = "30"


@dataclass
class Fault:
    """A fault to inject into the next `remaining` requests of an office (None: until reset)."""

    mode: str
    remaining: int | None = None
    retry_after: str | None = None
    status: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON form, for the fault listing."""
        return {
            "mode": self.mode,
            "remaining": self.remaining,
            "retry_after": self.retry_after,
            "status": self.status,
        }


def make_fault(
    mode: str,
    count: int | None = None,
    retry_after: float | str | None = None,
    status: int | None = None,
) -> Fault:
    """Check the arguments of `set_fault` and build the fault; ValueError says what is wrong."""
    if mode not in FAULT_MODES:
        raise ValueError(f"mode must be one of {', '.join(FAULT_MODES)}")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise ValueError("count must be a positive integer or null (until reset)")
    if mode == "status":
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise ValueError("mode 'status' needs status (100-599)")
    elif status is not None:
        raise ValueError("status is only used with mode 'status'")
    after: str | None
    if retry_after is None:
        after = DEFAULT_RETRY_AFTER if mode == "429" else None
    elif isinstance(retry_after, bool):
        raise ValueError("retry_after must be seconds or an HTTP date")
    elif isinstance(retry_after, int | float):
        if retry_after < 0:
            raise ValueError("retry_after must not be negative")
        after = str(int(retry_after))
    elif isinstance(retry_after, str) and retry_after.strip():
        after = retry_after.strip()  # an HTTP date, sent verbatim
    else:
        raise ValueError("retry_after must be seconds or an HTTP date")
    return Fault(mode=mode, remaining=count, retry_after=after, status=status)


@dataclass
class Case:
    """One case as the back office filed it (the document is kept for tests and the demo)."""

    office: str
    delivery_id: str
    format: str
    reference: str
    service: str
    case_number: str
    received_at: str
    signature_valid: bool | None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    duplicate_count: int = 0
    document: Any = None

    def summary(self) -> dict[str, Any]:
        """The case without its document (the document holds personal data)."""
        return {
            "office": self.office,
            "delivery_id": self.delivery_id,
            "format": self.format,
            "reference": self.reference,
            "service": self.service,
            "case_number": self.case_number,
            "received_at": self.received_at,
            "signature_valid": self.signature_valid,
            "duplicate_count": self.duplicate_count,
            "attachments": [dict(a) for a in self.attachments],
        }


def now_iso() -> str:
    """The current time in UTC, RFC 3339."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Ledger:
    """Thread-safe state shared by the HTTP and SMTP sides."""

    def __init__(self) -> None:
        """Start empty."""
        self._lock = threading.Lock()
        self._cases: list[Case] = []
        self._by_key: dict[tuple[str, str], Case] = {}
        self._counters: dict[str, int] = {}
        self._received: dict[str, list[str]] = {}
        self._requests: list[tuple[str, str]] = []
        self._peers: set[tuple[str, int]] = set()
        self._faults: dict[str | None, Fault] = {}

    def reset(self) -> None:
        """Forget every case, arrival and fault."""
        with self._lock:
            self._cases.clear()
            self._by_key.clear()
            self._counters.clear()
            self._received.clear()
            self._requests.clear()
            self._peers.clear()
            self._faults.clear()

    def log_request(self, method: str, path: str, peer: tuple[str, int] | None = None) -> None:
        """Remember that a request arrived: method, path, and the connection it came on."""
        with self._lock:
            self._requests.append((method, path))
            if peer is not None:
                self._peers.add(peer)

    def connection_count(self) -> int:
        """How many distinct client connections requests arrived on."""
        with self._lock:
            return len(self._peers)

    def requests(self) -> list[tuple[str, str]]:
        """Every request so far as (method, path), in arrival order."""
        with self._lock:
            return list(self._requests)

    def arrived(self, office: str, delivery_id: str) -> None:
        """Record an arrival of a delivery id (faulted and repeated ones included)."""
        with self._lock:
            self._received.setdefault(office, []).append(delivery_id)

    def received_ids(self, office: str) -> list[str]:
        """Every delivery id that arrived for the office, in order, duplicates included."""
        with self._lock:
            return list(self._received.get(office, []))

    def set_fault(self, office: str | None, fault: Fault) -> None:
        """Install a fault for an office (None: for every office); mode "ok" clears."""
        with self._lock:
            if fault.mode == "ok":
                if office is None:
                    self._faults.clear()
                else:
                    self._faults.pop(office, None)
                return
            self._faults[office] = fault

    def faults(self) -> dict[str, dict[str, Any]]:
        """The active faults by office ("*" for the one that applies to every office)."""
        with self._lock:
            return {k or "*": f.as_dict() for k, f in self._faults.items()}

    def take_fault(self, office: str) -> Fault | None:
        """The fault for this request, if any, counting it against the fault's budget."""
        with self._lock:
            key: str | None = office if office in self._faults else None
            fault = self._faults.get(key)
            if fault is None:
                return None
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    del self._faults[key]
            return Fault(fault.mode, fault.remaining, fault.retry_after, fault.status)

    def file(self, case: Case) -> tuple[Case, bool]:
        """File a case unless its delivery id is known for the office; returns (case, is_new).

        A repeat counts as a duplicate and returns the case filed first, with its number.
        """
        with self._lock:
            key = (case.office, case.delivery_id)
            known = self._by_key.get(key)
            if known is not None:
                known.duplicate_count += 1
                return known, False
            n = self._counters.get(case.office, 0) + 1
            self._counters[case.office] = n
            case.case_number = f"{case.office.upper()}-{n}"
            self._cases.append(case)
            self._by_key[key] = case
            return case, True

    def cases(self, office: str | None = None) -> list[Case]:
        """Filed cases in arrival order, of one office or all."""
        with self._lock:
            return [c for c in self._cases if office is None or c.office == office]

    def find(self, office: str, delivery_id: str) -> Case | None:
        """The case filed for a delivery id at an office."""
        with self._lock:
            return self._by_key.get((office, delivery_id))
