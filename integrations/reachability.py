"""Is an office back? A check each channel allows without side effects, run concurrently, cached.

- http-json and xml: a GET of the office's `health_url` when configured (2xx is up), else a TCP
  connect to the host and port of its `url` (nothing is POSTed: a case is never sent here);
- e-mail: an SMTP session to the office's mail server (greeting, TLS as configured, QUIT; no
  mail is sent);
- inbox: always reachable, the office fetches its cases itself.

Checks run in a small thread pool with short timeouts; `ReachabilityMonitor.check` waits at
most a total budget and says "still checking" for the rest, so a hanging office never holds a
page for long. A result is kept for `ttl_s` seconds, and a check still running is shared.
"""

from __future__ import annotations

import datetime as dt
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import requests

from domain.config import Office
from integrations.channels import channels, validate_options
from integrations.channels.webhook import USER_AGENT
from integrations.smtp import connect


class Reach(StrEnum):
    """The outcome of one check."""

    UP = "up"
    DOWN = "down"
    CHECKING = "checking"  # not finished within the page's budget
    PULL = "pull"  # the office fetches its cases: nothing to reach


@dataclass(frozen=True)
class Reachability:
    """One office's check: the outcome, when it was made, and what was tried (German)."""

    state: Reach
    checked_at: dt.datetime | None
    detail: str


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _tcp(host: str, port: int, timeout_s: float) -> Reachability:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except TimeoutError:
        return Reachability(Reach.DOWN, _now(), "Keine Antwort (Zeitüberschreitung)")
    except OSError:
        return Reachability(Reach.DOWN, _now(), "Verbindung abgelehnt oder nicht möglich")
    return Reachability(Reach.UP, _now(), "Verbindung zum Server möglich")


def _health(url: str, timeout_s: float) -> Reachability:
    try:
        with requests.get(
            url,
            timeout=(timeout_s, timeout_s),
            allow_redirects=False,
            headers={"User-Agent": USER_AGENT},
            stream=True,
        ) as answer:
            status = answer.status_code
    except requests.Timeout:
        return Reachability(Reach.DOWN, _now(), "Keine Antwort (Zeitüberschreitung)")
    except requests.RequestException:
        return Reachability(Reach.DOWN, _now(), "Verbindung abgelehnt oder nicht möglich")
    if 200 <= status < 300:
        return Reachability(Reach.UP, _now(), "Die Statusadresse der Stelle meldet Betrieb")
    return Reachability(Reach.DOWN, _now(), f"Die Statusadresse antwortet mit HTTP {status}")


def _smtp(options: dict[str, Any], timeout_s: float) -> Reachability:
    try:
        smtp = connect(
            options["host"],
            options["port"],
            tls=options["tls"],
            ca_file=options["ca_file"],
            timeout=timeout_s,
        )
        with smtp:
            smtp.noop()
    except TimeoutError:
        return Reachability(Reach.DOWN, _now(), "Der Mailserver antwortet nicht")
    except (smtplib.SMTPException, ssl.SSLError, OSError):
        return Reachability(Reach.DOWN, _now(), "Der Mailserver ist nicht erreichbar")
    return Reachability(Reach.UP, _now(), "Der Mailserver nimmt Verbindungen an")


def check_office(office: Office, timeout_s: float = 2.0) -> Reachability:
    """One fresh, side-effect-free check of `office` (see the module docstring)."""
    plugin = channels.get(office.channel)
    if plugin is not None and plugin.pull:
        return Reachability(Reach.PULL, _now(), "Die Stelle holt ihre Anträge selbst ab")
    options, problems = validate_options(office.channel, office.options)
    if problems:
        return Reachability(Reach.DOWN, _now(), "Die Einstellungen der Stelle sind fehlerhaft")
    if office.channel == "email":
        return _smtp(options, timeout_s)
    if options.get("health_url"):
        return _health(str(options["health_url"]), timeout_s)
    url = urlsplit(str(options.get("url", "")))
    if not url.hostname:
        return Reachability(Reach.DOWN, _now(), "Die Stelle hat keine Adresse")
    port = url.port or (443 if url.scheme == "https" else 80)
    return _tcp(url.hostname, port, timeout_s)


class ReachabilityMonitor:
    """Concurrent checks within a total budget, each result kept for `ttl_s` seconds."""

    def __init__(
        self,
        *,
        ttl_s: float = 30.0,
        timeout_s: float = 2.0,
        budget_s: float = 2.5,
        workers: int = 8,
        checker: Callable[[Office, float], Reachability] = check_office,
    ) -> None:
        """A monitor; its threads start with the first check."""
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self.budget_s = budget_s
        self._checker = checker
        self._workers = workers
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Reachability]] = {}
        self._running: dict[str, Future[Reachability]] = {}
        self._pool: ThreadPoolExecutor | None = None

    def _future(self, office: Office) -> Future[Reachability]:
        # Called with the lock held: one check per office at a time, shared by all pages.
        running = self._running.get(office.id)
        if running is not None:
            return running
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="reachability")
        future = self._pool.submit(self._run, office)
        self._running[office.id] = future
        return future

    def _run(self, office: Office) -> Reachability:
        try:
            result = self._checker(office, self.timeout_s)
        except Exception:  # a broken check must read "down", never break a page
            result = Reachability(Reach.DOWN, _now(), "Die Prüfung ist fehlgeschlagen")
        with self._lock:
            self._cache[office.id] = (time.monotonic(), result)
            self._running.pop(office.id, None)
        return result

    def check(self, offices: Sequence[Office]) -> dict[str, Reachability]:
        """Each office's result: cached when fresh, else checked now within the budget."""
        results: dict[str, Reachability] = {}
        waiting: dict[str, Future[Reachability]] = {}
        now = time.monotonic()
        with self._lock:
            for office in offices:
                cached = self._cache.get(office.id)
                if cached is not None and now - cached[0] < self.ttl_s:
                    results[office.id] = cached[1]
                else:
                    waiting[office.id] = self._future(office)
        if waiting:
            wait(list(waiting.values()), timeout=self.budget_s)
        for office_id, future in waiting.items():
            results[office_id] = (
                future.result()
                if future.done()
                else Reachability(Reach.CHECKING, None, "Die Prüfung läuft noch")
            )
        return results

    def close(self) -> None:
        """Stop the threads (checks under way finish within their timeouts)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
