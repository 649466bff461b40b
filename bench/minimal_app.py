"""The intake benchmark's yardstick: the least a durable intake does, written without the bridge.

Same route and body as the bridge and the same durability (SQLite in WAL with
``synchronous=FULL`` and ``BEGIN IMMEDIATE``, as store/engine.py sets it, or PostgreSQL with
synchronous commit), but nothing else: check the sender's secret, load the form with one flat
marshmallow schema, insert the submission and its delivery in one transaction through the
driver itself (the standard library's ``sqlite3``, or psycopg), wake the office with one Redis
round trip, answer 202. No SQLAlchemy, no routing, nested schemas, rules, encryption,
idempotency fingerprint, metrics or logging; nothing of the bridge's code is imported, so a
change to the bridge cannot move this baseline. `bench.intake` runs it under every gunicorn
setting it sweeps, takes its best, and divides the bridge's figures by that (issue 22 asks for
at least 0.8).

    DATABASE_URL=... REDIS_URL=... BRIDGE_SECRET_FORMCYCLE=... gunicorn 'bench.minimal_app:create_app()'
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import os
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import psycopg
from flask import Flask, Response, request
from marshmallow import EXCLUDE, Schema, ValidationError, fields
from redis import Redis

OFFICE = "usingen-steueramt"
#: The same busy timeout as the bridge's SQLite engine (store/engine.py).
SQLITE_BUSY_TIMEOUT_MS = 10_000
#: Redis key of the office's wake-up mark; the job list is pushed only when the mark is new.
MARK_KEY = f"minimal:queued:{OFFICE}"
QUEUE_KEY = "minimal:queue"

# The two INSERTs, written out (no string building), with ? for sqlite3 and %s for psycopg.
SQLITE_SUBMISSION = (
    "INSERT INTO submissions (reference_prefix, reference_year, service, schema, sender, "
    "idempotency_key, fingerprint, municipality_ags, status, flags, data, received_at, "
    "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
SQLITE_DELIVERY = (
    "INSERT INTO deliveries (id, submission_id, office_id, task_area, channel, status, "
    "attempts, next_attempt_at, created_at, updated_at, kind) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
POSTGRES_SUBMISSION = (
    "INSERT INTO submissions (reference_prefix, reference_year, service, schema, sender, "
    "idempotency_key, fingerprint, municipality_ags, status, flags, data, received_at, "
    "updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::json, %s, %s, %s) "
    "RETURNING id"
)
POSTGRES_DELIVERY = (
    "INSERT INTO deliveries (id, submission_id, office_id, task_area, channel, status, "
    "attempts, next_attempt_at, created_at, updated_at, kind) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def _field(kind: type[fields.Field[Any]], key: str, required: bool = True) -> fields.Field[Any]:
    return kind(data_key=key, required=required)


class DogForm(Schema):
    """The example dog registration's fields, flat, with their types and nothing else."""

    class Meta:
        unknown = EXCLUDE

    consent = _field(fields.Boolean, "privacy_consent")
    first_name = _field(fields.String, "keeper.first_name")
    last_name = _field(fields.String, "keeper.last_name")
    birth_date = _field(fields.Date, "keeper.birth_date")
    street = _field(fields.String, "keeper.address.street")
    house_number = _field(fields.String, "keeper.address.house_number")
    postal_code = _field(fields.String, "keeper.address.postal_code")
    town = _field(fields.String, "keeper.address.town")
    email = _field(fields.Email, "keeper.contact.email", required=False)
    phone = _field(fields.String, "keeper.contact.phone", required=False)
    dog_name = _field(fields.String, "dog.name")
    breed = _field(fields.String, "dog.breed")
    mixed = _field(fields.Boolean, "dog.is_mixed_breed")
    sex = _field(fields.String, "dog.sex")
    colour = _field(fields.String, "dog.colour")
    dog_birth_date = _field(fields.Date, "dog.birth_date")
    chip = _field(fields.String, "dog.microchip_number")
    acquired = _field(fields.Date, "dog.acquisition_date")
    reason = _field(fields.String, "dog.acquisition_reason")
    previous_name = _field(fields.String, "previous_keeper.name", required=False)
    previous_street = _field(fields.String, "previous_keeper.address.street", required=False)
    previous_number = _field(fields.String, "previous_keeper.address.house_number", False)
    previous_code = _field(fields.String, "previous_keeper.address.postal_code", False)
    previous_town = _field(fields.String, "previous_keeper.address.town", required=False)
    dogs = _field(fields.Integer, "dogs_in_household")
    insurer = _field(fields.String, "liability_insurance.insurer", required=False)
    policy = _field(fields.String, "liability_insurance.policy_number", required=False)
    relief = _field(fields.Boolean, "tax_relief.requested", required=False)


#: Inserts a submission and its delivery in one transaction; returns the submission's number.
Writer = Callable[[dict[str, Any], dt.datetime], int]


def sqlite_writer(path: str) -> Writer:
    """One connection per request thread, in WAL with synchronous=FULL, BEGIN IMMEDIATE."""
    local = threading.local()

    def connection() -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            # FULL: a commit survives a power cut, as the bridge's 202 promises.
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            local.conn = conn
        return conn

    def write(row: dict[str, Any], now: dt.datetime) -> int:
        conn = connection()
        stamp = now.replace(tzinfo=None).isoformat(" ")
        conn.execute("BEGIN IMMEDIATE")
        try:
            cur = conn.execute(SQLITE_SUBMISSION, (*_submission_values(row), stamp, stamp))
            number = int(cur.lastrowid or 0)
            conn.execute(SQLITE_DELIVERY, _delivery_values(number, stamp))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return number

    return write


def postgres_writer(url: str) -> Writer:
    """One psycopg connection per request thread, synchronous commit (the server's default)."""
    local = threading.local()
    conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)

    def connection() -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] | None = getattr(local, "conn", None)
        if conn is None or conn.closed:
            conn = psycopg.connect(conninfo)
            local.conn = conn
        return conn

    def write(row: dict[str, Any], now: dt.datetime) -> int:
        conn = connection()
        stamp = now.replace(tzinfo=None)
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(POSTGRES_SUBMISSION, (*_submission_values(row), stamp, stamp))
            fetched = cur.fetchone()
            number = int(fetched[0]) if fetched else 0
            cur.execute(POSTGRES_DELIVERY, _delivery_values(number, stamp))
        return number

    return write


def _submission_values(row: dict[str, Any]) -> tuple[Any, ...]:
    return (
        "NA",
        row["year"],
        row["service"],
        "dog-registration@1",
        "formcycle",
        row["key"],
        None,
        "06434007",
        "routed",
        "{}",
        row["data"],
    )


def _delivery_values(number: int, stamp: Any) -> tuple[Any, ...]:
    return (
        os.urandom(16).hex(),
        number,
        OFFICE,
        "tax",
        "http-json",
        "pending",
        0,
        stamp,
        stamp,
        stamp,
        "case",
    )


def make_writer(url: str) -> Writer:
    """The writer for a database URL: sqlite:///path or postgresql[+psycopg]://..."""
    if url.startswith("sqlite:///"):
        return sqlite_writer(url.removeprefix("sqlite:///"))
    return postgres_writer(url)


def create_app() -> Flask:
    """The minimal durable intake: one POST route, `/webhooks/formcycle/<service_id>`."""
    write = make_writer(os.environ["DATABASE_URL"])
    redis = Redis.from_url(os.environ["REDIS_URL"])
    secret = os.environ["BRIDGE_SECRET_FORMCYCLE"].encode()
    schema = DogForm()
    app = Flask(__name__)

    @app.post("/webhooks/formcycle/<service_id>")
    def receive(service_id: str) -> Response:
        presented = (request.headers.get("X-Bridge-Secret") or "").encode()
        if not hmac.compare_digest(presented, secret):
            return Response('{"status": 401}', status=401, mimetype="application/json")
        try:
            data = schema.load(request.form.to_dict())
        except ValidationError as exc:
            body = json.dumps({"errors": exc.messages})
            return Response(body, status=422, mimetype="application/json")
        now = dt.datetime.now(dt.UTC)
        row = {
            "year": now.year,
            "service": service_id,
            "key": request.headers.get("Idempotency-Key"),
            "data": json.dumps(data, default=str).encode(),
        }
        number = write(row, now)
        # The office's wake-up: one round trip; the job is pushed only when the mark is new.
        if redis.set(MARK_KEY, "1", nx=True, ex=60):
            redis.lpush(QUEUE_KEY, OFFICE)
        answer = {"reference": f"NA-{now.year}-{number:06d}", "status": "routed"}
        return Response(json.dumps(answer), status=202, mimetype="application/json")

    return app
