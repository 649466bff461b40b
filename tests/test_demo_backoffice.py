"""The demo back office itself: intake, dedupe, the fault switch, the page, SMTP and the CLI."""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import smtplib
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import requests

from demo_backoffice import DemoBackOffice
from demo_backoffice.contract import RECORDER
from harness.ports import free_port
from infra.standard_webhooks import sign
from integrations.channels import envelope_json
from integrations.channels.webhook import render_json
from integrations.channels.xml import build_document, render_xml
from tests.integrations.channels.factories import envelope

ROOT = Path(__file__).resolve().parent.parent
OFFICE = "neu-anspach-ordnungsamt"
SECRET = "whsec_" + base64.b64encode(b"demo-backoffice-test-key-32bytes").decode()


@pytest.fixture
def demo() -> Iterator[DemoBackOffice]:
    """A demo back office without signature checks; a "hang" lasts 0.3 s."""
    with DemoBackOffice(hang_s=0.3) as office:
        yield office


@pytest.fixture
def signed_demo() -> Iterator[DemoBackOffice]:
    """A demo back office that verifies Standard Webhooks signatures."""
    with DemoBackOffice(signing_secret=SECRET) as office:
        yield office


def case_body(reference: str = "NA-2026-000042") -> bytes:
    """A JSON case envelope as http-json sends it (fake data; it keeps the published contract)."""
    return render_json(envelope_json(envelope(reference=reference)))


def post_case(
    office: DemoBackOffice,
    delivery_id: str | None = None,
    body: bytes | None = None,
    content_type: str = "application/json",
    secret: str | None = None,
    timeout: float = 5,
) -> requests.Response:
    """POST a case like a channel does (webhook-id header; signed when `secret` is given)."""
    body = case_body() if body is None else body
    delivery_id = delivery_id or str(uuid.uuid4())
    timestamp = int(time.time())
    headers = {
        "Content-Type": content_type,
        "webhook-id": delivery_id,
        "webhook-timestamp": str(timestamp),
    }
    if secret is not None:
        key = base64.b64decode(secret.removeprefix("whsec_"))
        headers["webhook-signature"] = sign(key, delivery_id, timestamp, body)
    return requests.post(office.case_url(OFFICE), data=body, headers=headers, timeout=timeout)


def test_new_case_is_filed_and_numbered(demo: DemoBackOffice) -> None:
    first = post_case(demo, "d-1")
    second = post_case(demo, "d-2", case_body("NA-2026-000043"))

    assert first.status_code == 201
    assert first.json() == {"case_number": "NEU-ANSPACH-ORDNUNGSAMT-1", "duplicate": False}
    assert first.headers["Location"] == f"/cases/{OFFICE}/d-1"
    assert second.json()["case_number"] == "NEU-ANSPACH-ORDNUNGSAMT-2"
    [one, two] = demo.cases(OFFICE)
    assert one["reference"] == "NA-2026-000042"
    assert one["service"] == "Hund anmelden"
    assert one["format"] == "json"
    assert one["signature_valid"] is None  # no secret configured
    assert two["delivery_id"] == "d-2"
    assert demo.cases("other-office") == []
    listed = requests.get(f"{demo.url}/cases/{OFFICE}", timeout=5).json()
    assert [c["delivery_id"] for c in listed] == ["d-1", "d-2"]
    assert len(requests.get(f"{demo.url}/cases", timeout=5).json()) == 2


def test_repeated_webhook_id_answers_200_with_the_same_number(demo: DemoBackOffice) -> None:
    first = post_case(demo, "same")
    again = post_case(demo, "same")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == {"case_number": first.json()["case_number"], "duplicate": True}
    [case] = demo.cases(OFFICE)
    assert case["duplicate_count"] == 1
    assert demo.received_ids(OFFICE) == ["same", "same"]
    received = requests.get(f"{demo.url}/_received/{OFFICE}", timeout=5).json()
    assert received == ["same", "same"]


def test_status_fault_applies_to_the_next_count_requests(demo: DemoBackOffice) -> None:
    demo.set_fault(OFFICE, "status", status=500, count=2)

    statuses = [post_case(demo, "retry").status_code for _ in range(3)]

    assert statuses == [500, 500, 201]
    assert demo.received_ids(OFFICE) == ["retry"] * 3
    assert len(demo.cases(OFFICE)) == 1


def test_fault_without_count_stays_until_reset(demo: DemoBackOffice) -> None:
    demo.set_fault(OFFICE, "status", status=503, retry_after=60)
    answers = [post_case(demo) for _ in range(3)]
    demo.set_fault(OFFICE, "ok")

    assert [a.status_code for a in answers] == [503, 503, 503]
    assert answers[0].headers["Retry-After"] == "60"
    assert answers[0].headers["Content-Type"] == "application/problem+json"
    assert post_case(demo).status_code == 201


def test_global_fault_hits_every_office_and_ok_clears_all(demo: DemoBackOffice) -> None:
    demo.set_fault(None, "status", status=400)
    elsewhere = requests.post(
        f"{demo.url}/cases/usingen-steueramt",
        data=case_body(),
        headers={"Content-Type": "application/json", "webhook-id": "x"},
        timeout=5,
    )
    demo.set_fault(OFFICE, "status", status=502)

    assert elsewhere.status_code == 400
    assert post_case(demo).status_code == 502  # the office's own fault comes first
    demo.set_fault(None, "ok")
    assert post_case(demo).status_code == 201


def test_429_carries_retry_after(demo: DemoBackOffice) -> None:
    demo.set_fault(OFFICE, "429", count=1)
    answer = post_case(demo)

    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "30"


def test_refuse_closes_without_answer(demo: DemoBackOffice) -> None:
    demo.set_fault(OFFICE, "refuse", count=1)
    with pytest.raises(requests.ConnectionError):
        post_case(demo)
    assert post_case(demo).status_code == 201


def test_hang_answers_nothing_then_closes(demo: DemoBackOffice) -> None:
    demo.set_fault(OFFICE, "hang", count=1)
    with pytest.raises(requests.ReadTimeout):
        post_case(demo, timeout=0.1)
    # The hang is 0.3 s here: without a client timeout the connection simply closes.
    demo.set_fault(OFFICE, "hang", count=1)
    with pytest.raises(requests.ConnectionError):
        post_case(demo, timeout=5)


def test_faults_can_be_set_over_http(demo: DemoBackOffice) -> None:
    spec = {"office": OFFICE, "mode": "status", "status": 503, "count": 1, "retry_after": 5}
    answer = requests.post(f"{demo.url}/_faults", json=spec, timeout=5)

    assert answer.status_code == 200
    assert requests.get(f"{demo.url}/_faults", timeout=5).json()[OFFICE]["remaining"] == 1
    assert post_case(demo).status_code == 503
    assert post_case(demo).status_code == 201


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"mode": "explode"}, "mode must be one of"),
        ({"mode": "status"}, "needs status"),
        ({"mode": "status", "status": 500, "count": 0}, "count must be"),
        ({"mode": "429", "retry_after": -1}, "must not be negative"),
        ({"mode": "ok", "office": "Bad Office"}, "office must be"),
    ],
)
def test_bad_fault_specs_are_refused(
    demo: DemoBackOffice, spec: dict[str, Any], message: str
) -> None:
    answer = requests.post(f"{demo.url}/_faults", json=spec, timeout=5)

    assert answer.status_code == 400
    assert message in answer.json()["detail"]
    with pytest.raises(ValueError, match=message):
        demo.set_fault(spec.get("office"), **{k: v for k, v in spec.items() if k != "office"})


def test_unknown_fault_keys_are_refused_over_http(demo: DemoBackOffice) -> None:
    answer = requests.post(f"{demo.url}/_faults", json={"mode": "ok", "colour": "red"}, timeout=5)

    assert answer.status_code == 400
    assert "unknown keys: colour" in answer.json()["detail"]


def test_reset_forgets_everything(demo: DemoBackOffice) -> None:
    post_case(demo)
    demo.set_fault(OFFICE, "status", status=500)
    requests.post(f"{demo.url}/_reset", timeout=5)

    assert demo.cases() == []
    assert demo.received_ids(OFFICE) == []
    assert post_case(demo).status_code == 201


def test_signatures_are_verified(signed_demo: DemoBackOffice) -> None:
    good = post_case(signed_demo, "signed", secret=SECRET)
    unsigned = post_case(signed_demo, "unsigned")
    wrong = post_case(
        signed_demo,
        "wrong",
        secret="whsec_" + base64.b64encode(b"another-key-of-32-bytes-length!!").decode(),
    )

    assert good.status_code == 201
    assert (unsigned.status_code, wrong.status_code) == (401, 401)
    [case] = signed_demo.cases()
    assert case["delivery_id"] == "signed"
    assert case["signature_valid"] is True


def test_malformed_requests_are_refused(demo: DemoBackOffice) -> None:
    no_id = requests.post(demo.case_url(OFFICE), data=case_body(), timeout=5)
    bad_json = post_case(demo, body=b"{nope")
    bad_type = post_case(demo, content_type="text/plain")
    xxe = post_case(
        demo,
        body=b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
        content_type="application/xml",
    )

    assert no_id.status_code == 400
    assert bad_json.status_code == 400
    assert bad_type.status_code == 415
    assert xxe.status_code == 400
    assert "root:" not in xxe.text
    assert demo.cases() == []


def test_overview_page_is_german_and_shows_no_personal_data(demo: DemoBackOffice) -> None:
    post_case(demo, body=case_body("NA-2026-000777"))
    page = requests.get(f"{demo.url}/", timeout=5)

    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert '<html lang="de">' in page.text
    assert "eingegangene Anträge" in page.text
    assert "NA-2026-000777" in page.text
    assert "Hund anmelden" in page.text
    assert "Musterfrau" not in page.text


def test_keep_alive_serves_several_requests_on_one_connection(demo: DemoBackOffice) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", demo.port, timeout=5)
    try:
        for n in range(3):
            conn.request(
                "POST",
                f"/cases/{OFFICE}",
                body=case_body(),
                headers={"Content-Type": "application/json", "webhook-id": f"k-{n}"},
            )
            answer = conn.getresponse()
            body = answer.read()
            assert answer.status == 201
            assert answer.getheader("Content-Length") == str(len(body))
            assert not answer.will_close
        conn.request("GET", "/cases")
        assert len(json.loads(conn.getresponse().read())) == 3
    finally:
        conn.close()


def _mail(message_id: str, to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = "Neuer Antrag NA-2026-000042: Verkehrsrechtliche Anordnung"
    msg["From"] = "antraege@bridge.example.test"
    msg["To"] = to
    msg["Message-ID"] = message_id
    msg.set_content("Referenz: NA-2026-000042\n")
    msg.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="plan.pdf")
    return msg


def test_mails_become_cases_deduplicated_by_message_id(demo: DemoBackOffice) -> None:
    to = f"{OFFICE}@backoffice.test"
    with smtplib.SMTP("127.0.0.1", demo.smtp_port, timeout=5) as smtp:
        smtp.send_message(_mail("<m-1@formcycle-bridge>", to))
        smtp.send_message(_mail("<m-1@formcycle-bridge>", to))
        smtp.send_message(_mail("<other@mail.example.test>", to))

    [first, second] = demo.cases(OFFICE)
    assert first["format"] == "email"
    assert first["delivery_id"] == "m-1"
    assert first["duplicate_count"] == 1
    assert first["reference"] == "NA-2026-000042"
    assert first["attachments"][0]["filename"] == "plan.pdf"
    assert second["delivery_id"] == "other@mail.example.test"
    assert demo.received_ids(OFFICE) == ["m-1", "m-1", "other@mail.example.test"]


def test_smtp_faults(demo: DemoBackOffice) -> None:
    to = f"{OFFICE}@backoffice.test"
    demo.set_fault(OFFICE, "status", status=451, count=1)
    with smtplib.SMTP("127.0.0.1", demo.smtp_port, timeout=5) as smtp:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as info:
            smtp.send_message(_mail("<f-1@formcycle-bridge>", to))
        assert info.value.recipients[to][0] == 451
        smtp.send_message(_mail("<f-1@formcycle-bridge>", to))

    assert len(demo.cases(OFFICE)) == 1


def test_command_line_runs_until_terminated() -> None:
    port, smtp_port = free_port(), free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "demo_backoffice",
            "--port",
            str(port),
            "--smtp-port",
            str(smtp_port),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert "Demo-Zustellpunkt läuft" in banner
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json() == {
            "status": "ok"
        }
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=5) as smtp:
            assert smtp.noop()[0] == 250
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err


def test_an_envelope_off_the_published_contract_is_recorded(demo: DemoBackOffice) -> None:
    """Files in the sender's shape in the data (issue 20's defect) and a key nobody published
    are recorded with where they broke which rule, never with a value; the case is filed."""
    document = envelope_json(envelope())
    document["data"]["attachments"] = [{"filename": "a.pdf", "content_base64": "JVBERi0="}]
    document["office"]["secret_note"] = "Musterfrau"
    answer = post_case(demo, "off-contract", render_json(document))

    assert answer.status_code == 201
    [violation] = RECORDER.take()  # taken here, so the suite's own check does not fail us
    assert (violation.office, violation.delivery_id) == (OFFICE, "off-contract")
    assert (violation.format, violation.schema) == ("json", "dog-registration@1")
    assert violation.problems == (
        "data.attachments.0: missing content_type, sha256, size",
        "data.attachments.0: not published content_base64",
        "office: not published secret_note",
    )
    assert "Musterfrau" not in violation.describe()


def test_an_envelope_naming_no_published_schema_is_recorded(demo: DemoBackOffice) -> None:
    post_case(demo, "v2", render_json(envelope_json(envelope(schema="dog-registration@99"))))

    [violation] = RECORDER.take()
    assert violation.problems == ("service.schema: no published schema 'dog-registration@99'",)


def test_xml_off_the_xsd_is_refused_and_recorded(demo: DemoBackOffice) -> None:
    body = render_xml(build_document(envelope())).replace(
        b"<bc:leika>99102013104000", b"<bc:leika>"
    )
    answer = post_case(demo, "bad-xml", body, content_type="application/xml")

    assert answer.status_code == 400
    assert "bridge-case-1.xsd" in answer.json()["detail"]
    [listed] = requests.get(f"{demo.url}/_violations", timeout=5).json()
    assert (listed["format"], listed["delivery_id"]) == ("xml", "bad-xml")
    [violation] = RECORDER.take()
    assert violation.schema == "bridge-case-1.xsd"
    assert demo.cases() == []
