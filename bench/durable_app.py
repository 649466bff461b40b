"""The second baseline of the intake benchmark: the least a durable intake must do.

Same route, body and gunicorn settings as the bridge, and the same store settings (the
bridge's `make_engine`: SQLite in WAL with ``synchronous=FULL`` and ``BEGIN IMMEDIATE``, or
PostgreSQL with synchronous commit), but nothing beyond what durability needs: check the
sender's secret, parse the form, load it with one flat marshmallow schema, insert the
submission and its delivery in one transaction, wake the office (the bridge's own wake-up),
answer 202. No routing table, nested schemas, rules, encryption, idempotency fingerprint,
metrics or logging. Its throughput is what a durable 202 costs on this machine; `bench.intake`
divides the bridge's figures by it (issue 10 asks for at least 0.8).

    DATABASE_URL=... REDIS_URL=... BRIDGE_SECRET_FORMCYCLE=... gunicorn 'bench.durable_app:create_app()'
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import os
from typing import Any, cast

from flask import Flask, Response, request
from marshmallow import EXCLUDE, Schema, ValidationError, fields
from redis import Redis
from sqlalchemy import Table, insert

from store.engine import make_engine
from store.models import Delivery, Submission
from worker.queue import wake_offices

OFFICE = "usingen-steueramt"
_S = cast(Table, Submission.__table__)
_D = cast(Table, Delivery.__table__)


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


def create_app() -> Flask:
    """The durable baseline: one POST route, `/webhooks/formcycle/<service_id>`."""
    # A pooled connection for every request thread gunicorn may run (up to 32 in the sweeps):
    # with the default pool of 5 (+10 overflow, closed on return), 8 threads kept opening
    # and closing PostgreSQL connections, a handicap the bridge (one committer) does not have.
    engine = make_engine(os.environ["DATABASE_URL"], pool_size=32)
    redis = Redis.from_url(os.environ["REDIS_URL"])
    secret = os.environ["BRIDGE_SECRET_FORMCYCLE"].encode()
    schema = DogForm()
    returning = engine.dialect.name == "postgresql"
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
            "reference_prefix": "NA",
            "reference_year": now.year,
            "service": service_id,
            "schema": "dog-registration@1",
            "sender": "formcycle",
            "idempotency_key": request.headers.get("Idempotency-Key"),
            "fingerprint": None,
            "municipality_ags": "06434007",
            "status": "routed",
            "flags": {},
            "data": json.dumps(data, default=str).encode(),
            "received_at": now,
            "updated_at": now,
        }
        with engine.begin() as conn:
            if returning:
                number = conn.execute(insert(_S).values(row).returning(_S.c.id)).scalar_one()
            else:
                number = conn.execute(insert(_S).values(row)).lastrowid
            conn.execute(
                insert(_D).values(
                    id=os.urandom(16).hex(),
                    submission_id=number,
                    office_id=OFFICE,
                    task_area="tax",
                    channel="http-json",
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
        wake_offices(redis, [OFFICE])
        answer = {"reference": f"NA-{now.year}-{number:06d}", "status": "routed"}
        return Response(json.dumps(answer), status=202, mimetype="application/json")

    return app
