"""Who did what, when and why: the administrators' actions from the audit events, filtered and paged.

Every admin action is an `Event` naming its actor (`domain.accounts.accounts.record_action`),
and logins are events too; this module reads them back, nothing else. Which kinds count as
activity is one list per role (`kinds_for`): everyone signed in sees the actions on cases, only
admins see the accounts' and tokens' events (logins, roles, tokens). The query takes the kinds
it may show and the reader's scope (`domain.accounts.scopes`): an account limited to offices
sees the actions on cases with a delivery to its offices, and its own actions, nothing else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select

from domain.accounts.accounts import Role, role_allows
from domain.accounts.scopes import EVERYTHING, Scope
from domain.admin.search import (
    Page,
    bad_filter,
    check_paging,
    day_start,
    filter_period,
    filter_values,
)
from domain.problems import FieldError, msg
from store.accounts import Account, ApiToken
from store.engine import Store
from store.models import Delivery, Event, Submission, format_reference

# Actions on cases and deliveries: who replayed, cancelled, re-routed, read an attachment,
# exported a list.
CASE_KINDS = (
    "delivery.replayed",
    "delivery.cancelled",
    "delivery.rerouted",
    "admin.bulk_replay.started",
    "admin.bulk_replay.cancelled",
    "attachment.fetched",
    "admin.exported",
)
# Accounts and tokens: logins, new accounts, roles, passwords, tokens (admins only).
ACCOUNT_KINDS = (
    "account.login",
    "account.login_failed",
    "account.created",
    "account.password_link_created",
    "account.password_set",
    "account.role_set",
    "account.offices_set",
    "account.unlocked",
    "account.reactivated",
    "account.deactivated",
    "token.created",
    "token.imported",
    "token.revoked",
)
FILTER_KEYS = ("actor", "kind", "from", "to")


def kinds_for(role: str) -> tuple[str, ...]:
    """The event kinds an account of `role` sees in the activity list."""
    if role_allows(role, Role.ADMIN):
        return CASE_KINDS + ACCOUNT_KINDS
    return CASE_KINDS


@dataclass(frozen=True)
class ActivityFilter:
    """Which actions: by whom (``account:anna``), of which kind, between which days (inclusive)."""

    actor: str | None = None
    kind: str | None = None
    day_from: dt.date | None = None
    day_to: dt.date | None = None

    @classmethod
    def from_args(
        cls, args: Mapping[str, Any], kinds: Sequence[str], *, extra: Sequence[str] = ()
    ) -> ActivityFilter:
        """Read the filter from query parameters; a 400 problem lists every bad one."""
        values, errors = filter_values(args, FILTER_KEYS, extra)
        kind = values.get("kind")
        if kind is not None and kind not in kinds:
            errors.append(
                FieldError("kind", msg("Unbekannte Art der Aktion.", "Unknown kind of action."))
            )
        day_from, day_to = filter_period(values, errors)
        if errors:
            raise bad_filter(errors)
        return cls(values.get("actor"), kind, day_from, day_to)

    def as_args(self) -> dict[str, str]:
        """The filter as query parameters (what `from_args` reads back), without empty ones."""
        out = {
            "actor": self.actor,
            "kind": self.kind,
            "from": self.day_from.isoformat() if self.day_from else None,
            "to": self.day_to.isoformat() if self.day_to else None,
        }
        return {k: v for k, v in out.items() if v is not None}

    def clause(
        self, kinds: Sequence[str], scope: Scope = EVERYTHING, own: str | None = None
    ) -> ColumnElement[bool]:
        """The filter as a condition on events, within `kinds`; for a limited `scope` only the
        events of cases with a delivery to its offices, and the reader's `own` (its label)."""
        parts: list[ColumnElement[bool]] = [
            Event.kind == self.kind if self.kind is not None else Event.kind.in_(list(kinds))
        ]
        if scope.limited:
            in_scope = exists().where(
                Delivery.submission_id == Event.submission_id, scope.deliveries()
            )
            parts.append(or_(in_scope, Event.actor == own) if own is not None else in_scope)
        if self.actor is not None:
            parts.append(Event.actor == self.actor)
        if self.day_from is not None:
            parts.append(Event.at >= day_start(self.day_from))
        if self.day_to is not None:
            parts.append(Event.at < day_start(self.day_to, plus_days=1))
        return and_(*parts)


@dataclass(frozen=True)
class Activity:
    """One action: when, who, what, why, and the case it concerned (if any)."""

    id: int
    at: dt.datetime
    actor: str
    kind: str
    reason: str | None
    reference: str | None
    delivery_id: str | None
    detail: dict[str, Any]


def list_activity(
    store: Store,
    flt: ActivityFilter,
    kinds: Sequence[str],
    *,
    scope: Scope = EVERYTHING,
    own: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> Page[Activity]:
    """The actions of `kinds` matching the filter within `scope` (and the reader's `own`,
    by its event label), newest first (ix_events_kind_at)."""
    page, per_page = check_paging(page, per_page)
    where = flt.clause(kinds, scope, own)
    with store.read() as session:
        total = session.scalar(select(func.count()).select_from(Event).where(where)) or 0
        rows = session.execute(
            select(
                Event.id,
                Event.at,
                Event.actor,
                Event.kind,
                Event.delivery_id,
                Event.detail,
                Submission.reference_prefix,
                Submission.reference_year,
                Submission.id.label("number"),
            )
            .outerjoin(Submission, Submission.id == Event.submission_id)
            .where(where)
            .order_by(Event.at.desc(), Event.id.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        ).all()
    items = [
        Activity(
            id=r.id,
            at=r.at,
            actor=r.actor,
            kind=r.kind,
            reason=(r.detail or {}).get("reason") or None,
            reference=(
                format_reference(r.reference_prefix, r.reference_year, r.number)
                if r.number is not None
                else None
            ),
            delivery_id=r.delivery_id,
            detail=dict(r.detail or {}),
        )
        for r in rows
    ]
    return Page(items, total, page, per_page)


def known_actors(
    store: Store,
    *,
    with_tokens: bool,
    kinds: Sequence[str] = (),
    scope: Scope = EVERYTHING,
    own: str | None = None,
) -> list[str]:
    """The actors the filter offers: every account (``account:name``), and tokens for admins.

    A reader limited to offices is offered only those whose actions on its offices' cases it
    may see, and itself: the names of another office's clerks are not its business.
    """
    with store.read() as session:
        if scope.limited:
            visible = ActivityFilter().clause(kinds, scope, own)
            seen = set(session.scalars(select(Event.actor).where(visible).distinct()))
            return sorted(seen | ({own} if own is not None else set()))
        names = [
            f"account:{n}"
            for n in session.scalars(select(Account.username).order_by(Account.username))
        ]
        if with_tokens:
            names += [
                f"token:{n}" for n in session.scalars(select(ApiToken.name).order_by(ApiToken.name))
            ]
    return names
