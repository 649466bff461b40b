"""Reading what arrives: JSON and XML case documents, case mails, and webhook signatures.

The signature check is written here independently of the bridge's signing code, so the tests
compare two implementations of Standard Webhooks rather than one with itself.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, cast

from lxml import etree

from infra.safexml import XMLError, load_xsd, parse_xml
from integrations.channels.xml import NS, XSD_PATH

TOLERANCE_S = 300
SUBJECT = re.compile(r"^Neuer Antrag (?P<reference>\S+): (?P<service>.+)$")


class DocumentError(ValueError):
    """The document cannot be read as a case (the message is safe to answer with)."""


class SchemaMismatch(DocumentError):
    """A well-formed document that the published schema refuses: the sender broke the contract."""


@dataclass
class Reading:
    """What the back office takes from a document to file it."""

    reference: str
    service: str
    document: Any
    attachments: list[dict[str, Any]] = field(default_factory=list)


def verify_signature(
    secret: str, headers: Mapping[str, str], body: bytes, now: float, tolerance_s: int = TOLERANCE_S
) -> bool:
    """Whether the Standard Webhooks headers carry a valid v1 signature of `body`."""
    msg_id = headers.get("webhook-id") or ""
    timestamp = headers.get("webhook-timestamp") or ""
    signatures = headers.get("webhook-signature") or ""
    if not (msg_id and timestamp.isascii() and timestamp.isdigit() and signatures):
        return False
    if abs(now - int(timestamp)) > tolerance_s:
        return False
    try:
        key = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        return False
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    return any(
        hmac.compare_digest(expected, part[3:].encode())
        for part in signatures.split()
        if part.startswith("v1,")
    )


def read_json(body: bytes) -> Reading:
    """Read a JSON envelope as the http-json channel sends it."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise DocumentError("Der Inhalt ist kein gültiges JSON.") from None
    if not isinstance(document, dict) or not isinstance(document.get("reference"), str):
        raise DocumentError("Das JSON-Dokument hat kein Feld reference.")
    service = document.get("service")
    title = service.get("title") if isinstance(service, dict) else None
    attachments = []
    for a in document.get("attachments") or []:
        if isinstance(a, dict):
            attachments.append(
                {
                    "filename": a.get("filename"),
                    "size": a.get("size"),
                    "sha256": a.get("sha256"),
                    "inline": a.get("content_base64") is not None,
                    "fetch_url": a.get("fetch_url"),
                }
            )
    return Reading(document["reference"], str(title or ""), document, attachments)


@cache
def _case_schema() -> etree.XMLSchema:
    return load_xsd(XSD_PATH)


def read_xml(body: bytes) -> Reading:
    """Read an XML case document (safe parser, then the published XSD)."""
    try:
        root = parse_xml(body)
    except XMLError as exc:
        raise DocumentError(f"Der Inhalt ist kein gültiges XML ({exc}).") from None
    schema = _case_schema()
    if not schema.validate(root):
        entries: list[Any] = list(cast(Any, schema.error_log))
        where = "; ".join(f"{e.path}: {e.type_name}" for e in entries[:3])
        raise SchemaMismatch(f"Das XML-Dokument entspricht nicht bridge-case-1.xsd: {where}")
    ns = {"bc": NS}
    attachments = []
    for a in root.iterfind("bc:attachments/bc:attachment", ns):
        attachments.append(
            {
                "filename": a.findtext("bc:filename", None, ns),
                "size": int(a.findtext("bc:size", "0", ns)),
                "sha256": a.findtext("bc:sha256", None, ns),
                "inline": a.find("bc:content", ns) is not None,
                "fetch_url": a.findtext("bc:fetchUrl", None, ns),
            }
        )
    return Reading(
        reference=root.findtext("bc:metadata/bc:reference", "", ns),
        service=root.findtext("bc:metadata/bc:service/bc:title", "", ns),
        document=body.decode("utf-8"),
        attachments=attachments,
    )


@dataclass
class MailReading:
    """A case mail: its Message-ID, delivery id and what is filed."""

    message_id: str
    delivery_id: str
    reading: Reading


def read_mail(content: bytes) -> MailReading:
    """Read a case mail as the email channel sends it."""
    message = email.message_from_bytes(content, policy=email.policy.default)
    message_id = str(message.get("Message-ID") or "").strip()
    if not message_id:
        raise DocumentError("Die E-Mail hat keine Message-ID.")
    # Keyed by Message-ID (mail systems deduplicate that way): the bridge's ids look like
    # <delivery-id@formcycle-bridge>, so the local part is the delivery id.
    local, _, domain = message_id.strip("<>").partition("@")
    delivery_id = local if domain == "formcycle-bridge" else message_id.strip("<>")
    match = SUBJECT.match(str(message.get("Subject") or ""))
    reference = str(message.get("X-Bridge-Reference") or "") or (
        match.group("reference") if match else ""
    )
    attachments = []
    for part in message.iter_attachments():
        payload = cast(bytes, part.get_payload(decode=True) or b"")
        attachments.append(
            {
                "filename": part.get_filename(),
                "size": len(payload),
                "sha256": hashlib.sha256(payload).hexdigest(),
                "inline": True,
                "fetch_url": None,
            }
        )
    body = message.get_body(("plain",))
    text = body.get_content().replace("\r\n", "\n") if body is not None else ""
    document = {
        "subject": str(message.get("Subject") or ""),
        "message_id": message_id,
        "from": str(message.get("From") or ""),
        "to": str(message.get("To") or ""),
        "schema": str(message.get("X-Bridge-Schema") or ""),
        "text": text,
    }
    reading = Reading(reference, match.group("service") if match else "", document, attachments)
    return MailReading(message_id, delivery_id, reading)
