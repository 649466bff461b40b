"""Personal data stays out of the raw database and out of the logs."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import inspect, select, text
from sqlalchemy.types import LargeBinary

from infra.crypto import Vault
from infra.logs import JsonFormatter
from store.engine import Store
from store.models import Submission
from tests.conftest import MakeToken, bearer
from tests.factories import PDF, dog, flatten, traffic
from tests.webhook_support import FilePart, form_body, multipart_body, post

NAME = "Zwetschgenbaum"
CHIP = "276098100987654"
PLAN_NAME = f"Lageplan-{NAME}.pdf"
PROCESS_ID = "fc-privacy-0815"


def _submit(client: FlaskClient) -> tuple[str, str]:
    """Store a dog registration and a traffic order carrying the distinctive data."""
    dog_body = form_body(
        dog({"keeper.last_name": NAME, "dog.microchip_number": CHIP}),
        [("process_id", PROCESS_ID)],
    )
    first = post(client, "dog-registration", dog_body)
    assert first.status_code == 202, first.get_data(as_text=True)
    fields = flatten(traffic({"applicant.person.last_name": NAME}, reason="construction"))
    body, content_type = multipart_body(
        fields, [FilePart("site_plan", PLAN_NAME, "application/pdf", PDF + NAME.encode())]
    )
    second = post(client, "traffic-order", body, content_type)
    assert second.status_code == 202, second.get_data(as_text=True)
    return first.get_json()["reference"], second.get_json()["reference"]


def _sqlite_bytes(database_url: str) -> bytes:
    """The database file and its WAL and shared-memory files, as stored on disk."""
    path = Path(database_url.removeprefix("sqlite:///"))
    files = sorted(path.parent.glob(path.name + "*"))
    assert path in files
    return b"".join(f.read_bytes() for f in files)


def _postgres_bytes(store: Store) -> bytes:
    """Every column of every table: as text, and binary columns also as their raw bytes."""
    out = io.BytesIO()
    inspector = inspect(store.engine)
    with store.engine.connect() as conn:
        for table in inspector.get_table_names():
            for column in inspector.get_columns(table):
                name = column["name"]
                if isinstance(column["type"], LargeBinary):
                    query = text(f'SELECT "{name}" FROM "{table}"')  # noqa: S608
                    for (value,) in conn.execute(query):
                        out.write(bytes(value or b""))
                query = text(f'SELECT CAST("{name}" AS text) FROM "{table}"')  # noqa: S608
                for (value,) in conn.execute(query):
                    out.write((value or "").encode())
                    out.write(b"\n")
    return out.getvalue()


def test_raw_database_holds_no_plaintext_name_or_chip(
    client: FlaskClient, store: Store, app: Flask, database_url: str
) -> None:
    """After two accepted submissions no name, chip number or file name is readable in the store."""
    _submit(client)
    if database_url.startswith("sqlite"):
        raw = _sqlite_bytes(database_url)
    else:
        raw = _postgres_bytes(store)
    # The dump is real: non-personal values stored in the clear are found in it.
    assert PROCESS_ID.encode() in raw
    assert b"usingen-steueramt" in raw
    for secret in (NAME, CHIP, PLAN_NAME, "Erika"):
        assert secret.encode() not in raw, secret
        assert secret.encode("utf-16-le") not in raw, secret
    # ...and the data is there, encrypted: the vault gives it back.
    vault: Vault = app.extensions["bridge"].vault
    with store.read() as session:
        rows = session.scalars(select(Submission).order_by(Submission.id)).all()
        stored = [vault.decrypt_json(row.data) for row in rows if row.data is not None]
    assert stored[0]["keeper"]["last_name"] == NAME
    assert stored[0]["dog"]["microchip_number"] == CHIP
    assert stored[1]["applicant"]["person"]["last_name"] == NAME


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Everything logged at DEBUG and above, rendered by the service's JSON formatter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def test_logs_of_full_requests_hold_no_name_or_chip(
    client: FlaskClient, caplog: pytest.LogCaptureFixture, json_log: io.StringIO
) -> None:
    """Logs of accepted, repeated and refused requests carry references, never personal data."""
    caplog.set_level(logging.DEBUG)
    # SQL statements with their parameters too, the most likely leak.
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")
    dog_reference, traffic_reference = _submit(client)
    again = post(
        client,
        "dog-registration",
        form_body(
            dog({"keeper.last_name": NAME, "dog.microchip_number": CHIP}),
            [("process_id", PROCESS_ID)],
        ),
    )
    assert again.get_json()["reference"] == dog_reference
    refused = post(
        client,
        "dog-registration",
        form_body(dog({"keeper.last_name": NAME, "dog.microchip_number": CHIP + "0"})),
    )
    assert refused.status_code == 422
    rendered = json_log.getvalue()
    captured = caplog.text + "\n".join(str(r.__dict__) for r in caplog.records)
    # The logs are real: the accepted submissions are logged by reference.
    assert dog_reference in rendered
    assert traffic_reference in rendered
    assert any(r.name.startswith("sqlalchemy.engine") for r in caplog.records)
    for secret in (NAME, CHIP, CHIP + "0", PLAN_NAME):
        assert secret not in rendered, secret
        assert secret not in captured, secret


def test_status_answer_holds_no_personal_data(client: FlaskClient, api_token: MakeToken) -> None:
    """The status resource shows routing and history, not the citizen's data."""
    dog_reference, _ = _submit(client)
    response = client.get(
        f"/api/v1/submissions/{dog_reference}", headers=bearer(api_token("viewer"))
    )
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert dog_reference in body
    for secret in (NAME, CHIP, "Erika"):
        assert secret not in body
