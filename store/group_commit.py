"""Group commit: the writes of concurrent requests in one process share one transaction.

A durable 202 costs one commit, and a commit costs one fsync of the write-ahead log (SQLite
WAL with ``synchronous=FULL``, PostgreSQL with synchronous commit) plus, on SQLite, the one
write lock of the whole database. Threads of a web process hand their write to one committer
thread; while it commits a batch, the next writes queue up and go into the next transaction
together. Each write runs in its own savepoint, so one that fails (a repeated idempotency key)
fails alone; a failed commit fails every write of its batch, and none of them is stored. A
caller returns only after the transaction holding its write has committed, so the 202 still
means "on disk". With one request at a time (sync workers), every batch is one write and
this is exactly one transaction per request, as before.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import Connection, Engine

from infra.background import ProcessThread
from infra.logs import log_event

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Writes taken into one transaction at most: bounds the latency one batch adds to the next.
MAX_BATCH = 64


@dataclass(eq=False)
class _Write(Generic[T]):
    """One caller's write and, once its transaction has ended, its outcome."""

    work: Callable[[Connection], T]
    done: threading.Event = field(default_factory=threading.Event)
    result: T | None = None
    error: BaseException | None = None


class GroupCommit:
    """Runs writes on one committer thread per process, many in one transaction."""

    def __init__(self, engine: Engine, *, max_batch: int = MAX_BATCH) -> None:
        """Bind to an engine; the committer thread starts with the first write."""
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.engine = engine
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Write[Any]] = queue.SimpleQueue()
        self._committer = ProcessThread(self._run, "group-commit", on_fork=self._forget_parent)
        #: Transactions committed and the writes they held: what was batched (tests read them).
        self.transactions = 0
        self.writes = 0

    def write(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in a transaction shared with concurrent writes; return after COMMIT.

        ``work`` gets the connection and must only execute statements on it. Its exception
        (e.g. IntegrityError) is raised here, and then nothing it wrote is stored; so is the
        commit's, and then nothing of its batch is stored.
        """
        item: _Write[T] = _Write(work)
        self._committer.ensure()
        self._queue.put(item)
        item.done.wait()
        if item.error is not None:
            raise item.error
        return cast(T, item.result)

    def _forget_parent(self) -> None:
        """In a forked child: writes queued in the parent belong to the parent's callers."""
        self._queue = queue.SimpleQueue()

    def _run(self) -> None:
        """The committer: take what is queued, write it in one transaction, wake the callers."""
        while True:
            batch: list[_Write[Any]] = [self._queue.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._commit(batch)
            except BaseException as exc:  # every caller must hear of it, whatever it was
                for item in batch:
                    if item.error is None:
                        item.error = exc
                        item.result = None
                if not isinstance(exc, Exception):
                    raise
            finally:
                for item in batch:
                    item.done.set()

    def _commit(self, batch: list[_Write[Any]]) -> None:
        """One transaction for the batch, a savepoint per write when there are several."""
        with self.engine.begin() as conn:
            if len(batch) == 1:
                # Alone, a write's failure rolls the whole transaction back: no savepoint.
                batch[0].result = batch[0].work(conn)
            else:
                for item in batch:
                    try:
                        with conn.begin_nested():
                            item.result = item.work(conn)
                    except Exception as exc:  # the write's own failure, not the batch's
                        item.error = exc
        self.transactions += 1
        self.writes += sum(1 for item in batch if item.error is None)
        if len(batch) > 1:
            log_event(log, "store.group_commit", level=logging.DEBUG, writes=len(batch))
