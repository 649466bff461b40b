"""A store with a long history, and what the hot queries cost in it (issue 10: flat with history).

`seed(url, n)` adds `n` finally delivered submissions (each with one delivered delivery and
its three events, encrypted-size data, received over the last two years) in large batches.
`query_timings(url)` times the queries that run for every submission, sweep and drain, by
calling the production functions themselves: the sweeper's due query, a drain's claim, the
idempotency look-up of a repeat and the status read by reference.

    python -m bench.history --rows 1000000 --stores sqlite,postgres

prints, per store, each query's p50/p99 on the empty store and with the history, and the
ratio (issue 10 asks for at most 1.2). `bench.intake --history N` adds the same rows to its
table next to the intake figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, func, insert, select

from bench.stores import DEFAULT_POSTGRES, prepare_sqlite, recreate_postgres
from domain.config import Config, load_config
from domain.delivery.deliveries import claim_due, offices_with_due
from domain.intake.submissions import find_existing
from store.engine import Store
from store.models import Delivery, Event, Submission

OFFICE = "usingen-steueramt"
_S = cast(Table, Submission.__table__)
_D = cast(Table, Delivery.__table__)
_E = cast(Table, Event.__table__)
CONFIG = Path(__file__).resolve().parent.parent / "config" / "routing.toml"


def _config() -> Config:
    """The example routing (its secrets' values do not matter for the look-ups timed here)."""
    return load_config(CONFIG, environ=_AnySecret())


class _AnySecret(Mapping[str, str]):
    """An environment in which every variable the routing file names is set."""

    def __getitem__(self, key: str) -> str:
        return "set"

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def seed(url: str, n: int, *, data_bytes: int = 600, batch: int = 20_000) -> float:
    """Add `n` delivered submissions with their deliveries and events; returns seconds taken."""
    store = Store.from_url(url)
    started = time.perf_counter()
    now = dt.datetime.now(dt.UTC)
    span_s = 2 * 365 * 24 * 3600
    try:
        with store.engine.begin() as conn:
            first = int(conn.execute(select(func.coalesce(func.max(_S.c.id), 0))).scalar_one())
        done = 0
        while done < n:
            size = min(batch, n - done)
            submissions: list[dict[str, Any]] = []
            deliveries: list[dict[str, Any]] = []
            events: list[dict[str, Any]] = []
            for i in range(first + done + 1, first + done + size + 1):
                at = now - dt.timedelta(seconds=span_s * (1 - i / (first + n + 1)))
                delivery_id = os.urandom(16).hex()
                submissions.append(
                    {
                        "id": i,
                        "reference_prefix": "US",
                        "reference_year": at.year,
                        "service": "dog-registration",
                        "schema": "dog-registration@1",
                        "sender": "formcycle",
                        "idempotency_key": f"history-{i}",
                        "fingerprint": os.urandom(32).hex(),
                        "municipality_ags": "06434011",
                        "status": "delivered",
                        "flags": {},
                        "data": os.urandom(data_bytes),
                        "received_at": at,
                        "updated_at": at,
                    }
                )
                deliveries.append(
                    {
                        "id": delivery_id,
                        "submission_id": i,
                        "office_id": OFFICE,
                        "task_area": "tax",
                        "channel": "http-json",
                        "status": "delivered",
                        "attempts": 1,
                        "next_attempt_at": None,
                        "delivered_at": at,
                        "created_at": at,
                        "updated_at": at,
                    }
                )
                for kind, delivery in (
                    ("submission.received", None),
                    ("delivery.routed", delivery_id),
                    ("delivery.delivered", delivery_id),
                ):
                    events.append(
                        {
                            "submission_id": i,
                            "delivery_id": delivery,
                            "kind": kind,
                            "actor": "system",
                            "at": at,
                            "detail": {},
                        }
                    )
            with store.engine.begin() as conn:
                conn.execute(insert(_S), submissions)
                conn.execute(insert(_D), deliveries)
                conn.execute(insert(_E), events)
            done += size
        with store.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Sequences do not move for explicit ids; the bridge's next number follows on.
                conn.exec_driver_sql(
                    "SELECT setval(pg_get_serial_sequence('submissions', 'id'), "
                    "(SELECT max(id) FROM submissions))"
                )
            else:
                conn.exec_driver_sql("ANALYZE")
        if store.engine.dialect.name == "postgresql":
            # A store with a long history has been vacuumed and checkpointed long since; right
            # after a bulk load, autovacuum and the checkpoint of a gigabyte of WAL would be
            # timed instead of the queries (drain claim p99 195 ms against 23 ms empty).
            with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM (ANALYZE)")
                conn.exec_driver_sql("CHECKPOINT")
    finally:
        store.dispose()
    return time.perf_counter() - started


def _timed(run: Callable[[], object], repeats: int) -> dict[str, float]:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 3),
        "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 3),
    }


def query_timings(url: str, repeats: int = 300) -> dict[str, dict[str, float]]:
    """p50/p99 milliseconds of the hot queries, run through the production functions."""
    config = _config()
    sender = config.senders["formcycle"]
    service = config.services["dog-registration"]
    store = Store.from_url(url)
    try:
        with store.read() as session:
            newest = session.scalar(select(func.max(_S.c.idempotency_key)))
        key = newest or "none"
        return {
            "sweeper due query": _timed(lambda: offices_with_due(store), repeats),
            "drain claim": _timed(lambda: claim_due(store, OFFICE, 50, 30.0), repeats),
            "repeat look-up (known key)": _timed(
                lambda: find_existing(store, sender, service, key), repeats
            ),
            "repeat look-up (new key)": _timed(
                lambda: find_existing(store, sender, service, "never-used"), repeats
            ),
        }
    finally:
        store.dispose()


def compare(
    empty: dict[str, dict[str, float]], full: dict[str, dict[str, float]]
) -> list[dict[str, Any]]:
    """One row per query: empty and full p50/p99 and the p99 ratio."""
    rows = []
    for name, before in empty.items():
        after = full[name]
        rows.append(
            {
                "query": name,
                "empty": before,
                "history": after,
                "ratio_p50": round(after["p50_ms"] / max(before["p50_ms"], 1e-6), 2),
                "ratio_p99": round(after["p99_ms"] / max(before["p99_ms"], 1e-6), 2),
            }
        )
    return rows


def table(store: str, rows_in_history: int, rows: Sequence[dict[str, Any]]) -> str:
    """The Markdown rows of one store's comparison."""
    out = []
    for r in rows:
        out.append(
            f"| {store} | {r['query']} | {r['empty']['p50_ms']:.2f} / {r['empty']['p99_ms']:.2f} "
            f"| {r['history']['p50_ms']:.2f} / {r['history']['p99_ms']:.2f} "
            f"| {r['ratio_p50']:.2f} / {r['ratio_p99']:.2f} | {rows_in_history:,} |"
        )
    return "\n".join(out)


TABLE_HEAD = (
    "| store | query | empty p50 / p99 ms | with history p50 / p99 ms | ratio p50 / p99 "
    "| submissions in history |\n|---|---|--:|--:|--:|--:|\n"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Seed a fresh store of each kind and print the query comparison."""
    p = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__)
    p.add_argument("--rows", type=int, default=1_000_000, help="submissions in the history")
    p.add_argument("--stores", default="sqlite,postgres")
    p.add_argument("--postgres-url", default=DEFAULT_POSTGRES)
    p.add_argument("--postgres-db", default="bench_history")
    p.add_argument("--repeats", type=int, default=300)
    a = p.parse_args(sys.argv[1:] if argv is None else argv)
    lines = []
    with tempfile.TemporaryDirectory(prefix="bench-history-") as tmp:
        for store in a.stores.split(","):
            url = (
                prepare_sqlite(Path(tmp))
                if store == "sqlite"
                else recreate_postgres(a.postgres_url, a.postgres_db)
            )
            try:
                # One case first, so that the known key is found in both measurements.
                seed(url, 1)
                empty = query_timings(url, a.repeats)
                took = seed(url, a.rows)
                print(f"{store}: seeded {a.rows:,} submissions in {took:.0f} s", flush=True)
                full = query_timings(url, a.repeats)
                lines.append(table(store, a.rows, compare(empty, full)))
            finally:
                if store == "postgres":
                    recreate_postgres(a.postgres_url, a.postgres_db, create=False)
    print()
    print(TABLE_HEAD + "\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
