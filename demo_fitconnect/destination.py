"""The simulated destination (subscriber): fetch, decrypt, check, then accept or reject.

It does what docs.fitko.de (receiving/verification) asks of a receiver: decrypt metadata, data
and every attachment with its private key, check the metadata against the submission (service,
announced attachments, the data schema it supports), compare the SHA-512 hashes, and post an
`accept-submission` SET with the authentication tags or a `reject-submission` SET with
problems from the catalogue, signed PS512 with its own signing key (iss = its destination id).
It reads the submission from the stand-in's state rather than over HTTP: the subscriber side of
the Submission API is not what the bridge talks to.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from demo_fitconnect.crypto import authentication_tag, decrypt, make_set, protected_header
from demo_fitconnect.state import Destination, Received, State, Submission, problem


def _hash_of(entry: Any) -> str | None:
    """The hex SHA-512 a metadata `hash` object names, or None when it is not one."""
    if isinstance(entry, dict) and entry.get("type") == "sha512":
        content = entry.get("content")
        if isinstance(content, str):
            return content.lower()
    return None


def _metadata(
    dest: Destination, sub: Submission, received: Received
) -> tuple[dict[str, Any], list[dict[str, Any]]] | list[dict[str, str]]:
    """Decrypt and check the metadata: (data entry, attachment entries), or the problems."""
    try:
        metadata = json.loads(decrypt(sub.encrypted_metadata or "", dest.decrypt_keys))
    except ValueError as exc:
        if isinstance(exc, json.JSONDecodeError):
            return [problem("syntax-violation", "Die Metadaten sind kein gültiges JSON.")]
        return [problem("encryption-issue", "Die Metadaten konnten nicht entschlüsselt werden.")]
    if not isinstance(metadata, dict) or not isinstance(metadata.get("contentStructure"), dict):
        return [problem("schema-violation", "contentStructure fehlt.")]
    received.metadata = metadata
    structure = metadata["contentStructure"]
    data_entry = structure.get("data")
    listed = structure.get("attachments", [])
    if not isinstance(data_entry, dict) or _hash_of(data_entry.get("hash")) is None:
        return [problem("schema-violation", "contentStructure.data.hash fehlt.")]
    if not isinstance(listed, list) or not all(isinstance(a, dict) for a in listed):
        return [problem("schema-violation", "contentStructure.attachments ist keine Liste.")]
    schema = data_entry.get("submissionSchema")
    schema_uri = schema.get("schemaUri") if isinstance(schema, dict) else None
    leika = str(sub.public_service.get("identifier", "")).rpartition(":")[2]
    if leika not in dest.leika_keys or schema_uri not in dest.schemas_for(leika):
        return [problem("unsupported-schema", f"Das Schema {schema_uri!r} wird nicht unterstützt.")]
    service = metadata.get("publicServiceType")
    identifier = service.get("identifier") if isinstance(service, dict) else None
    if identifier != sub.public_service.get("identifier"):
        return [problem("service-mismatch", "Die Leistung passt nicht zur Einreichung.")]
    if sorted(str(a.get("attachmentId")) for a in listed) != sorted(sub.announced):
        return [problem("attachments-mismatch", "Die Anlagen passen nicht zu den angekündigten.")]
    return data_entry, listed


def _content(
    dest: Destination,
    sub: Submission,
    received: Received,
    data_entry: dict[str, Any],
    listed: list[dict[str, Any]],
) -> list[dict[str, str]]:
    """Decrypt data and attachments and compare their SHA-512 with the metadata's."""
    try:
        data = decrypt(sub.encrypted_data or "", dest.decrypt_keys)
    except ValueError:
        return [
            problem("encryption-issue", "Die Fachdaten konnten nicht entschlüsselt werden.", "data")
        ]
    received.data = data
    problems: list[dict[str, str]] = []
    if hashlib.sha512(data).hexdigest() != _hash_of(data_entry.get("hash")):
        problems.append(
            problem("hash-mismatch", "Die Prüfsumme der Fachdaten stimmt nicht.", "data")
        )
    for entry in listed:
        aid = str(entry.get("attachmentId"))
        instance = f"attachment:{aid}"
        try:
            content = decrypt(sub.attachments[aid], dest.decrypt_keys)
        except ValueError:
            problems.append(
                problem(
                    "encryption-issue", "Die Anlage konnte nicht entschlüsselt werden.", instance
                )
            )
            continue
        received.attachments[aid] = content
        if hashlib.sha512(content).hexdigest() != _hash_of(entry.get("hash")):
            problems.append(
                problem("hash-mismatch", "Die Prüfsumme der Anlage stimmt nicht.", instance)
            )
    return problems


def _check(dest: Destination, sub: Submission, received: Received) -> list[dict[str, str]]:
    """Decrypt and verify; fills `received` and returns the problems found (empty: fine)."""
    checked = _metadata(dest, sub, received)
    if isinstance(checked, list):
        return checked
    return _content(dest, sub, received, *checked)


def process(state: State, submission_id: str) -> Received:
    """Handle a submitted submission as its destination; appends the decision's SET."""
    with state.lock:
        sub = state.submissions[submission_id]
        dest = state.destinations[sub.destination_id]
    received = Received(
        destination_id=dest.destination_id,
        submission_id=sub.submission_id,
        case_id=sub.case_id,
        metadata=None,
        data=None,
        attachments={},
        hashes_ok=False,
        decision="reject",
        problems=[],
        kid=str((protected_header(sub.encrypted_metadata or "") or {}).get("kid", "")),
    )
    problems = _check(dest, sub, received)
    received.hashes_ok = not problems and received.data is not None
    if not problems:
        forced = state.take_forced_reject(dest.destination_id)
        if forced is not None:
            problems = [forced]
    body: dict[str, Any]
    if problems:
        event, body = "reject-submission", {"problems": problems}
    else:
        tags: dict[str, Any] = {
            "metadata": authentication_tag(sub.encrypted_metadata or ""),
            "data": authentication_tag(sub.encrypted_data or ""),
        }
        if sub.attachments:
            tags["attachments"] = {aid: authentication_tag(t) for aid, t in sub.attachments.items()}
        event, body = "accept-submission", {"authenticationTags": tags}
    token = make_set(dest.signing, dest.destination_id, event, sub.submission_id, sub.case_id, body)
    received.decision = "accept" if event == "accept-submission" else "reject"
    received.problems = problems
    with state.lock:
        sub.status = "accepted" if received.decision == "accept" else "rejected"
        state.received.append(received)
    state.append_event(sub.case_id, token)
    return received
