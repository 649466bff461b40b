"""The simulator's memory: transactions, OAuth2 tokens, notifications sent, faults and counters.

Everything is in memory and guarded by one lock; the simulator is a stand-in for tests and the
demo, not a store. Amounts are Decimal euros; pmPayment's cents are converted at its edge.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

Kind = Literal["xbezahldienste", "pmpayment"]
FINAL = frozenset({"PAYED", "BOOKED", "FAILED", "CANCELED"})


def now_utc() -> dt.datetime:
    """The current time, aware UTC."""
    return dt.datetime.now(dt.UTC)


@dataclass
class Txn:
    """One transaction at the simulated provider."""

    kind: Kind
    txid: str  # the provider's transaction id (pmPayment: ours, when the caller sent one)
    request_id: str  # the caller's id it dedupes on (requestId / txid)
    scope: tuple[str, str]  # (originatorId, endPointId) or (ags, procedure)
    amount: Decimal
    currency: str
    purpose: str
    description: str
    redirect_url: str
    notify_url: str | None
    request: dict[str, Any] = field(default_factory=dict)  # the PaymentRequest as received
    accounting_record: str | None = None
    status: str = "INITIAL"
    reference: str | None = None  # Kassenzeichen, given when paid
    method: str | None = None
    created_at: dt.datetime = field(default_factory=now_utc)
    changed_at: dt.datetime = field(default_factory=now_utc)
    creates: int = 1  # how many create calls named this transaction (repeats included)

    def summary(self) -> dict[str, Any]:
        """The transaction for `GET /_control/transactions` (no request bodies)."""
        return {
            "kind": self.kind,
            "txid": self.txid,
            "request_id": self.request_id,
            "scope": list(self.scope),
            "amount": str(self.amount),
            "currency": self.currency,
            "purpose": self.purpose,
            "status": self.status,
            "transaction_reference": self.reference,
            "method": self.method,
            "creates": self.creates,
            "notify_url": self.notify_url,
            "redirect_url": self.redirect_url,
        }


@dataclass(frozen=True)
class Notification:
    """One notification the simulator sent (or dropped) to a notify URL."""

    txid: str
    url: str
    status: str
    dropped: bool
    status_code: int | None
    error: str | None
    at: str

    def summary(self) -> dict[str, Any]:
        """For `GET /_control/notifications`."""
        return {
            "txid": self.txid,
            "url": self.url,
            "status": self.status,
            "dropped": self.dropped,
            "status_code": self.status_code,
            "error": self.error,
            "at": self.at,
        }


class Ledger:
    """The simulator's state; every method is thread-safe."""

    def __init__(self) -> None:
        """Empty: no transactions, tokens or faults."""
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Forget everything (transactions, tokens, notifications, faults, counters)."""
        with self.lock:
            self.transactions: dict[str, Txn] = {}  # by key (see `key`)
            self.tokens: dict[str, tuple[str, float]] = {}  # token -> (client_id, expires_at)
            self.tokens_issued: dict[str, int] = {}
            self.notifications: list[Notification] = []
            self.counters: dict[str, int] = {}
            self.down_remaining: int | None = None  # None: up; -1: down until /up; n: n more
            self.down_status = 503
            self.delay_s = 0.0  # every provider answer waits this long (timeout tests)
            self.drop_notifications = False
            # The next n creates are stored but answered `lost_status` (502): the answer is lost.
            self.lose_answers = 0
            self.lost_status = 502
            self.kassenzeichen_seq = 16  # the first one given is KZ-<year>-000017

    # -- counters and faults -------------------------------------------------------------------

    def count(self, name: str) -> None:
        """Add one to a counter (creates, status_calls, ...)."""
        with self.lock:
            self.counters[name] = self.counters.get(name, 0) + 1

    def set_down(self, count: int | None, status: int = 503) -> None:
        """Answer `status` (503, 500, 429, ...) to the next `count` provider requests (None:
        until `set_up`)."""
        with self.lock:
            self.down_remaining = -1 if count is None or count < 1 else count
            self.down_status = status

    def set_up(self) -> None:
        """Answer normally again."""
        with self.lock:
            self.down_remaining = None

    def take_down(self) -> bool:
        """Whether this request is to be answered 503 (counts a limited outage down)."""
        with self.lock:
            if self.down_remaining is None:
                return False
            if self.down_remaining > 0:
                self.down_remaining -= 1
                if self.down_remaining == 0:
                    self.down_remaining = None
            return True

    def set_lose_answers(self, count: int, status: int = 502) -> None:
        """Store the next `count` new transactions but answer their creates with `status`."""
        with self.lock:
            self.lose_answers = max(0, count)
            self.lost_status = status

    def take_lost_answer(self) -> int | None:
        """The status to answer a create that was just stored with, when its answer is lost."""
        with self.lock:
            if self.lose_answers <= 0:
                return None
            self.lose_answers -= 1
            self.counters["lost_answers"] = self.counters.get("lost_answers", 0) + 1
            return self.lost_status

    # -- transactions --------------------------------------------------------------------------

    @staticmethod
    def key(kind: Kind, scope: tuple[str, str], request_id: str) -> str:
        """Where a transaction is kept: the caller's id is unique per provider scope."""
        if kind == "pmpayment":
            return f"pm|{scope[0]}|{request_id}"  # pmPayment's txid is unique per ags
        return f"xb|{scope[0]}|{scope[1]}|{request_id}"

    def create(self, key: str, make: Any) -> tuple[Txn, bool]:
        """The transaction at `key`, made by `make()` when new: (transaction, created)."""
        with self.lock:
            existing = self.transactions.get(key)
            if existing is not None:
                existing.creates += 1
                return existing, False
            txn: Txn = make()
            self.transactions[key] = txn
            return txn, True

    def find(self, txid: str, kind: Kind | None = None) -> Txn | None:
        """A transaction by the provider's id (pmPayment ids may repeat across towns: first)."""
        with self.lock:
            for txn in self.transactions.values():
                if txn.txid == txid and (kind is None or txn.kind == kind):
                    return txn
            return None

    def finish(self, txn: Txn, status: str, method: str | None = None) -> bool:
        """Move an INITIAL transaction to a final status; False if it already was final."""
        with self.lock:
            if txn.status in FINAL:
                return False
            txn.status = status
            txn.changed_at = now_utc()
            if status in ("PAYED", "BOOKED"):
                txn.method = method or "GIROPAY"
                self.kassenzeichen_seq += 1
                txn.reference = f"KZ-{txn.changed_at.year}-{self.kassenzeichen_seq:06d}"
            return True

    def all(self) -> list[Txn]:
        """Every transaction, in creation order."""
        with self.lock:
            return list(self.transactions.values())

    # -- OAuth2 --------------------------------------------------------------------------------

    def issue_token(self, client_id: str, expires_in: float) -> str:
        """A new access token for `client_id`, valid `expires_in` seconds."""
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[token] = (client_id, time.monotonic() + expires_in)
            self.tokens_issued[client_id] = self.tokens_issued.get(client_id, 0) + 1
        return token

    def token_valid(self, token: str) -> bool:
        """Whether `token` was issued, is not revoked and has not expired."""
        with self.lock:
            entry = self.tokens.get(token)
            return entry is not None and time.monotonic() < entry[1]

    def revoke_tokens(self) -> int:
        """Revoke every token (the next API call with one gets a 401); how many there were."""
        with self.lock:
            count = len(self.tokens)
            self.tokens.clear()
            return count

    # -- notifications -------------------------------------------------------------------------

    def record_notification(self, notification: Notification) -> None:
        """Remember a sent or dropped notification."""
        with self.lock:
            self.notifications.append(notification)
