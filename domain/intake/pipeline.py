"""Intake: turn one posted form into a validated, routed, durably stored submission.

The steps live in their own modules beside this one: shaping the form (`forms`), the
idempotency key and fingerprint (`idempotency`), attachment screening (`attachments`), the
municipality (`municipalities`) and the one-transaction insert (`submissions`). This module
runs them in order and decides what a repeat gets.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import SQLAlchemyError as StoreError

from domain.config import Municipality, Sender, Service
from domain.intake import attachments, forms, idempotency, municipalities
from domain.intake.forms import RawSubmission
from domain.intake.limits import BodyLimits
from domain.intake.submissions import (
    find_existing,
    insert_submission,
    new_submission,
    store_unavailable,
)
from domain.intake.validation import field_errors, problem_422
from domain.payments import payments
from domain.problems import FieldError, Problem, msg
from domain.settings import Settings
from infra.crypto import Vault
from infra.logs import log_event
from schemas import SCHEMAS, Validated, ValidationOptions
from schemas.options import LOCAL_TZ
from store.engine import Store
from store.models import Submission, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IntakeResult:
    """The stored submission and whether this call created it (False for a repeat)."""

    submission: Submission
    created: bool


def validation_options(
    service: Service, now: dt.datetime, *, form_input: bool
) -> ValidationOptions:
    """The options of one validation call: the service's rules, the instant `now`, and whether
    the body was a form (strings converted by the schema's types) or JSON (typed as published)."""
    return ValidationOptions(
        now=now,
        lead_hours=service.lead_hours,
        min_zone_m=service.min_zone_m,
        max_zone_m=service.max_zone_m,
        unknown="reject" if service.unknown_fields == "reject" else "ignore",
        form_input=form_input,
    )


class Intake:
    """Validates, routes and stores submissions for one configuration and store."""

    def __init__(self, settings: Settings, store: Store, vault: Vault) -> None:
        """Bind the intake to the settings, the store and the encryption keys."""
        self.config = settings.config
        self.limits = BodyLimits.from_settings(settings)
        self.store = store
        self.vault = vault

    def submit(
        self,
        service: Service,
        sender: Sender,
        raw: RawSubmission,
        *,
        webhook_id: str | None = None,
        idempotency_header: str | None = None,
        now: dt.datetime | None = None,
    ) -> IntakeResult:
        """Validate and store one submission, or raise a Problem.

        A repeat (same sender, service and key) with the same content gets the original; with
        other content it is a 409 and nothing is stored.
        """
        now = now or utcnow()
        data = forms.shape(service, raw, self.limits)
        key = idempotency.choose_key(
            service, data, webhook_id=webhook_id, header=idempotency_header
        )
        files = attachments.collect(service, data, raw.uploads)
        fingerprint = idempotency.fingerprint(data, files)
        adoption, adoption_errors = payments.take_adoption(service, data, self.config)
        try:
            if adoption_errors:
                raise problem_422(adoption_errors)
            return self._accept(
                service,
                sender,
                data,
                files,
                key,
                fingerprint,
                now,
                form_input=raw.from_form,
                adoption=adoption,
            )
        except Problem as problem:
            # A repeat gets the original answer even when today's rules or limits would refuse
            # it (e.g. a lead time that has run out since); only the error path pays the look-up.
            if key is not None and problem.status in (413, 422):
                existing = find_existing(self.store, sender, service, key)
                if existing is not None:
                    return _repeat(existing, fingerprint)
            raise

    def _accept(
        self,
        service: Service,
        sender: Sender,
        data: dict[str, Any],
        files: Sequence[attachments.File],
        key: str | None,
        fingerprint: str,
        now: dt.datetime,
        *,
        form_input: bool,
        adoption: payments.Adoption | None = None,
    ) -> IntakeResult:
        """Screen, validate, route and insert; a used key is caught by the unique constraint."""
        screened = attachments.screen(service, data, files, self.limits)
        validated, municipality = self._validate(service, data, now, form_input)
        offices = self.config.route(service, municipality, validated.flags)
        submission = new_submission(
            service=service,
            sender=sender,
            municipality=municipality,
            validated=validated,
            offices=offices,
            files=screened,
            idempotency_key=key,
            fingerprint=fingerprint,
            vault=self.vault,
            reference_year=now.astimezone(LOCAL_TZ).year,
            now=now,
        )
        payments.attach_fee(submission, service, municipality, self.config, now, adoption)
        try:
            insert_submission(self.store, submission)
        except IntegrityError:
            # A repeat, or the same submission arriving concurrently: the first one stored wins.
            if key is not None:
                existing = find_existing(self.store, sender, service, key)
                if existing is not None:
                    return _repeat(existing, fingerprint)
            if adoption is not None and payments.adopted_elsewhere(self.store, adoption):
                raise _transaction_taken() from None
            raise
        except (OperationalError, StoreError) as exc:
            raise store_unavailable(service.id, exc) from None
        log_event(
            log,
            "submission.accepted",
            reference=submission.reference,
            service=service.id,
            sender=sender.id,
            municipality_ags=municipality.ags,
            deliveries=len(submission.deliveries),
            attachments=len(screened),
        )
        return IntakeResult(submission, created=True)

    def _validate(
        self, service: Service, data: dict[str, Any], now: dt.datetime, form_input: bool
    ) -> tuple[Validated, Municipality]:
        """Validate against the service schema and resolve the municipality; all errors at once."""
        schema = SCHEMAS.get(service.schema)
        errors: list[FieldError] = []
        validated = None
        try:
            validated = schema.validate(
                data, validation_options(service, now, form_input=form_input)
            )
        except ValidationError as exc:
            errors = field_errors(exc.messages)
        failing = {e.field for e in errors}
        municipality, problem = municipalities.resolve(self.config, service, data, failing)
        if problem is not None:
            errors.append(problem)
        if errors or validated is None or municipality is None:
            raise problem_422(errors)
        return validated, municipality


def _transaction_taken() -> Problem:
    """422: the named payment transaction belongs to another application already."""
    return problem_422(
        [
            FieldError(
                "payment.transaction_id",
                msg(
                    "Diese Zahlung gehört bereits zu einem anderen Antrag.",
                    "This payment already belongs to another submission.",
                ),
            )
        ]
    )


def _repeat(existing: Submission, fingerprint: str) -> IntakeResult:
    """The original answer for a repeat; a 409 when the key was used for other content.

    Submissions stored before fingerprints existed have none (NULL): any repeat of them is
    answered with the original, as it was then (migration 0002).
    """
    if existing.fingerprint is not None and existing.fingerprint != fingerprint:
        log_event(log, "submission.idempotency_conflict", reference=existing.reference)
        raise idempotency.conflict()
    return IntakeResult(existing, created=False)
