"""The xml channel: XFall-like document, XSD validation before sending, delivery to the demo."""

from __future__ import annotations

import datetime as dt
import decimal

import pytest
import requests
from lxml import etree

from demo_backoffice import DemoBackOffice
from infra.safexml import load_xsd, parse_xml
from integrations.channels import DeliveryError, PermanentDeliveryError
from integrations.channels.xml import NS, XSD_PATH, build_document, render_xml, validate

from .capture import Verify, captured_delivery, doc_function
from .conftest import OFFICE, SECRET_ENV, SIGNING_SECRET, ChannelFactory
from .factories import attachment, envelope, free_data

BC = {"bc": NS}


def test_the_xsd_is_a_valid_schema() -> None:
    assert isinstance(load_xsd(XSD_PATH), etree.XMLSchema)


def test_document_of_a_full_envelope_is_valid_and_carries_the_metadata() -> None:
    env = envelope(
        data=free_data(),
        payment={
            "status": "PAYED",
            "amount": decimal.Decimal("35.00"),
            "currency": "EUR",
            "transaction_id": "tx-4711",
            "transaction_reference": "KZ-2026-0815",
            "method": "GIROPAY",
        },
        flags={"dangerous_dog": True},
        attachments=[attachment(), attachment(b"B" * 100, inline_content=False)],
    )
    document = build_document(env)
    validate(document)  # does not raise

    # Round trip through bytes and the safe parser, as a receiver would read it.
    root = parse_xml(render_xml(document))
    assert root.tag == f"{{{NS}}}case"
    assert root.get("version") == "1"
    assert root.findtext("bc:metadata/bc:reference", None, BC) == "US-2026-000123"
    assert root.findtext("bc:metadata/bc:deliveryId", None, BC) == env.delivery_id
    assert root.findtext("bc:metadata/bc:receivedAt", None, BC) == "2026-03-02T09:30:00Z"
    assert root.findtext("bc:metadata/bc:service/bc:leika", None, BC) == "99102013104000"
    assert root.findtext("bc:metadata/bc:municipality/bc:ags", None, BC) == "06434011"
    assert root.findtext("bc:metadata/bc:office/bc:taskArea", None, BC) == "tax"
    assert root.findtext("bc:metadata/bc:payment/bc:status", None, BC) == "PAYED"
    assert root.findtext("bc:metadata/bc:payment/bc:amount", None, BC) == "35.00"
    assert root.find("bc:flags/bc:flag[@name='dangerous_dog']", BC).text == "true"  # type: ignore[union-attr]
    # The data part: element names from field names, list items as repeated <item>.
    assert root.findtext("bc:data/keeper/first_name", None, BC) == "Erika"
    assert root.findtext("bc:data/keeper/address/postal_code", None, BC) == "61250"
    assert [i.text for i in root.iterfind("bc:data/dog/main_breeds/item", BC)] == [
        "Labrador",
        "Pudel",
    ]
    assert root.findtext("bc:data/tax_reduction_requested", None, BC) == "false"
    assert root.find("bc:data/previous_keeper", BC).get("nil") == "true"  # type: ignore[union-attr]
    [inline, linked] = root.iterfind("bc:attachments/bc:attachment", BC)
    assert inline.find("bc:content", BC) is not None
    assert linked.find("bc:content", BC) is None
    assert (
        linked.findtext("bc:fetchUrl", None, BC)
        == "https://bridge.example.test/api/v1/attachments/x"
    )


def test_awkward_field_names_and_values_still_give_a_valid_document() -> None:
    data = {
        "first name": "Erika",  # not an XML name
        "1st": "x",  # starts with a digit
        "xml_field": "reserved prefix",
        "note": "Zeile 1\nZeile 2 \x0b mit Steuerzeichen",
        "when": dt.date(2026, 3, 1),
        "rows": [{"a": 1}, [2, 3], None],
    }
    document = build_document(envelope(data=data))
    validate(document)

    root = parse_xml(render_xml(document))
    fields = {f.get("name"): f.text for f in root.iterfind("bc:data/field", BC)}
    assert fields == {"first name": "Erika", "1st": "x", "xml_field": "reserved prefix"}
    assert root.findtext("bc:data/note", None, BC) == "Zeile 1\nZeile 2 \ufffd mit Steuerzeichen"
    assert root.findtext("bc:data/when", None, BC) == "2026-03-01"
    assert len(root.findall("bc:data/rows/item", BC)) == 3


def test_invalid_document_is_rejected_by_validate_without_quoting_values() -> None:
    document = build_document(envelope(reference="Erika Musterfrau"))
    with pytest.raises(PermanentDeliveryError) as info:
        validate(document)

    assert "reference" in info.value.message
    assert "Musterfrau" not in info.value.message


def test_structurally_broken_document_is_rejected_by_validate() -> None:
    document = build_document(envelope())
    metadata = document.find("bc:metadata", BC)
    assert metadata is not None
    document.remove(metadata)
    with pytest.raises(PermanentDeliveryError):
        validate(document)


def test_invalid_document_is_never_sent(
    backoffice: DemoBackOffice, make_channel: ChannelFactory, http: requests.Session
) -> None:
    channel = make_channel("xml", url=backoffice.case_url(OFFICE), signing_secret_env=SECRET_ENV)
    with pytest.raises(PermanentDeliveryError) as info:
        channel.deliver(envelope(leika=""), http)  # a LeiKa key has 14 digits

    assert "XML" in info.value.message
    assert backoffice.received_ids(OFFICE) == []


def test_delivers_xml_that_the_office_parses_and_validates(
    backoffice: DemoBackOffice, make_channel: ChannelFactory, http: requests.Session
) -> None:
    channel = make_channel("xml", url=backoffice.case_url(OFFICE), signing_secret_env=SECRET_ENV)
    env = envelope(attachments=[attachment(), attachment(b"C" * 2048, filename="plan.pdf")])
    receipt = channel.deliver(env, http)
    again = channel.deliver(env, http)

    assert receipt.status_code == 201
    assert receipt.case_number == "USINGEN-STEUERAMT-1"
    assert again.case_number == receipt.case_number
    [case] = backoffice.cases(OFFICE)
    assert case["format"] == "xml"
    assert case["reference"] == "US-2026-000123"
    assert case["service"] == "Hund anmelden"
    assert case["signature_valid"] is True
    assert case["duplicate_count"] == 1
    assert [a["inline"] for a in case["attachments"]] == [True, True]
    text = backoffice.document(OFFICE, env.delivery_id)
    assert text.startswith("<?xml")
    assert "urn:formcycle-bridge:case:1" in text


def test_inline_limit_applies_to_xml(
    backoffice: DemoBackOffice, make_channel: ChannelFactory, http: requests.Session
) -> None:
    channel = make_channel(
        "xml",
        url=backoffice.case_url(OFFICE),
        signing_secret_env=SECRET_ENV,
        inline_limit_bytes=100,
    )
    channel.deliver(envelope(attachments=[attachment(b"D" * 500)]), http)

    [case] = backoffice.cases(OFFICE)
    [sent] = case["attachments"]
    assert sent["inline"] is False
    assert sent["fetch_url"]


def test_xml_shares_the_status_handling(
    backoffice: DemoBackOffice, make_channel: ChannelFactory, http: requests.Session
) -> None:
    channel = make_channel("xml", url=backoffice.case_url(OFFICE), signing_secret_env=SECRET_ENV)
    backoffice.set_fault(OFFICE, "status", status=503, retry_after=30, count=1)
    with pytest.raises(DeliveryError) as transient:
        channel.deliver(envelope(), http)
    backoffice.set_fault(OFFICE, "status", status=404, count=1)
    with pytest.raises(PermanentDeliveryError):
        channel.deliver(envelope(), http)

    assert not isinstance(transient.value, PermanentDeliveryError)
    assert transient.value.retry_after == 30.0


def test_the_contract_snippet_verifies_an_xml_delivery(
    make_channel: ChannelFactory, http: requests.Session
) -> None:
    """An office following docs/contract.md accepts our XML body and refuses a changed one."""
    headers, body = captured_delivery(
        lambda url: make_channel("xml", url=url, signing_secret_env=SECRET_ENV), http
    )
    verify: Verify = doc_function("contract.md", "import base64, hashlib, hmac, time", "verify")

    assert body.startswith(b"<?xml")
    assert headers["webhook-id"] == headers["idempotency-key"]
    assert verify(SIGNING_SECRET, headers, body) is True
    assert verify(SIGNING_SECRET, headers, body.replace(b"US-", b"NA-")) is False
    assert verify("whsec_" + "A" * 44, headers, body) is False
