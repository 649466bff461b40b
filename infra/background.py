"""A daemon thread that runs once in each process, started on first use.

Threads do not survive fork: gunicorn forks its workers, and a thread started in the master
(or before a test forks) is gone in the child. `ensure()` starts the thread again there.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable


class ProcessThread:
    """Runs ``target`` on one daemon thread per process; ``ensure()`` before relying on it."""

    def __init__(
        self, target: Callable[[], None], name: str, on_fork: Callable[[], None] | None = None
    ) -> None:
        """Remember what to run; `on_fork` resets the owner's state in a forked child first."""
        self._target = target
        self._name = name
        self._on_fork = on_fork
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def ensure(self) -> bool:
        """Start the thread unless it runs in this process; True when this started it anew."""
        if self._running_here():
            return False
        with self._lock:
            if self._running_here():
                return False
            if self._pid not in (0, os.getpid()) and self._on_fork is not None:
                self._on_fork()
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._target, name=self._name, daemon=True)
            self._thread.start()
            return True

    def _running_here(self) -> bool:
        thread = self._thread
        return thread is not None and self._pid == os.getpid() and thread.is_alive()
