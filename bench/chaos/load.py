"""The load client: posts the planned submissions to the two hosts at a steady rate.

Like a Formcycle server behind a load balancer, a send that gets no answer (connection refused
or reset while a host is down) or a 503 is sent again, to a random host, until it gets another
answer or `max_tries` run out. Every try is recorded with its start and end time, so that a 503
can be matched against the store outages afterwards.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from dataclasses import dataclass, field

import requests

from bench.chaos.bodies import Planned

SECRET_HEADER = "X-Bridge-Secret"  # noqa: S105 - the header's name, not a secret


@dataclass
class Try:
    """One HTTP request of the load."""

    index: int
    host: str
    start: float
    end: float
    status: int | None  # None: no answer (connection refused, reset, timeout)
    reference: str = ""
    replayed: bool = False
    detail: str = ""


@dataclass
class Load:
    """Sends the plan; `tries` holds every request, `answers` each send's final answer."""

    plan: list[Planned]
    hosts: list[str]
    secret: str
    rate: float
    threads: int
    max_tries: int = 40
    tries: list[Try] = field(default_factory=list)
    answers: dict[int, list[Try]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    done: threading.Event = field(default_factory=threading.Event)
    started: float = 0.0
    finished: float = 0.0

    def run(self) -> None:
        """Send everything (blocking): first each submission once, then the later repeats."""
        work: queue.Queue[tuple[float, Planned] | None] = queue.Queue()
        self.started = time.time()
        order = self.plan + [p for p in self.plan if p.repeat == "later"]
        for n, p in enumerate(order):
            work.put((self.started + n / self.rate, p))
        for _ in range(self.threads):
            work.put(None)
        workers = [threading.Thread(target=self._worker, args=(work,)) for _ in range(self.threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        self.finished = time.time()
        self.done.set()

    def _worker(self, work: queue.Queue[tuple[float, Planned] | None]) -> None:
        session = requests.Session()
        rng = random.Random()
        while (item := work.get()) is not None:
            at, p = item
            time.sleep(max(0.0, at - time.time()))
            if p.repeat == "concurrent":
                twin = threading.Thread(
                    target=self.send, args=(p, requests.Session(), random.Random())
                )
                twin.start()
                self.send(p, session, rng)
                twin.join()
            else:
                self.send(p, session, rng)

    def send(self, p: Planned, session: requests.Session, rng: random.Random) -> Try:
        """Post `p` until it gets an answer other than 503 (or the tries run out)."""
        last: Try | None = None
        for n in range(self.max_tries):
            host = rng.choice(self.hosts)
            last = self._post(p, host, session)
            with self.lock:
                self.tries.append(last)
            if last.status is not None and last.status != 503:
                break
            time.sleep(min(2.0, 0.1 * (n + 1)))
        assert last is not None
        with self.lock:
            self.answers.setdefault(p.index, []).append(last)
        return last

    def _post(self, p: Planned, host: str, session: requests.Session) -> Try:
        kwargs = dict(p.request)
        kwargs["headers"] = {**kwargs.get("headers", {}), SECRET_HEADER: self.secret}
        start = time.time()
        try:
            r = session.post(f"{host}/webhooks/formcycle/{p.service}", timeout=45, **kwargs)
        except requests.RequestException as exc:
            session.close()
            return Try(p.index, host, start, time.time(), None, detail=type(exc).__name__)
        end = time.time()
        reference, detail = "", ""
        if r.status_code == 202:
            reference = str(r.json().get("reference", ""))
        else:
            detail = r.text[:300]
        return Try(
            p.index,
            host,
            start,
            end,
            r.status_code,
            reference,
            r.headers.get("Idempotent-Replayed") == "true",
            detail,
        )
