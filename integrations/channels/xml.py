"""The xml channel: the case as an XFall-like XML document, checked against our XSD, then POSTed."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import decimal
import re
import threading
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, cast

from lxml import etree

from infra.safexml import load_xsd
from integrations.channels.base import (
    Envelope,
    PermanentDeliveryError,
    channels,
    inline,
    iso_utc,
    jsonable,
)
from integrations.channels.webhook import WebhookChannel

NS = "urn:formcycle-bridge:case:1"
XSD_PATH = Path(__file__).resolve().parent / "xsd" / "bridge-case-1.xsd"
# An ASCII NCName that does not start with "xml" (reserved): usable as an element name as is.
XML_NAME = re.compile(r"(?![Xx][Mm][Ll])[A-Za-z_][A-Za-z0-9_.-]{0,127}")
# Characters XML 1.0 cannot carry at all (most C0 controls, lone surrogates, U+FFFE/U+FFFF).
NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
MEDIA_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+\Z")
# lxml schema objects are not documented as thread-safe; validations are quick, so serialise them.
_VALIDATE_LOCK = threading.Lock()


def _q(name: str) -> str:
    return f"{{{NS}}}{name}"


def xml_text(value: str) -> str:
    """`value` with characters XML cannot represent replaced by U+FFFD."""
    return NOT_XML_CHAR.sub("\ufffd", value)


def _sub(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, _q(name))
    if text is not None:
        element.text = xml_text(text)
    return element


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return iso_utc(value) if value.tzinfo is not None else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return str(value)


def add_value(parent: etree._Element, name: str, value: Any) -> etree._Element:
    """Append `value` as an unqualified element: mappings nest, sequences repeat `<item>`."""
    if XML_NAME.fullmatch(name):
        element = etree.SubElement(parent, name)
    else:
        # Field names that are not XML names keep their exact spelling in an attribute.
        element = etree.SubElement(parent, "field")
        element.set("name", xml_text(name))
    if isinstance(value, Mapping):
        for key, child in value.items():
            add_value(element, str(key), child)
    elif isinstance(value, list | tuple | set | frozenset):
        for child in value:
            add_value(element, "item", child)
    elif value is None:
        element.set("nil", "true")
    else:
        element.text = xml_text(_scalar_text(value))
    return element


def _payment(metadata: etree._Element, payment: Mapping[str, Any]) -> None:
    element = _sub(metadata, "payment")
    _sub(element, "status", str(payment.get("status") or "UNKNOWN"))
    amount = payment.get("amount")
    if amount is not None:
        # An unreadable amount is left out rather than sent wrong.
        with contextlib.suppress(decimal.InvalidOperation):
            _sub(element, "amount", str(decimal.Decimal(str(amount))))
    for key, name in (
        ("currency", "currency"),
        ("transaction_id", "transactionId"),
        ("transaction_reference", "transactionReference"),
        ("method", "method"),
    ):
        if payment.get(key):
            _sub(element, name, str(payment[key]))
    paid_at = payment.get("paid_at")
    if isinstance(paid_at, dt.datetime):
        _sub(element, "paidAt", iso_utc(paid_at))


def build_document(envelope: Envelope, inline_limit_bytes: int | None = None) -> etree._Element:
    """The case document (root `bc:case`) for an envelope; see the XSD for its shape."""
    root = etree.Element(_q("case"), nsmap={"bc": NS})
    root.set("version", "1")
    metadata = _sub(root, "metadata")
    _sub(metadata, "reference", envelope.reference)
    _sub(metadata, "deliveryId", envelope.delivery_id)
    _sub(metadata, "receivedAt", iso_utc(envelope.received_at))
    service = _sub(metadata, "service")
    _sub(service, "id", envelope.service)
    _sub(service, "title", envelope.service_title)
    _sub(service, "leika", envelope.leika)
    _sub(service, "schema", envelope.schema)
    municipality = _sub(metadata, "municipality")
    _sub(municipality, "ags", envelope.municipality.get("ags", ""))
    for key in ("ars", "name"):
        if envelope.municipality.get(key):
            _sub(municipality, key, envelope.municipality[key])
    office = _sub(metadata, "office")
    _sub(office, "id", envelope.office.get("id", ""))
    _sub(office, "name", envelope.office.get("name", ""))
    _sub(office, "taskArea", envelope.office.get("task_area", ""))
    if envelope.payment is not None:
        _payment(metadata, envelope.payment)
    flags = _sub(root, "flags")
    for key, value in envelope.flags.items():
        flag = _sub(flags, "flag", _scalar_text(jsonable(value)))
        flag.set("name", xml_text(str(key)))
    data = _sub(root, "data")
    for key, value in envelope.data.items():
        add_value(data, str(key), value)
    attachments = _sub(root, "attachments")
    for a in envelope.attachments:
        element = _sub(attachments, "attachment")
        _sub(element, "field", a.field)
        _sub(element, "filename", a.filename)
        media_type = a.content_type.split(";", 1)[0].strip().lower()
        _sub(
            element,
            "contentType",
            media_type if MEDIA_TYPE.match(media_type) else "application/octet-stream",
        )
        _sub(element, "size", str(a.size))
        _sub(element, "sha256", a.sha256)
        if a.content is not None and inline(a, inline_limit_bytes):
            _sub(element, "content", base64.b64encode(a.content).decode("ascii"))
        if a.fetch_url:
            _sub(element, "fetchUrl", a.fetch_url)
    return root


@cache
def case_schema() -> etree.XMLSchema:
    """The case XSD, loaded once through the safe parser."""
    return load_xsd(XSD_PATH)


def validate(document: etree._Element) -> None:
    """Raise PermanentDeliveryError unless `document` is valid against the case XSD.

    The message names the failing elements by path and libxml2's error type only; the
    validator's own text quotes values, which may be personal data.
    """
    schema = case_schema()
    with _VALIDATE_LOCK:
        valid = schema.validate(document)
        # lxml-stubs do not declare the error log iterable; it is.
        entries: list[Any] = list(cast(Any, schema.error_log))
        errors = [f"{e.path}: {e.type_name}" for e in entries[:3]]
    if not valid:
        raise PermanentDeliveryError(
            "Das XML-Dokument entspricht nicht dem Schema bridge-case-1.xsd: " + "; ".join(errors)
        )


def render_xml(document: etree._Element) -> bytes:
    """Serialise a document as UTF-8 with an XML declaration."""
    return etree.tostring(document, xml_declaration=True, encoding="UTF-8")


@channels.register("xml")
class XmlChannel(WebhookChannel):
    """POST the case as `application/xml` (validated against bridge-case-1.xsd before sending)."""

    content_type = "application/xml; charset=utf-8"

    def render(self, envelope: Envelope) -> bytes:
        """Build and validate the document; an invalid one is a permanent error, never sent."""
        document = build_document(envelope, self.options["inline_limit_bytes"])
        validate(document)
        return render_xml(document)
