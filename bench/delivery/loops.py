"""Plain loops: the same envelopes POSTed in one process, the yardstick of the throughput."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import requests

from bench.delivery.databases import copy_database, drop_database
from bench.delivery.shared import DOG_OFFICE, Bench
from domain.settings import Settings
from infra.crypto import Vault
from store.engine import Store


@dataclasses.dataclass
class LoopRun:
    """One single-process loop posting the same envelopes."""

    store: str
    name: str
    office: str
    posts: int
    seconds: float
    statuses: dict[int, int]
    cpu_s: float

    @property
    def per_s(self) -> float:
        """Posts per second."""
        return self.posts / self.seconds if self.seconds else 0.0

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return {
            "store": self.store,
            "loop": self.name,
            "office": self.office,
            "posts": self.posts,
            "seconds": round(self.seconds, 3),
            "per_s": round(self.per_s, 1),
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "bench_cpu_s": round(self.cpu_s, 2),
        }


@dataclasses.dataclass
class Posts:
    """The envelopes of a prepared database, with the bytes and headers the channel sends."""

    office_id: str
    envelopes: list[Any]
    bodies: list[tuple[bytes, dict[str, str]]]
    channel: Any
    case_path: str  # /cases/<office>
    build_seconds: float
    render_seconds: float


def build_posts(bench: Bench, url: str, office_id: str) -> Posts:
    """Build every pending envelope of `office_id` and render and sign it like the channel."""
    from sqlalchemy import select

    from infra.standard_webhooks import sign
    from integrations.channels import channels
    from integrations.channels.envelopes import build_envelopes
    from integrations.channels.webhook import USER_AGENT, WebhookChannel, signing_key
    from store.models import Delivery

    settings = Settings.from_env(bench.environ(url))
    store = Store.from_url(url)
    vault = Vault(settings.encryption_keys)
    office = settings.config.offices[office_id]
    channel = channels[office.channel](office.id, office.options, settings.secrets)
    if not isinstance(channel, WebhookChannel):
        raise SystemExit(f"office {office_id} does not use a webhook channel")
    try:
        with store.read() as session:
            ids = list(
                session.scalars(
                    select(Delivery.id)
                    .where(Delivery.office_id == office_id)
                    .order_by(Delivery.next_attempt_at)
                )
            )
        t0 = time.perf_counter()
        envelopes = []
        for i in range(0, len(ids), 500):
            envelopes += build_envelopes(settings, store, vault, ids[i : i + 500])
        t1 = time.perf_counter()
    finally:
        store.dispose()
    key = signing_key(settings.secrets["BRIDGE_SECRET_OFFICE_SIGNING"])
    bodies = []
    for envelope in envelopes:
        body = channel.render(envelope)
        stamp = int(time.time())
        headers = {
            "Content-Type": channel.content_type,
            "User-Agent": USER_AGENT,
            "webhook-id": envelope.delivery_id,
            "webhook-timestamp": str(stamp),
            "Idempotency-Key": envelope.delivery_id,
            "webhook-signature": sign(key, envelope.delivery_id, stamp, body),
        }
        bodies.append((body, headers))
    t2 = time.perf_counter()
    path = urlsplit(str(channel.options["url"])).path
    return Posts(office_id, envelopes, bodies, channel, path, t1 - t0, t2 - t1)


def own_cpu_s() -> float:
    """CPU seconds of this process so far (all threads)."""
    return time.process_time()


def plain_loop(
    store: str,
    posts: Posts,
    base: str,
    office: str,
    limit: int | None = None,
    trust_env: bool = True,
) -> LoopRun:
    """POST the prepared bodies one after the other over one keep-alive session."""
    session = requests.Session()
    session.trust_env = trust_env
    url = base + posts.case_path
    statuses: Counter[int] = Counter()
    bodies = posts.bodies[:limit]
    cpu0 = own_cpu_s()
    t0 = time.perf_counter()
    for body, headers in bodies:
        response = session.post(url, data=body, headers=headers, timeout=(5, 30))
        _ = response.content
        statuses[response.status_code] += 1
    seconds = time.perf_counter() - t0
    cpu = own_cpu_s() - cpu0
    session.close()
    name = "plain requests loop" + ("" if trust_env else ", Session.trust_env = False")
    return LoopRun(store, name, office, len(bodies), seconds, dict(statuses), cpu)


def channel_loop(store: str, posts: Posts, office: str) -> LoopRun:
    """`channel.deliver()` (render, sign, post_signed, read the answer) in a loop."""
    from integrations.channels import DeliveryError

    session = requests.Session()
    statuses: Counter[int] = Counter()
    cpu0 = own_cpu_s()
    t0 = time.perf_counter()
    for envelope in posts.envelopes:
        try:
            receipt = posts.channel.deliver(envelope, session)
            statuses[int(receipt.status_code or 0)] += 1
        except DeliveryError as exc:
            statuses[int(exc.status_code or 0)] += 1
    seconds = time.perf_counter() - t0
    cpu = own_cpu_s() - cpu0
    session.close()
    return LoopRun(
        store, "channel.deliver() loop", office, len(posts.envelopes), seconds, dict(statuses), cpu
    )


def measure_loops(bench: Bench, store: str, template: str) -> tuple[list[LoopRun], Posts]:
    """The plain loop and the channel loop to the fast office; the plain loop to the demo."""
    url = copy_database(bench, store, template, "loop")
    try:
        posts = build_posts(bench, url, DOG_OFFICE)
    finally:
        drop_database(bench, store, "loop")
    runs = []
    bench.quiet(f"{store} plain loop")
    bench.office.reset()
    runs.append(plain_loop(store, posts, bench.office.url, "fast office"))
    bench.quiet(f"{store} plain loop without trust_env")
    bench.office.reset()
    runs.append(plain_loop(store, posts, bench.office.url, "fast office", trust_env=False))
    bench.quiet(f"{store} channel loop")
    bench.office.reset()
    runs.append(channel_loop(store, posts, "fast office"))
    if bench.demo_url is not None:
        bench.quiet(f"{store} plain loop to the demo")
        requests.post(f"{bench.demo_url}/_reset", timeout=10)
        runs.append(
            plain_loop(store, posts, bench.demo_url, "DemoBackOffice", bench.opts.demo_posts)
        )
        requests.post(f"{bench.demo_url}/_reset", timeout=10)
    bench.office.reset()
    for run in runs:
        print(f"  {run.name} → {run.office}: {run.per_s:,.0f}/s {dict(run.statuses)}", flush=True)
    return runs, posts
