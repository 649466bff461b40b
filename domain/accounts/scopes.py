"""Which offices' cases an actor may see and act on: the one rule every admin query applies.

An account or a staff token can be limited to offices (`account_offices`, `api_token_offices`);
a back office's own token is limited to its `office_id`. A limited actor sees a case only when
the case has a delivery to one of its offices, and acts only on deliveries to its offices.
Admins and actors without a limit see everything. The admin queries (`domain.admin.search`,
`overview`, `case_view`, `bulk_replay`, `operations`) take the actor and apply `scope_of` here,
so no page, API route or command can forget it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, delete, exists, false, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from domain.accounts.accounts import AccountError, Actor, Role, get_account_in, record_action
from domain.problems import msg
from store.accounts import AccountOffice, ApiTokenOffice
from store.engine import Store
from store.models import Delivery, Submission


@dataclass(frozen=True)
class Scope:
    """The offices whose cases an actor sees; `offices` None means every office."""

    offices: frozenset[str] | None = None

    @property
    def limited(self) -> bool:
        """Whether the actor sees only some offices' cases."""
        return self.offices is not None

    def covers(self, office_id: str) -> bool:
        """Whether a delivery to `office_id` is within the scope."""
        return self.offices is None or office_id in self.offices

    def deliveries(
        self, office_column: InstrumentedAttribute[str] | None = None
    ) -> ColumnElement[bool]:
        """A condition on deliveries (or on another office column): within the scope."""
        column = Delivery.office_id if office_column is None else office_column
        if self.offices is None:
            return and_(True)
        if not self.offices:
            return false()
        return column.in_(sorted(self.offices))

    def submissions(self) -> ColumnElement[bool]:
        """A condition on submissions: the case has a delivery to one of the offices."""
        if self.offices is None:
            return and_(True)
        return exists().where(Delivery.submission_id == Submission.id, self.deliveries())


EVERYTHING = Scope()


def scope_of(actor: Actor) -> Scope:
    """The actor's scope: admins see all, an office's token its office, staff their offices."""
    if actor.office_id is not None:
        return Scope(frozenset({actor.office_id}))
    if actor.role == Role.ADMIN or actor.offices is None:
        return EVERYTHING
    return Scope(actor.offices)


def account_offices(session: Session, account_id: int) -> frozenset[str] | None:
    """The offices an account is limited to, or None when it sees every office."""
    rows = frozenset(
        session.scalars(
            select(AccountOffice.office_id).where(AccountOffice.account_id == account_id)
        )
    )
    return rows or None


def token_offices(session: Session, token_id: int) -> frozenset[str] | None:
    """The offices a staff token is limited to, or None when it sees every office."""
    rows = frozenset(
        session.scalars(select(ApiTokenOffice.office_id).where(ApiTokenOffice.token_id == token_id))
    )
    return rows or None


def all_account_offices(store: Store) -> dict[int, list[str]]:
    """Account id -> its offices (sorted), for the lists of accounts."""
    out: dict[int, list[str]] = {}
    with store.read() as session:
        for account_id, office_id in session.execute(
            select(AccountOffice.account_id, AccountOffice.office_id).order_by(
                AccountOffice.office_id
            )
        ):
            out.setdefault(account_id, []).append(office_id)
    return out


def all_token_offices(store: Store) -> dict[int, list[str]]:
    """Token id -> its offices (sorted), for the lists of tokens."""
    out: dict[int, list[str]] = {}
    with store.read() as session:
        for token_id, office_id in session.execute(
            select(ApiTokenOffice.token_id, ApiTokenOffice.office_id).order_by(
                ApiTokenOffice.office_id
            )
        ):
            out.setdefault(token_id, []).append(office_id)
    return out


def check_offices(offices: Iterable[str], known: Collection[str]) -> frozenset[str]:
    """The offices as a set; AccountError ``invalid`` for an office the configuration lacks."""
    chosen = frozenset(o.strip() for o in offices if o.strip())
    unknown = sorted(chosen - set(known))
    if unknown:
        raise AccountError(
            "invalid",
            msg(
                f"Unbekannte Stelle(n): {', '.join(unknown)}; bekannt sind "
                f"{', '.join(sorted(known))}.",
                f"Unknown office(s): {', '.join(unknown)}; known are {', '.join(sorted(known))}.",
            ),
        )
    return chosen


def no_admin_scope() -> AccountError:
    """The refusal to limit an admin: an admin manages every office's accounts."""
    return AccountError(
        "invalid",
        msg(
            "Ein Admin-Konto sieht immer alle Stellen; bitte eine andere Rolle wählen oder "
            "die Stellen entfernen.",
            "An admin account always sees every office; choose another role or remove the offices.",
        ),
    )


def set_account_offices(
    store: Store,
    username: str,
    offices: Iterable[str] | None,
    *,
    known: Collection[str],
    actor: Actor,
) -> frozenset[str] | None:
    """Limit an account to `offices` (None: every office); audited as ``account.offices_set``.

    An admin cannot be limited; an empty set is refused (it would hide every case, which a
    deactivation says better). The account's sessions keep working and see the new scope
    with their next request.
    """
    chosen = None if offices is None else check_offices(offices, known)
    if chosen is not None and not chosen:
        raise AccountError(
            "invalid",
            msg(
                "Bitte mindestens eine Stelle wählen (oder „alle Stellen“).",
                "Please choose at least one office (or every office).",
            ),
        )
    with store.session() as session:
        account = get_account_in(session, username)
        if chosen is not None and account.role == Role.ADMIN:
            raise no_admin_scope()
        old = account_offices(session, account.id)
        session.execute(delete(AccountOffice).where(AccountOffice.account_id == account.id))
        for office_id in sorted(chosen or ()):
            session.add(AccountOffice(account_id=account.id, office_id=office_id))
        record_action(
            session,
            actor,
            "account.offices_set",
            detail={
                "account": account.username,
                "account_id": account.id,
                "old_offices": sorted(old) if old is not None else None,
                "new_offices": sorted(chosen) if chosen is not None else None,
            },
        )
    return chosen


def add_token_offices(session: Session, token_id: int, offices: frozenset[str]) -> None:
    """Limit a new staff token to `offices` (in the transaction that creates it)."""
    for office_id in sorted(offices):
        session.add(ApiTokenOffice(token_id=token_id, office_id=office_id))
