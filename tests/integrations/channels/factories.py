"""Builders for envelopes with fake, non-real person data."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from typing import Any

from integrations.channels import Envelope, EnvelopeAttachment
from schemas import SCHEMAS
from tests.schemas.samples import SAMPLE_OPTIONS, dog_registration_payload

PDF = b"%PDF-1.4\n% Kaufvertrag (Testdokument)\n%%EOF\n"


def attachment(
    content: bytes = PDF,
    *,
    filename: str = "kaufvertrag.pdf",
    content_type: str = "application/pdf",
    field: str = "proof_of_purchase",
    inline_content: bool = True,
    fetch_url: str | None = "https://bridge.example.test/api/v1/attachments/x",
) -> EnvelopeAttachment:
    """An attachment; `inline_content=False` models one stored only by hash and link."""
    return EnvelopeAttachment(
        field=field,
        filename=filename,
        content_type=content_type,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        content=content if inline_content else None,
        fetch_url=fetch_url,
    )


def dog_data() -> dict[str, Any]:
    """Validated data of a dog registration from Usingen, as a delivery carries it (invented)."""
    payload = dog_registration_payload(
        {"keeper.address.postal_code": "61250", "keeper.address.town": "Usingen"}
    )
    return SCHEMAS.get("dog-registration@1").validate(payload, SAMPLE_OPTIONS).data


def free_data() -> dict[str, Any]:
    """Data of any shape (lists, null, a key no schema has), for how XML maps values."""
    return {
        "keeper": {
            "first_name": "Erika",
            "last_name": "Musterfrau",
            "birth_date": "1980-04-01",
            "address": {
                "street": "Teststraße",
                "house_number": "1a",
                "postal_code": "61250",
                "town": "Usingen",
            },
            "email": "erika.musterfrau@example.test",
        },
        "dog": {
            "name": "Bello",
            "breed": "Mischling",
            "main_breeds": ["Labrador", "Pudel"],
            "sex": "male",
            "microchip_number": "276098100000001",
            "acquired_on": "2026-02-15",
        },
        "dogs_in_household": 1,
        "tax_reduction_requested": False,
        "previous_keeper": None,
        "privacy_consent": True,
    }


def envelope(**overrides: Any) -> Envelope:
    """A dog registration from Usingen for the joint tax office; keywords replace fields."""
    values: dict[str, Any] = {
        "delivery_id": str(uuid.uuid4()),
        "reference": "US-2026-000123",
        "service": "dog-registration",
        "service_title": "Hund anmelden",
        "leika": "99102013104000",
        "schema": "dog-registration@1",
        "municipality": {"ags": "06434011", "ars": "064340011011", "name": "Usingen"},
        "office": {"id": "usingen-steueramt", "name": "Steueramt Usingen", "task_area": "tax"},
        "received_at": dt.datetime(2026, 3, 2, 9, 30, 0, tzinfo=dt.UTC),
        "data": dog_data(),
        "flags": {"dangerous_dog": False},
        "attachments": [attachment()],
        "payment": None,
        "attempt": 1,
    }
    values.update(overrides)
    return Envelope(**values)
