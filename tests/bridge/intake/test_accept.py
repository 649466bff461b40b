"""Accepted webhook calls: urlencoded, multipart and JSON bodies get 202, a reference, and one stored case."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from infra.crypto import Vault
from integrations.channels import envelope_json
from integrations.channels.email import build_message
from integrations.channels.envelopes import build_envelopes
from integrations.channels.xml import NS, build_document
from store.engine import Store
from store.models import Attachment, Delivery, Event, Submission
from tests.conftest import snapshot
from tests.factories import PDF, PNG, as_json, dog, flatten, today, traffic
from tests.schemas.agreement import schema_validator
from tests.schemas.samples import DELETE
from tests.webhook_support import (
    FORM,
    JSON,
    REFERENCE,
    FilePart,
    form_body,
    multipart_body,
    post,
    secret_headers,
    signature_headers,
)

DOG = "dog-registration"
TRAFFIC = "traffic-order"


def _stored(store: Store, reference: str) -> Submission:
    """The one stored submission with this reference, with deliveries, attachments and events."""
    number = int(reference.rsplit("-", 1)[1])
    with store.read() as session:
        submission = session.scalars(select(Submission).where(Submission.id == number)).one()
        _ = (submission.deliveries, submission.attachments, submission.events)
        return submission


def _count(store: Store, model: type[Any]) -> int:
    with store.read() as session:
        return len(session.scalars(select(model)).all())


def _vault(app: Flask) -> Vault:
    vault: Vault = app.extensions["bridge"].vault
    return vault


def _accepted(response: TestResponse) -> dict[str, Any]:
    """Check the 202 answer of the contract and return its body."""
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert isinstance(body, dict)
    assert re.match(REFERENCE, body["reference"])
    assert response.headers["Location"] == f"/api/v1/submissions/{body['reference']}"
    assert body["links"]["status"] == response.headers["Location"]
    assert "Idempotent-Replayed" not in response.headers
    return body


def test_dog_registration_urlencoded(client: FlaskClient, store: Store, app: Flask) -> None:
    """A form post from Neu-Anspach goes to the joint tax office in Usingen and is stored encrypted."""
    response = post(client, DOG, form_body(dog()), FORM)
    body = _accepted(response)
    year = dt.datetime.now(dt.UTC).year
    assert body["reference"].startswith("NA-")
    assert int(body["reference"].split("-")[1]) in (year, year + 1)  # local year at New Year
    assert body["status"] == "routed"
    assert body["service"] == DOG
    assert body["municipality"] == {"name": "Neu-Anspach", "ags": "06434007"}
    assert [(d["office"], d["task_area"], d["status"]) for d in body["deliveries"]] == [
        ("usingen-steueramt", "tax", "pending")
    ]
    assert body["deliveries"][0]["office_name"] == "Steueramt Usingen"
    submission = _stored(store, body["reference"])
    assert submission.reference == body["reference"]
    assert submission.municipality_ags == "06434007"
    assert [d.id for d in submission.deliveries] == [d["id"] for d in body["deliveries"]]
    assert [e.kind for e in submission.events] == ["submission.received", "delivery.routed"]
    assert submission.data is not None
    data = _vault(app).decrypt_json(submission.data)
    assert data["keeper"]["first_name"] == "Erika"
    assert data["dog"]["microchip_number"] == "276098100123456"
    assert data["keeper"]["address"]["postal_code"] == "61267"
    assert _count(store, Submission) == 1


def test_traffic_order_multipart_with_site_plan(
    client: FlaskClient, store: Store, app: Flask
) -> None:
    """A construction site in Usingen with a PDF site plan goes to the public-order office."""
    plan = PDF + b"% Lageplan Bahnhofstrasse\n"
    body_bytes, content_type = multipart_body(
        flatten(traffic(reason="construction")),
        [FilePart("site_plan", "Lageplan.pdf", "application/pdf", plan)],
    )
    body = _accepted(post(client, TRAFFIC, body_bytes, content_type))
    assert body["reference"].startswith("US-")
    assert body["municipality"] == {"name": "Usingen", "ags": "06434011"}
    assert [d["office"] for d in body["deliveries"]] == ["neu-anspach-ordnungsamt"]
    submission = _stored(store, body["reference"])
    [attachment] = submission.attachments
    assert attachment.field == "site_plan"
    assert attachment.content_type == "application/pdf"
    assert attachment.size == len(plan)
    assert attachment.sha256 == hashlib.sha256(plan).hexdigest()
    assert attachment.content is not None
    assert _vault(app).decrypt(attachment.content) == plan
    assert _vault(app).decrypt(attachment.filename) == b"Lageplan.pdf"
    assert submission.data is not None
    data = _vault(app).decrypt_json(submission.data)
    assert data["site_plan"]["sha256"] == attachment.sha256
    assert data["construction"]["closure_type"] == "footpath"


def test_json_variant_with_base64_attachment(client: FlaskClient, store: Store, app: Flask) -> None:
    """The JSON body, with an attachment as base64, is accepted like the form post."""
    payload = dog(
        attachments=[
            {
                "filename": "impfpass.png",
                "content_type": "image/png",
                "content_base64": base64.b64encode(PNG).decode(),
            }
        ]
    )
    body = _accepted(post(client, DOG, as_json(payload), JSON))
    assert body["municipality"]["ags"] == "06434007"
    submission = _stored(store, body["reference"])
    [attachment] = submission.attachments
    assert (attachment.field, attachment.content_type, attachment.size) == (
        "attachments.0",
        "image/png",
        len(PNG),
    )
    assert submission.data is not None
    data = _vault(app).decrypt_json(submission.data)
    assert data["attachments"] == [
        {
            "filename": "impfpass.png",
            "content_type": "image/png",
            "size": len(PNG),
            "sha256": hashlib.sha256(PNG).hexdigest(),
        }
    ]


def test_json_traffic_order_with_site_plan(client: FlaskClient, store: Store) -> None:
    """The JSON variant of a construction site carries its site plan inline."""
    payload = traffic(
        {
            "site_plan": {
                "filename": "plan.pdf",
                "content_type": "application/pdf",
                "content_base64": base64.b64encode(PDF).decode(),
            }
        },
        reason="construction",
    )
    body = _accepted(post(client, TRAFFIC, as_json(payload), JSON))
    [attachment] = _stored(store, body["reference"]).attachments
    assert attachment.field == "site_plan"
    assert attachment.sha256 == hashlib.sha256(PDF).hexdigest()


def test_published_schema_describes_the_files_the_webhook_takes(
    client: FlaskClient, store: Store
) -> None:
    """A JSON body written from /schemas/<service> with its files is accepted as it stands;
    the metadata shape the schema published before (size, sha256) is refused by both."""
    published = schema_validator(client.get("/schemas/traffic-order").get_json())
    plan = {
        "filename": "plan.pdf",
        "content_type": "application/pdf",
        "content_base64": base64.b64encode(PDF).decode(),
    }
    payload = traffic({"site_plan": plan}, reason="construction")
    published.validate(payload)
    body = _accepted(post(client, TRAFFIC, as_json(payload), JSON))
    [attachment] = _stored(store, body["reference"]).attachments
    assert (attachment.field, attachment.size) == ("site_plan", len(PDF))

    details = {
        "filename": "plan.pdf",
        "content_type": "application/pdf",
        "size": len(PDF),
        "sha256": hashlib.sha256(PDF).hexdigest(),
    }
    refused = traffic({"site_plan": details}, reason="construction")
    assert not published.is_valid(refused)
    before = snapshot(store)
    response = post(client, TRAFFIC, as_json(refused), JSON)
    assert response.status_code == 422
    assert snapshot(store) == before


def test_dangerous_dog_goes_to_two_offices(client: FlaskClient, store: Store) -> None:
    """A Rottweiler also needs a keeping permit: tax office and public-order office."""
    body = _accepted(post(client, DOG, form_body(dog({"dog.breed": "Rottweiler"})), FORM))
    assert sorted(d["office"] for d in body["deliveries"]) == [
        "neu-anspach-ordnungsamt",
        "usingen-steueramt",
    ]
    submission = _stored(store, body["reference"])
    assert submission.flags["dangerous_dog"] is True
    assert _count(store, Delivery) == 2
    assert [e.kind for e in submission.events].count("delivery.routed") == 2


def test_formcycle_aliases_and_german_dates(client: FlaskClient, store: Store, app: Flask) -> None:
    """Formcycle element names map to schema fields; German dates and choices are understood."""
    payload = dog(
        {
            "keeper.first_name": DELETE,
            "keeper.last_name": DELETE,
            "dog.name": DELETE,
            "dog.microchip_number": DELETE,
            "dog.sex": "Hündin",
            "dog.acquisition_date": (today() - dt.timedelta(days=30)).strftime("%d.%m.%Y"),
        }
    )
    extra = [
        ("tfVorname", "Erika"),
        ("tfNachname", "Musterfrau"),
        ("tfHundename", "Luna"),
        ("tfChipnummer", "276 098 100 123 456"),
    ]
    body = _accepted(post(client, DOG, form_body(payload, extra), FORM))
    submission = _stored(store, body["reference"])
    assert submission.data is not None
    data = _vault(app).decrypt_json(submission.data)
    assert data["keeper"]["first_name"] == "Erika"
    assert data["dog"]["name"] == "Luna"
    assert data["dog"]["sex"] == "female"
    assert data["dog"]["microchip_number"] == "276098100123456"
    assert data["dog"]["acquisition_date"] == (today() - dt.timedelta(days=30)).isoformat()


def test_repeated_form_keys_are_a_list(client: FlaskClient, store: Store, app: Flask) -> None:
    """A mixed breed's main breeds arrive as a repeated form key and are stored as a list."""
    payload = dog({"dog.is_mixed_breed": True, "dog.breed": DELETE})
    extra = [("dog.main_breeds", "Labrador Retriever"), ("dog.main_breeds", "Pudel")]
    body = _accepted(post(client, DOG, form_body(payload, extra), FORM))
    submission = _stored(store, body["reference"])
    assert submission.data is not None
    data = _vault(app).decrypt_json(submission.data)
    assert data["dog"]["main_breeds"] == ["Labrador Retriever", "Pudel"]


def test_empty_form_fields_are_not_answers(client: FlaskClient) -> None:
    """Formcycle posts hidden optional elements empty; they are treated as not filled in."""
    extra = [("previous_keeper.name", ""), ("tax_relief.reason", ""), ("municipality_ags", "")]
    payload = dog(previous_keeper=DELETE)
    _accepted(post(client, DOG, form_body(payload, extra), FORM))


def test_html_confirmation_for_the_citizen(client: FlaskClient, store: Store) -> None:
    """With Accept: text/html the answer is a short German page carrying the reference."""
    headers = {**secret_headers(), "Accept": "text/html"}
    response = post(client, DOG, form_body(dog()), FORM, headers)
    assert response.status_code == 202
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    location = response.headers["Location"]
    reference = location.rsplit("/", 1)[1]
    assert re.match(REFERENCE, reference)
    assert '<html lang="de">' in page
    assert f'<strong id="reference">{reference}</strong>' in page
    assert "Vielen Dank, Ihr Antrag ist eingegangen." in page
    assert "„Hund anmelden“" in page
    assert _count(store, Submission) == 1


def test_browser_accept_header_gets_html(client: FlaskClient) -> None:
    """A browser-style Accept header (HTML first, anything else later) also gets the page."""
    headers = {
        **secret_headers(),
        "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    }
    response = post(client, DOG, form_body(dog()), FORM, headers)
    assert response.status_code == 202
    assert response.mimetype == "text/html"


def test_json_preferred_gets_json(client: FlaskClient) -> None:
    """A caller preferring JSON over HTML gets the JSON answer."""
    headers = {**secret_headers(), "Accept": "application/json, text/html;q=0.5"}
    _accepted(post(client, DOG, form_body(dog()), FORM, headers))


def test_english_caller_gets_the_same_answer(client: FlaskClient) -> None:
    """Accept-Language does not change a successful answer's content."""
    headers = {**secret_headers(), "Accept-Language": "en"}
    body = _accepted(post(client, DOG, form_body(dog()), FORM, headers))
    assert body["municipality"]["name"] == "Neu-Anspach"


def test_valid_standard_webhooks_signature(client: FlaskClient, store: Store) -> None:
    """A signed request (no shared secret) is accepted."""
    body_bytes = form_body(dog())
    response = post(client, DOG, body_bytes, FORM, signature_headers(body_bytes, "msg_valid_1"))
    body = _accepted(response)
    assert _stored(store, body["reference"]).idempotency_key == "msg_valid_1"


def test_signature_among_several_and_within_tolerance(client: FlaskClient) -> None:
    """One valid v1 signature among others, 4 minutes old, is accepted (rotation of secrets)."""
    body_bytes = form_body(dog())
    headers = signature_headers(
        body_bytes, "msg_rotated", timestamp=int(dt.datetime.now(dt.UTC).timestamp()) - 240
    )
    headers["webhook-signature"] = "v1,bm90LXRoZS1yaWdodC1vbmU= " + headers["webhook-signature"]
    _accepted(post(client, DOG, body_bytes, FORM, headers))


def test_distinct_submissions_get_distinct_references(client: FlaskClient, store: Store) -> None:
    """Three submissions, three references, numbered upwards."""
    references = [
        _accepted(post(client, DOG, form_body(dog()), FORM))["reference"] for _ in range(3)
    ]
    numbers = [int(r.rsplit("-", 1)[1]) for r in references]
    assert numbers == sorted(set(numbers))
    assert _count(store, Submission) == 3
    assert _count(store, Event) == 6
    assert _count(store, Attachment) == 0


def test_multipart_attachment_list(client: FlaskClient, store: Store, app: Flask) -> None:
    """File parts for a list field become a list, one entry per file, also for a single file."""
    body_bytes, content_type = multipart_body(
        flatten(dog()),
        [
            FilePart("attachments", "kaufvertrag.pdf", "application/pdf", PDF),
            FilePart("attachments", "foto.png", "image/png", PNG),
        ],
    )
    body = _accepted(post(client, DOG, body_bytes, content_type))
    submission = _stored(store, body["reference"])
    assert [(a.field, a.content_type) for a in submission.attachments] == [
        ("attachments.0", "application/pdf"),
        ("attachments.1", "image/png"),
    ]
    assert submission.data is not None
    data = _vault(app).decrypt_json(submission.data)
    assert [a["filename"] for a in data["attachments"]] == ["kaufvertrag.pdf", "foto.png"]
    single, single_type = multipart_body(
        flatten(dog()), [FilePart("attachments", "vertrag.pdf", "application/pdf", PDF)]
    )
    body = _accepted(post(client, DOG, single, single_type))
    [attachment] = _stored(store, body["reference"]).attachments
    assert attachment.field == "attachments.0"


def test_json_attachment_list_of_two(client: FlaskClient, store: Store) -> None:
    """Two base64 attachments in a JSON list are both stored, in order."""
    files = [("a.pdf", "application/pdf", PDF), ("b.png", "image/png", PNG)]
    payload = dog(
        attachments=[
            {"filename": n, "content_type": t, "content_base64": base64.b64encode(c).decode()}
            for n, t, c in files
        ]
    )
    body = _accepted(post(client, DOG, as_json(payload), JSON))
    stored = _stored(store, body["reference"]).attachments
    assert [(a.field, a.sha256) for a in stored] == [
        ("attachments.0", hashlib.sha256(PDF).hexdigest()),
        ("attachments.1", hashlib.sha256(PNG).hexdigest()),
    ]


def test_blank_or_padded_municipality_keys_are_read_like_the_schema(
    client: FlaskClient, store: Store
) -> None:
    """In a form, a blank AGS means "not chosen"; padded AGS and postal codes are trimmed."""
    blank = post(client, DOG, form_body(dog(municipality_ags="")), FORM)
    assert _accepted(blank)["municipality"]["ags"] == "06434007"
    # JSON is typed as the published schema says: an empty string is not an AGS.
    before = snapshot(store)
    refused = post(client, DOG, as_json(dog(municipality_ags="")), JSON)
    assert refused.status_code == 422
    assert [e["field"] for e in refused.get_json()["errors"]] == ["municipality_ags"]
    assert snapshot(store) == before
    padded = post(client, DOG, form_body(dog(municipality_ags=" 06434011 ")), FORM)
    assert _accepted(padded)["municipality"]["name"] == "Usingen"
    postal = post(client, DOG, form_body(dog({"keeper.address.postal_code": " 61267 "})), FORM)
    assert _accepted(postal)["municipality"]["name"] == "Neu-Anspach"


def test_secret_and_signature_together(client: FlaskClient, store: Store) -> None:
    """A request carrying both credentials, both right, is accepted (the signature's id is the key)."""
    body_bytes = form_body(dog())
    headers = {**secret_headers(), **signature_headers(body_bytes, "msg_both_right")}
    body = _accepted(post(client, DOG, body_bytes, FORM, headers))
    assert _stored(store, body["reference"]).idempotency_key == "msg_both_right"


def test_dotted_key_at_the_nesting_limit(client: FlaskClient) -> None:
    """A dotted key of 31 segments nests exactly 32 levels deep with its value: accepted."""
    _accepted(post(client, DOG, form_body(dog(), [(".".join(["a"] * 31), "x")]), FORM))


# Issue 23: the citizen's names, with the content's real type (a PDF, a PNG) behind them.
RENAMED_FILES = [
    ("Kaufvertrag.html", "application/pdf", PDF, "Kaufvertrag.pdf"),
    ("Rechnung\u202efdp.exe", "image/png", PNG, "Rechnungfdp.png"),
]


def _files_body(kind: str) -> tuple[bytes, str]:
    """A dog registration with RENAMED_FILES as multipart file parts or as JSON base64 objects."""
    if kind == "multipart":
        parts = [
            FilePart("attachments", n, "application/octet-stream", c)
            for n, _, c, _ in RENAMED_FILES
        ]
        return multipart_body(flatten(dog()), parts)
    files = [
        {"filename": n, "content_base64": base64.b64encode(c).decode()}
        for n, _, c, _ in RENAMED_FILES
    ]
    return as_json(dog(attachments=files)), JSON


@pytest.mark.parametrize("kind", ["multipart", "json"])
def test_file_names_are_rebuilt_from_the_content_type(
    client: FlaskClient, store: Store, app: Flask, kind: str
) -> None:
    """A PDF named `.html` is stored and delivered as `.pdf`, a name's RLO is dropped: in the
    row, the data, and what the JSON, XML and e-mail channels send."""
    body_bytes, content_type = _files_body(kind)
    body = _accepted(post(client, DOG, body_bytes, content_type))
    expected = [(name, media_type) for _, media_type, _, name in RENAMED_FILES]
    submission = _stored(store, body["reference"])
    vault = _vault(app)
    stored = [(vault.decrypt(a.filename).decode(), a.content_type) for a in submission.attachments]
    assert stored == expected
    assert submission.data is not None
    data = vault.decrypt_json(submission.data)
    assert [(a["filename"], a["content_type"]) for a in data["attachments"]] == expected
    bridge = app.extensions["bridge"]
    [delivery] = body["deliveries"]
    [envelope] = build_envelopes(bridge.settings, bridge.store, bridge.vault, [delivery["id"]])
    as_json_case = envelope_json(envelope)
    assert [(a["filename"], a["content_type"]) for a in as_json_case["attachments"]] == expected
    sent_data = as_json_case["data"]["attachments"]
    assert [(a["filename"], a["content_type"]) for a in sent_data] == expected
    document = build_document(envelope)
    in_xml = [
        (a.findtext(f"{{{NS}}}filename"), a.findtext(f"{{{NS}}}contentType"))
        for a in document.iter(f"{{{NS}}}attachment")
    ]
    assert in_xml == expected
    mail = build_message(envelope, "bruecke@example.org", "amt@example.org")
    mailed = [(p.get_filename(), p.get_content_type()) for p in mail.iter_attachments()]
    assert mailed == expected
    assert "\u202e" not in mail.as_string()


def test_names_stored_before_the_rebuild_are_rebuilt_when_delivered(
    client: FlaskClient, store: Store, app: Flask
) -> None:
    """A case stored with the citizen's own name (before issue 23) goes out under a rebuilt one."""
    body_bytes, content_type = multipart_body(
        flatten(dog()), [FilePart("attachments", "Kaufvertrag.pdf", "application/pdf", PDF)]
    )
    body = _accepted(post(client, DOG, body_bytes, content_type))
    vault = _vault(app)
    with store.session() as session:
        [row] = session.scalars(select(Attachment)).all()
        row.filename = vault.encrypt("Kauf\u202evertrag.html".encode())
    bridge = app.extensions["bridge"]
    [delivery] = body["deliveries"]
    [envelope] = build_envelopes(bridge.settings, bridge.store, bridge.vault, [delivery["id"]])
    assert [a.filename for a in envelope.attachments] == ["Kaufvertrag.pdf"]
