"""The envelope of a delivery: what every channel sends, built from the database."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from domain.delivery.fetch_links import fetch_url
from domain.intake.filetypes import safe_filename
from domain.payments.payments import counted, payment_view
from domain.settings import Settings
from infra.crypto import Vault
from integrations.channels import Envelope, EnvelopeAttachment
from store.engine import Store
from store.models import Delivery, DeliveryKind, DeliveryStatus, Payment, Submission, utcnow


def build_envelopes(
    settings: Settings, store: Store, vault: Vault, delivery_ids: list[str]
) -> list[Envelope]:
    """Build the envelopes of pending deliveries (decrypting data and attachments)."""
    config = settings.config
    out: list[Envelope] = []
    # Each attempt gets fresh links: they work for this delivery's office only, for a while.
    links_expire = utcnow() + dt.timedelta(hours=settings.fetch_link_hours)
    with store.read() as session:
        deliveries = session.scalars(
            select(Delivery)
            .where(Delivery.id.in_(delivery_ids), Delivery.status == DeliveryStatus.PENDING)
            .options(
                selectinload(Delivery.submission).selectinload(Submission.attachments),
                selectinload(Delivery.submission).selectinload(Submission.payments),
            )
        ).all()
        for d in deliveries:
            s = d.submission
            notice = d.kind == DeliveryKind.PAYMENT_NOTICE
            payment = _payment_of(d, s)
            service = config.services.get(s.service)
            municipality = config.municipality_by_ags(s.municipality_ags)
            office = config.offices.get(d.office_id)
            out.append(
                Envelope(
                    delivery_id=d.id,
                    reference=s.reference,
                    service=s.service,
                    service_title=service.title if service else s.service,
                    leika=service.leika if service else "",
                    schema=s.schema,
                    municipality={
                        "ags": s.municipality_ags,
                        "ars": municipality.ars if municipality else "",
                        "name": municipality.name if municipality else "",
                    },
                    office={
                        "id": d.office_id,
                        "name": office.name if office else d.office_id,
                        "task_area": d.task_area,
                    },
                    received_at=s.received_at,
                    # The cash office gets the payment, not the citizen's application.
                    data=(
                        {"payment": payment}
                        if notice
                        else (vault.decrypt_json(s.data) if s.data is not None else {})
                    ),
                    flags={} if notice else dict(s.flags),
                    attachments=[
                        EnvelopeAttachment(
                            field=a.field,
                            # Rebuilt again: rows stored before issue 23 hold the citizen's name.
                            filename=safe_filename(
                                vault.decrypt(a.filename).decode(), a.content_type
                            ),
                            content_type=a.content_type,
                            size=a.size,
                            sha256=a.sha256,
                            content=vault.decrypt(a.content) if a.content is not None else None,
                            fetch_url=fetch_url(
                                settings.public_url,
                                s.reference,
                                d.id,
                                a.sha256,
                                encryption_keys=settings.encryption_keys,
                                expires_at=links_expire,
                            ),
                        )
                        for a in ([] if notice else s.attachments)
                    ],
                    payment=payment,
                    attempt=d.attempts + 1,
                    kind=d.kind,
                    channel_state=d.fit_state,
                )
            )
    return out


def _payment_of(delivery: Delivery, submission: Submission) -> dict[str, object] | None:
    """The payment an envelope carries: a notice's own payment, or the case's counted attempt."""
    found: Payment | None
    if delivery.payment_id is not None:
        found = next((p for p in submission.payments if p.id == delivery.payment_id), None)
    else:
        found = counted(submission.payments)
    if found is None:
        return None
    view = payment_view(found)
    # Attempts, expiries and our own ids are the bridge's business, not the office's.
    for key in ("id", "created_at", "expires_at", "paid"):
        view.pop(key, None)
    return view
