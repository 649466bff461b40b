"""Idempotency: which id names a submission, and the fingerprint that tells a repeat from a reuse.

The key is the sender's submission id: the service's idempotency field in the body (Formcycle's
process id), else the signature's `webhook-id`, else the `Idempotency-Key` header. It is unique
per (sender, service, key). The fingerprint is a SHA-256 over the shaped input (after aliases
and dotted keys, with each file replaced by its path, name and SHA-256), not over validated
data: a repeat must be recognised even when today's rules would refuse it (docs/adr/0006).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from domain.config import Service
from domain.intake.attachments import File
from domain.intake.validation import invalid_field
from domain.problems import Problem, msg

MAX_KEY_LENGTH = 200


def choose_key(
    service: Service,
    data: dict[str, Any],
    *,
    webhook_id: str | None = None,
    header: str | None = None,
) -> str | None:
    """The submission's idempotency key, if any; the body field is taken out of `data`.

    The body field wins over the headers: it is Formcycle's own process id, the same on every
    resend, whereas a proxy may add headers of its own.
    """
    in_body = data.pop(service.idempotency_field, None)
    for source, value in (
        (service.idempotency_field, in_body),
        ("webhook-id", webhook_id),
        ("Idempotency-Key", header),
    ):
        if isinstance(value, str) and value.strip():
            key = value.strip()
            if len(key) > MAX_KEY_LENGTH:
                raise invalid_field(
                    source, "Die Vorgangskennung ist zu lang.", "The submission id is too long."
                )
            return key
    return None


def _as_text(value: Any) -> Any:
    """Scalars as the text a form would carry, so JSON `true` and form "true" answer alike."""
    # Strings, nearly every value of a form, stay as they are without a call each.
    if isinstance(value, dict):
        return {str(k): v if type(v) is str else _as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [v if type(v) is str else _as_text(v) for v in value]
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def fingerprint(data: Mapping[str, Any], files: Sequence[File]) -> str:
    """The SHA-256 (hex) of what a submission said: its shaped fields and its files' hashes."""
    canonical = {
        "data": _as_text(data),
        "files": sorted([f.path, f.upload.filename, f.sha256] for f in files),
    }
    # ASCII escapes keep any text encodable, and sorted keys make the order of fields irrelevant.
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def conflict() -> Problem:
    """409: the key was already used for a submission with other content; nothing is stored."""
    return Problem(
        409,
        "idempotency-conflict",
        msg(
            "Diese Vorgangskennung wurde bereits für einen anderen Antrag verwendet.",
            "This submission id was already used for a different submission.",
        ),
        msg(
            "Unter dieser Kennung ist ein Antrag mit anderem Inhalt eingegangen; es wurde "
            "nichts gespeichert. Ein neuer Antrag braucht eine neue Kennung.",
            "A submission with different content was received under this id; nothing was "
            "stored. A new submission needs a new id.",
        ),
    )
