"""Finding cases for administrators: the filter, the submission list and the failed deliveries.

One filter (`SubmissionFilter`) serves the API, the CLI, the web page and the bulk replay, so
the list an administrator looked at is exactly the set a bulk replay takes. Every query is
paginated and backed by an index (migration 0005) for the common filters, and every query
takes the acting `Actor`: an actor limited to offices (`domain.accounts.scopes`) finds only
cases with a delivery to its offices, and only those deliveries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, and_, exists, func, select

from domain.accounts.accounts import Actor
from domain.accounts.scopes import Scope, scope_of
from domain.config import Config
from domain.problems import FieldError, Problem, msg
from schemas.options import LOCAL_TZ
from store.engine import Store
from store.models import (
    Delivery,
    DeliveryStatus,
    Submission,
    SubmissionStatus,
    format_reference,
    parse_reference,
)

FILTER_KEYS = ("service", "municipality", "office", "status", "from", "to", "reference")
PAGING_KEYS = ("page", "per_page")
MAX_PER_PAGE = 200
MAX_VALUE_LENGTH = 100
SUBMISSION_STATUSES = (
    SubmissionStatus.RECEIVED,
    SubmissionStatus.ROUTED,
    SubmissionStatus.DELIVERED,
    SubmissionStatus.PARTIALLY_DELIVERED,
    SubmissionStatus.FAILED,
    SubmissionStatus.CANCELLED,
    SubmissionStatus.AWAITING_PAYMENT,
)
T = TypeVar("T")


def filter_values(
    args: Mapping[str, Any], keys: Sequence[str], extra: Sequence[str]
) -> tuple[dict[str, str], list[FieldError]]:
    """A filter's raw values from query parameters or a JSON object, trimmed, empty ones left
    out; an unknown key (other than `extra`) or a value that is no short text is an error."""
    errors: list[FieldError] = []
    values: dict[str, str] = {}
    for key, raw in args.items():
        if key in extra:
            continue
        if key not in keys:
            errors.append(
                FieldError(
                    str(key)[:MAX_VALUE_LENGTH],
                    msg(
                        f"Unbekannter Filter; erlaubt sind {', '.join(keys)}.",
                        f"Unknown filter; allowed are {', '.join(keys)}.",
                    ),
                )
            )
            continue
        if raw is None:
            continue
        if not isinstance(raw, str) or len(raw) > MAX_VALUE_LENGTH:
            errors.append(
                FieldError(
                    key,
                    msg(
                        f"Muss ein Text mit höchstens {MAX_VALUE_LENGTH} Zeichen sein.",
                        f"Must be a text of at most {MAX_VALUE_LENGTH} characters.",
                    ),
                )
            )
            continue
        if raw.strip():
            values[key] = raw.strip()
    return values, errors


def bad_filter(errors: list[FieldError]) -> Problem:
    """The 400 problem listing every bad value of a filter."""
    return Problem(
        400,
        "bad-filter",
        msg("Der Filter ist ungültig.", "The filter is invalid."),
        msg("Bitte die markierten Angaben korrigieren.", "Please correct the listed values."),
        errors=errors,
    )


@dataclass(frozen=True)
class SubmissionFilter:
    """Which submissions (and their deliveries) an administrator means; empty means all.

    Dates are whole days in Europe/Berlin, both ends included.
    """

    service: str | None = None
    municipality_ags: str | None = None
    office: str | None = None
    status: str | None = None
    received_from: dt.date | None = None
    received_to: dt.date | None = None
    reference: str | None = None

    @classmethod
    def from_args(
        cls,
        args: Mapping[str, Any],
        config: Config,
        *,
        extra: Sequence[str] = PAGING_KEYS,
    ) -> SubmissionFilter:
        """Read a filter from query parameters or a JSON object; a 400 problem lists every bad one.

        Keys other than the filter's own and `extra` are refused: a misspelt key must not widen
        a bulk replay to every case.
        """
        values, errors = filter_values(args, FILTER_KEYS, extra)
        flt = cls._parse(values, config, errors)
        if errors:
            raise bad_filter(errors)
        return flt

    @classmethod
    def _parse(
        cls, values: Mapping[str, str], config: Config, errors: list[FieldError]
    ) -> SubmissionFilter:
        service = values.get("service")
        if service is not None and service not in config.services:
            errors.append(
                FieldError(
                    "service",
                    msg(
                        f"Unbekannter Dienst; bekannt sind {', '.join(sorted(config.services))}.",
                        f"Unknown service; known are {', '.join(sorted(config.services))}.",
                    ),
                )
            )
        ags = None
        municipality = values.get("municipality")
        if municipality is not None:
            found = config.municipalities.get(municipality) or config.municipality_by_ags(
                municipality
            )
            if found is None:
                errors.append(
                    FieldError(
                        "municipality",
                        msg(
                            "Unbekannte Kommune (Kennung oder 8-stelliger AGS).",
                            "Unknown municipality (id or 8-digit AGS).",
                        ),
                    )
                )
            else:
                ags = found.ags
        office = values.get("office")
        if office is not None and office not in config.offices:
            errors.append(
                FieldError(
                    "office",
                    msg(
                        f"Unbekannte Dienststelle; bekannt sind {', '.join(sorted(config.offices))}.",
                        f"Unknown office; known are {', '.join(sorted(config.offices))}.",
                    ),
                )
            )
        status = values.get("status")
        if status is not None and status not in SUBMISSION_STATUSES:
            errors.append(
                FieldError(
                    "status",
                    msg(
                        f"Unbekannter Status; erlaubt sind {', '.join(SUBMISSION_STATUSES)}.",
                        f"Unknown status; allowed are {', '.join(SUBMISSION_STATUSES)}.",
                    ),
                )
            )
        day_from, day_to = filter_period(values, errors)
        reference = values.get("reference")
        if reference is not None and parse_reference(reference) is None:
            errors.append(
                FieldError(
                    "reference",
                    msg(
                        "Kein gültiges Aktenzeichen (z. B. NA-2026-000123).",
                        "Not a valid reference (e.g. NA-2026-000123).",
                    ),
                )
            )
        return cls(
            service=service,
            municipality_ags=ags,
            office=office,
            status=status,
            received_from=day_from,
            received_to=day_to,
            reference=reference,
        )

    def as_args(self) -> dict[str, str]:
        """The filter as query parameters (what `from_args` reads back), without empty ones."""
        out = {
            "service": self.service,
            "municipality": self.municipality_ags,
            "office": self.office,
            "status": self.status,
            "from": self.received_from.isoformat() if self.received_from else None,
            "to": self.received_to.isoformat() if self.received_to else None,
            "reference": self.reference,
        }
        return {k: v for k, v in out.items() if v is not None}

    def submission_clause(self) -> ColumnElement[bool]:
        """The filter as a condition on submissions (the office via its deliveries)."""
        parts: list[ColumnElement[bool]] = []
        if self.service is not None:
            parts.append(Submission.service == self.service)
        if self.municipality_ags is not None:
            parts.append(Submission.municipality_ags == self.municipality_ags)
        if self.status is not None:
            parts.append(Submission.status == self.status)
        if self.received_from is not None:
            parts.append(Submission.received_at >= day_start(self.received_from))
        if self.received_to is not None:
            parts.append(Submission.received_at < day_start(self.received_to, plus_days=1))
        if self.reference is not None:
            parsed = parse_reference(self.reference)
            assert parsed is not None  # checked by from_args
            prefix, year, number = parsed
            parts.append(
                and_(
                    Submission.id == number,
                    Submission.reference_prefix == prefix,
                    Submission.reference_year == year,
                )
            )
        return and_(True, *parts)


def _date(values: Mapping[str, str], key: str, errors: list[FieldError]) -> dt.date | None:
    raw = values.get(key)
    if raw is None:
        return None
    try:
        if not raw.isascii() or len(raw) != 10:
            raise ValueError(raw)
        day = dt.date.fromisoformat(raw)
    except ValueError:
        errors.append(
            FieldError(
                key,
                msg("Kein Datum der Form JJJJ-MM-TT.", "Not a date of the form YYYY-MM-DD."),
            )
        )
        return None
    return day


def filter_period(
    values: Mapping[str, str], errors: list[FieldError]
) -> tuple[dt.date | None, dt.date | None]:
    """A filter's `from` and `to` days (JJJJ-MM-TT); a bad day or a start after the end is an
    error in `errors`."""
    day_from = _date(values, "from", errors)
    day_to = _date(values, "to", errors)
    if day_from is not None and day_to is not None and day_from > day_to:
        errors.append(
            FieldError(
                "from",
                msg(
                    "Der Beginn liegt nach dem Ende des Zeitraums.",
                    "The start lies after the end of the period.",
                ),
            )
        )
    return day_from, day_to


def day_start(day: dt.date, *, plus_days: int = 0) -> dt.datetime:
    """The first instant (UTC) of a day in Europe/Berlin, optionally some days later."""
    local = dt.datetime.combine(day + dt.timedelta(days=plus_days), dt.time(), tzinfo=LOCAL_TZ)
    return local.astimezone(dt.UTC)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list and how many items the whole list has."""

    items: list[T]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        """How many pages the list has (at least one)."""
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True)
class DeliveryState:
    """A delivery as the lists show it: the office and how far it got."""

    id: str
    office: str
    status: str
    attempts: int


@dataclass(frozen=True)
class SubmissionRow:
    """One submission in the list."""

    reference: str
    service: str
    municipality_ags: str
    municipality: str
    status: str
    received_at: dt.datetime
    deliveries: list[DeliveryState] = field(default_factory=list)


@dataclass(frozen=True)
class FailedDelivery:
    """One entry of the dead-letter list."""

    delivery_id: str
    reference: str
    service: str
    office: str
    attempts: int
    last_error: str | None
    last_status_code: int | None
    failed_since: dt.datetime


def check_paging(page: int, per_page: int) -> tuple[int, int]:
    """Page numbers start at 1; a page holds 1 to MAX_PER_PAGE items (400 otherwise)."""
    errors: list[FieldError] = []
    if page < 1 or page > 1_000_000:
        errors.append(
            FieldError("page", msg("Muss zwischen 1 und 1000000 liegen.", "Must be 1-1000000."))
        )
    if not 1 <= per_page <= MAX_PER_PAGE:
        errors.append(
            FieldError(
                "per_page",
                msg(f"Muss zwischen 1 und {MAX_PER_PAGE} liegen.", f"Must be 1-{MAX_PER_PAGE}."),
            )
        )
    if errors:
        raise Problem(
            400,
            "bad-filter",
            msg("Der Filter ist ungültig.", "The filter is invalid."),
            errors=errors,
        )
    return page, per_page


def _office_clause(office: str | None) -> ColumnElement[bool]:
    if office is None:
        return and_(True)
    return exists().where(Delivery.submission_id == Submission.id, Delivery.office_id == office)


def list_submissions(
    store: Store,
    flt: SubmissionFilter,
    config: Config,
    *,
    actor: Actor,
    page: int = 1,
    per_page: int = 50,
) -> Page[SubmissionRow]:
    """Submissions matching the filter that `actor` may see, newest first, with their
    deliveries' states (only the deliveries within the actor's scope)."""
    page, per_page = check_paging(page, per_page)
    scope = scope_of(actor)
    where = and_(flt.submission_clause(), _office_clause(flt.office), scope.submissions())
    with store.read() as session:
        total = session.scalar(select(func.count()).select_from(Submission).where(where)) or 0
        rows = session.execute(
            select(
                Submission.id,
                Submission.reference_prefix,
                Submission.reference_year,
                Submission.service,
                Submission.municipality_ags,
                Submission.status,
                Submission.received_at,
            )
            .where(where)
            .order_by(Submission.received_at.desc(), Submission.id.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        ).all()
        by_submission: dict[int, list[DeliveryState]] = {r.id: [] for r in rows}
        if rows:
            for d in session.execute(
                select(
                    Delivery.submission_id,
                    Delivery.id,
                    Delivery.office_id,
                    Delivery.status,
                    Delivery.attempts,
                )
                .where(Delivery.submission_id.in_(list(by_submission)), scope.deliveries())
                .order_by(Delivery.created_at, Delivery.office_id)
            ):
                by_submission[d.submission_id].append(
                    DeliveryState(d.id, d.office_id, d.status, d.attempts)
                )
    items = []
    for r in rows:
        town = config.municipality_by_ags(r.municipality_ags)
        items.append(
            SubmissionRow(
                reference=format_reference(r.reference_prefix, r.reference_year, r.id),
                service=r.service,
                municipality_ags=r.municipality_ags,
                municipality=town.name if town else r.municipality_ags,
                status=r.status,
                received_at=r.received_at,
                deliveries=by_submission[r.id],
            )
        )
    return Page(items, total, page, per_page)


def failed_query(flt: SubmissionFilter, scope: Scope) -> Select[Any]:
    """The failed deliveries matching the filter within `scope` (joined with their
    submissions), unordered.

    The one definition of "replayable": the dry run counts it, a bulk replay takes it.
    """
    query = (
        select(Delivery.id)
        .join(Submission, Submission.id == Delivery.submission_id)
        .where(
            Delivery.status == DeliveryStatus.FAILED,
            flt.submission_clause(),
            scope.deliveries(),
        )
    )
    if flt.office is not None:
        query = query.where(Delivery.office_id == flt.office)
    return query


def count_replayable(store: Store, flt: SubmissionFilter, *, actor: Actor) -> int:
    """How many failed deliveries a bulk replay by `actor` with this filter would take."""
    query = failed_query(flt, scope_of(actor))
    with store.read() as session:
        return session.scalar(select(func.count()).select_from(query.subquery())) or 0


def failed_deliveries(
    store: Store, flt: SubmissionFilter, *, actor: Actor, page: int = 1, per_page: int = 50
) -> Page[FailedDelivery]:
    """The dead-letter list: failed deliveries matching the filter within `actor`'s scope,
    most recently failed first."""
    page, per_page = check_paging(page, per_page)
    base = failed_query(flt, scope_of(actor))
    with store.read() as session:
        total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
        rows = session.execute(
            base.add_columns(
                Delivery.office_id,
                Delivery.attempts,
                Delivery.last_error,
                Delivery.last_status_code,
                Delivery.updated_at,
                Submission.reference_prefix,
                Submission.reference_year,
                Submission.id.label("number"),
                Submission.service,
            )
            .order_by(Delivery.updated_at.desc(), Delivery.id)
            .offset((page - 1) * per_page)
            .limit(per_page)
        ).all()
    items = [
        FailedDelivery(
            delivery_id=r.id,
            reference=format_reference(r.reference_prefix, r.reference_year, r.number),
            service=r.service,
            office=r.office_id,
            attempts=r.attempts,
            last_error=r.last_error,
            last_status_code=r.last_status_code,
            failed_since=r.updated_at,
        )
        for r in rows
    ]
    return Page(items, total, page, per_page)
