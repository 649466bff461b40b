"""The pull inbox hands out the inbox channel's document: its options apply to what is pulled."""

from __future__ import annotations

import hashlib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient

from tests.factories import PDF, flatten, traffic
from tests.schemas.agreement import schema_validator
from tests.webhook_support import FilePart, multipart_body, post
from tests.worker.conftest import replace_office

OFFICE = "neu-anspach-ordnungsamt"
INBOX_TOKEN = "inbox-token-of-the-ordnungsamt-0123456789"
PLAN = PDF + b"% Lageplan Bahnhofstrasse\n" + b"%" * 200
PLAN_SHA = hashlib.sha256(PLAN).hexdigest()


@pytest.fixture
def environ(environ: dict[str, str]) -> dict[str, str]:
    """The public-order office pulls its cases; attachments above 64 bytes go as links."""
    block = (
        f'[offices.{OFFICE}]\nname = "Ordnungsamt Neu-Anspach"\nmunicipality = "neu-anspach"\n'
        'task_area = "public-order"\nchannel = "inbox"\n'
        'options = { token_env = "BRIDGE_SECRET_ORDNUNGSAMT_INBOX", inline_limit_bytes = 64 }\n'
    )
    path = Path(environ["BRIDGE_CONFIG"])
    path.write_text(
        replace_office(path.read_text(encoding="utf-8"), OFFICE, block), encoding="utf-8"
    )
    environ["BRIDGE_SECRET_ORDNUNGSAMT_INBOX"] = INBOX_TOKEN
    return environ


def test_pulled_case_lists_a_large_attachment_as_a_link(client: FlaskClient) -> None:
    """inline_limit_bytes of the inbox office: hash and fetch link instead of the content."""
    body, content_type = multipart_body(
        flatten(traffic(reason="construction")),
        [FilePart("site_plan", "Lageplan.pdf", "application/pdf", PLAN)],
    )
    answer = post(client, "traffic-order", body, content_type)
    assert answer.status_code == 202, answer.get_data(as_text=True)
    reference = answer.get_json()["reference"]

    cases = client.get(
        f"/api/v1/inbox/{OFFICE}/cases", headers={"Authorization": f"Bearer {INBOX_TOKEN}"}
    ).get_json()["cases"]

    [case] = cases
    assert case["reference"] == reference
    # The pulled document keeps the published contract, as pushed ones do.
    published = client.get(f"/schemas/deliveries/{case['service']['schema']}.json").get_json()
    assert list(schema_validator(published).iter_errors(case)) == []
    [attachment] = case["attachments"]
    assert attachment["sha256"] == PLAN_SHA
    assert attachment["content_base64"] is None
    link = urlsplit(attachment["fetch_url"])
    assert link.path == f"/api/v1/submissions/{reference}/attachments/{PLAN_SHA}"
    # The link is signed for this office's delivery: it works without a further token.
    fetched = client.get(f"{link.path}?{link.query}")
    assert fetched.status_code == 200
    assert fetched.data == PLAN
