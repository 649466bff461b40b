"""Administrators' actions on single cases: replay, cancel and re-route, each on the record.

Every action is idempotent (doing it again answers "nothing to do" and changes nothing),
refuses with a German/English problem when the case is in no state for it, and commits its
audit event (`record_action`, naming the account) in the same transaction as the change.
The caller wakes `Outcome.wake` offices after the commit (`worker.queue.wake_offices`); the
sweeper covers a wake-up that Redis lost. An actor limited to offices
(`domain.accounts.scopes`) acts only on deliveries to its offices: any other delivery or case
is answered as unknown (404), so the answer does not tell that it exists.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.accounts.accounts import Actor, Role, record_action
from domain.accounts.scopes import scope_of
from domain.config import Config
from domain.delivery.deliveries import ReplayResult, refresh_statuses, replay_in
from domain.intake.submissions import due_delivery
from domain.payments.payments import withdraw_open
from domain.problems import Problem, msg
from schemas import Msg
from store.clock import database_now
from store.engine import Store
from store.models import Delivery, DeliveryKind, DeliveryStatus, Submission, parse_reference

MAX_REASON = 500
#: A case's deliveries that cancelling stops: waiting to be sent, failed, or held for the fee.
OPEN = (DeliveryStatus.PENDING, DeliveryStatus.FAILED, DeliveryStatus.HELD)


@dataclass(frozen=True)
class Outcome:
    """What an action did: `changed` False means it had been done already (a no-op)."""

    changed: bool
    message: Msg
    delivery_ids: list[str] = field(default_factory=list)
    wake: list[str] = field(default_factory=list)


def _forbidden(actor: Actor, needed: str) -> None:
    if not actor.may(needed):
        raise Problem(
            403,
            "forbidden",
            msg("Keine Berechtigung.", "Forbidden."),
            msg(f"Dafür ist die Rolle {needed} nötig.", f"This needs the {needed} role."),
        )


def check_reason(reason: str | None, *, required: bool) -> str:
    """The reason trimmed; a 422 problem when required and missing, or too long."""
    text = (reason or "").strip()
    if required and not text:
        raise Problem(
            422,
            "reason-required",
            msg("Bitte einen Grund angeben.", "Please give a reason."),
            msg(
                "Der Grund wird mit der Aktion protokolliert.",
                "The reason is recorded with the action.",
            ),
        )
    if len(text) > MAX_REASON:
        raise Problem(
            422,
            "reason-too-long",
            msg(
                f"Der Grund darf höchstens {MAX_REASON} Zeichen lang sein.",
                f"The reason may be at most {MAX_REASON} characters long.",
            ),
        )
    return text


def unknown_delivery(delivery_id: str) -> Problem:
    """The 404 problem for a delivery id that names nothing."""
    return Problem(
        404,
        "unknown-delivery",
        msg("Diese Zustellung gibt es nicht.", "No such delivery."),
        msg(
            f"Keine Zustellung mit der Kennung {delivery_id[:64]!r}.",
            f"No delivery {delivery_id[:64]!r}.",
        ),
    )


def _wrong_state(delivery: Delivery, de: str, en: str) -> Problem:
    return Problem(
        409,
        "wrong-state",
        msg(de, en),
        msg(
            f"Die Zustellung hat den Status {delivery.status}.",
            f"The delivery's status is {delivery.status}.",
        ),
    )


def replay_delivery(store: Store, delivery_id: str, actor: Actor, reason: str = "") -> Outcome:
    """Send a failed delivery again to its office; a pending one is left alone (no-op)."""
    _forbidden(actor, Role.OPERATOR)
    reason = check_reason(reason, required=False)
    with store.session() as session:
        delivery = session.get(Delivery, delivery_id)
        if delivery is None or not scope_of(actor).covers(delivery.office_id):
            raise unknown_delivery(delivery_id)
        if delivery.status == DeliveryStatus.PENDING:
            return Outcome(
                False,
                msg(
                    "Die Zustellung wartet bereits auf den Versand; nichts zu tun.",
                    "The delivery is already waiting to be sent; nothing to do.",
                ),
                [delivery_id],
            )
        if delivery.status == DeliveryStatus.DELIVERED:
            raise _wrong_state(
                delivery,
                "Die Zustellung ist bereits zugestellt.",
                "The delivery has been delivered already.",
            )
        if delivery.status == DeliveryStatus.CANCELLED:
            raise _wrong_state(
                delivery,
                "Eine abgebrochene Zustellung wird nicht erneut gesendet.",
                "A cancelled delivery is not sent again.",
            )
        if delivery.status != DeliveryStatus.FAILED:
            # e.g. held until the fee is paid: the payment releases it, not an administrator.
            raise _wrong_state(
                delivery,
                "Nur fehlgeschlagene Zustellungen werden erneut gesendet.",
                "Only failed deliveries are sent again.",
            )
        office = delivery.office_id
        replay_in(session, [delivery_id], actor, reason)
    return Outcome(
        True,
        msg("Die Zustellung wird erneut gesendet.", "The delivery is sent again."),
        [delivery_id],
        [office],
    )


def cancel_delivery(store: Store, delivery_id: str, actor: Actor, reason: str) -> Outcome:
    """Stop a pending, failed or held delivery for good; cancelling twice is a no-op.

    Cancelling the last delivery held for the fee withdraws the case's open payment.
    """
    _forbidden(actor, Role.OPERATOR)
    reason = check_reason(reason, required=True)
    with store.session() as session:
        delivery = session.get(Delivery, delivery_id, with_for_update=True)
        if delivery is None or not scope_of(actor).covers(delivery.office_id):
            raise unknown_delivery(delivery_id)
        if delivery.status == DeliveryStatus.CANCELLED:
            return Outcome(
                False,
                msg(
                    "Die Zustellung ist bereits abgebrochen.", "The delivery is cancelled already."
                ),
                [delivery_id],
            )
        if delivery.status == DeliveryStatus.DELIVERED:
            raise _wrong_state(
                delivery,
                "Eine zugestellte Zustellung kann nicht abgebrochen werden.",
                "A delivered delivery cannot be cancelled.",
            )
        _cancel(session, delivery, actor, reason)
    return Outcome(
        True, msg("Die Zustellung ist abgebrochen.", "The delivery is cancelled."), [delivery_id]
    )


def _cancel(session: Session, delivery: Delivery, actor: Actor, reason: str) -> None:
    now = database_now(session.connection())
    record_action(
        session,
        actor,
        "delivery.cancelled",
        submission_id=delivery.submission_id,
        delivery_id=delivery.id,
        reason=reason,
        detail={
            "office": delivery.office_id,
            "previous_status": delivery.status,
            # A leased delivery may be on its way right now; the office may still receive it.
            "in_flight": delivery.lease_until is not None and delivery.lease_until > now,
        },
    ).at = now
    previous = delivery.status
    delivery.status = DeliveryStatus.CANCELLED
    delivery.next_attempt_at = None
    delivery.lease_until = None
    delivery.updated_at = now
    session.flush()
    if previous == DeliveryStatus.HELD:
        _withdraw_if_none_held(session, delivery.submission_id, actor, now)
    refresh_statuses(session.connection(), {delivery.submission_id}, now)


def _withdraw_if_none_held(
    session: Session, submission_id: int, actor: Actor, now: dt.datetime
) -> list[str]:
    """The last delivery waiting for the fee is cancelled: the case is withdrawn, so its open
    payment is too (domain/payments: watched for a late payment, which raises an operator
    event). A case with a held delivery left still waits for its fee."""
    still_held = session.scalar(
        select(Delivery.id).where(
            Delivery.submission_id == submission_id,
            Delivery.kind == DeliveryKind.CASE,
            Delivery.status == DeliveryStatus.HELD,
        )
    )
    if still_held is not None:
        return []
    return withdraw_open(session.connection(), submission_id, now, actor.label)


def unknown_submission(reference: str) -> Problem:
    """The 404 problem for a reference that names no case."""
    return Problem(
        404,
        "unknown-submission",
        msg("Diesen Antrag gibt es nicht.", "No such submission."),
        msg(
            f"Kein Antrag mit dem Aktenzeichen {reference[:40]!r}.",
            f"No submission {reference[:40]!r}.",
        ),
    )


def cancel_submission(store: Store, reference: str, actor: Actor, reason: str) -> Outcome:
    """Cancel every delivery of a case not yet delivered (within the actor's scope); a case
    with none left is a no-op.

    An unpaid case (deliveries held for the fee) is withdrawn: its held deliveries are
    cancelled and its open payment becomes `withdrawn` (the pay link then says so).
    """
    _forbidden(actor, Role.OPERATOR)
    reason = check_reason(reason, required=True)
    parsed = parse_reference(reference)
    if parsed is None:
        raise unknown_submission(reference)
    prefix, year, number = parsed
    scope = scope_of(actor)
    with store.session() as session:
        submission = session.scalars(
            select(Submission).where(
                Submission.id == number,
                Submission.reference_prefix == prefix,
                Submission.reference_year == year,
                scope.submissions(),
            )
        ).one_or_none()
        if submission is None:
            raise unknown_submission(reference)
        # Held deliveries wait for the fee: cancelling an unpaid case withdraws it (_cancel).
        own = [d for d in submission.deliveries if scope.covers(d.office_id)]
        open_ = [d for d in own if d.status in OPEN]
        if not open_:
            if all(d.status == DeliveryStatus.CANCELLED for d in own):
                return Outcome(
                    False,
                    msg(
                        "Der Antrag ist bereits abgebrochen.",
                        "The submission is cancelled already.",
                    ),
                )
            raise Problem(
                409,
                "wrong-state",
                msg(
                    "Der Antrag ist bereits zugestellt; nichts mehr abzubrechen.",
                    "The submission has been delivered; nothing is left to cancel.",
                ),
            )
        held = any(d.status == DeliveryStatus.HELD for d in open_)
        for delivery in open_:
            _cancel(session, delivery, actor, reason)
        ids = [d.id for d in open_]
    de = f"{len(ids)} Zustellung(en) des Antrags abgebrochen."
    en = f"{len(ids)} delivery(ies) of the submission cancelled."
    if held:
        de += " Der Antrag ist zurückgezogen; die Gebühr ist nicht mehr zu bezahlen."
        en += " The submission is withdrawn; its fee is no longer to be paid."
    return Outcome(True, msg(de, en), ids)


def reroute_delivery(
    store: Store, config: Config, delivery_id: str, office_id: str, actor: Actor, reason: str
) -> Outcome:
    """Send a case to another office of the same task area instead of the one it went to.

    The old delivery is cancelled and a new one (a new delivery id: another office, another
    webhook-id) is due at once. Re-routing again to the same office is a no-op.
    """
    _forbidden(actor, Role.OPERATOR)
    reason = check_reason(reason, required=True)
    target = config.offices.get(office_id)
    if target is None:
        raise Problem(
            422,
            "unknown-office",
            msg("Diese Dienststelle gibt es nicht.", "No such office."),
            msg(
                f"Bekannt sind: {', '.join(sorted(config.offices))}.",
                f"Known are: {', '.join(sorted(config.offices))}.",
            ),
        )
    scope = scope_of(actor)
    with store.session() as session:
        delivery = session.get(Delivery, delivery_id, with_for_update=True)
        if delivery is None or not scope.covers(delivery.office_id):
            raise unknown_delivery(delivery_id)
        if not scope.covers(target.id):
            raise Problem(
                403,
                "forbidden",
                msg("Keine Berechtigung.", "Forbidden."),
                msg(
                    "Ihr Konto ist auf andere Stellen beschränkt; an diese Stelle kann es "
                    "nicht umleiten.",
                    "Your account is limited to other offices; it cannot re-route to this one.",
                ),
            )
        if target.task_area != delivery.task_area:
            raise Problem(
                422,
                "other-task-area",
                msg(
                    "Nur an eine Dienststelle desselben Aufgabengebiets umleitbar.",
                    "Only an office of the same task area can take it.",
                ),
                msg(
                    f"{target.name} ist für {target.task_area!r} zuständig, die Zustellung "
                    f"gehört zu {delivery.task_area!r}.",
                    f"{target.name} serves {target.task_area!r}, the delivery belongs to "
                    f"{delivery.task_area!r}.",
                ),
            )
        siblings = list(
            session.scalars(
                select(Delivery).where(Delivery.submission_id == delivery.submission_id)
            )
        )
        already = next(
            (
                d
                for d in siblings
                if d.office_id == office_id and d.status != DeliveryStatus.CANCELLED
            ),
            None,
        )
        if already is not None and delivery.status == DeliveryStatus.CANCELLED:
            return Outcome(
                False,
                msg(
                    "Der Antrag ist bereits an diese Dienststelle umgeleitet.",
                    "The submission is already re-routed to this office.",
                ),
                [already.id],
            )
        if office_id == delivery.office_id:
            raise Problem(
                409,
                "same-office",
                msg(
                    "Die Zustellung geht bereits an diese Dienststelle.",
                    "The delivery already goes to this office.",
                ),
            )
        if already is not None:
            raise Problem(
                409,
                "office-has-delivery",
                msg(
                    "Der Antrag hat bereits eine Zustellung an diese Dienststelle.",
                    "The submission already has a delivery to this office.",
                ),
            )
        if delivery.status not in (DeliveryStatus.PENDING, DeliveryStatus.FAILED):
            raise _wrong_state(
                delivery,
                "Nur wartende oder fehlgeschlagene Zustellungen sind umleitbar.",
                "Only pending or failed deliveries can be re-routed.",
            )
        now = database_now(session.connection())
        new = due_delivery(target, now)
        new.submission_id = delivery.submission_id
        session.add(new)
        session.flush()
        record_action(
            session,
            actor,
            "delivery.rerouted",
            submission_id=delivery.submission_id,
            delivery_id=delivery.id,
            reason=reason,
            detail={
                "from_office": delivery.office_id,
                "to_office": target.id,
                "new_delivery": new.id,
            },
        ).at = now
        delivery.status = DeliveryStatus.CANCELLED
        delivery.next_attempt_at = None
        delivery.lease_until = None
        delivery.updated_at = now
        session.flush()
        refresh_statuses(session.connection(), {delivery.submission_id}, now)
        new_id = new.id
    return Outcome(
        True,
        msg(f"Umgeleitet an {target.name}.", f"Re-routed to {target.name}."),
        [new_id],
        [target.id],
    )


def replay_deliveries(
    store: Store, delivery_ids: list[str], actor: Actor, reason: str = ""
) -> ReplayResult:
    """Replay several failed deliveries at once (the CLI's ``replay --delivery/--office``).

    Needs the operator role; deliveries outside the actor's scope are skipped as unknown, the
    others go through `replay_in` (audited, not-failed ones skipped with the reason).
    """
    _forbidden(actor, Role.OPERATOR)
    reason = check_reason(reason, required=False)
    scope = scope_of(actor)
    with store.session() as session:
        seen: dict[str, str] = {
            delivery_id: office_id
            for delivery_id, office_id in session.execute(
                select(Delivery.id, Delivery.office_id).where(Delivery.id.in_(delivery_ids))
            )
        }
        mine = [d for d in delivery_ids if d in seen and scope.covers(seen[d])]
        result = replay_in(session, mine, actor, reason)
    for delivery_id in delivery_ids:
        if delivery_id not in mine:
            result.skipped[delivery_id] = "unknown delivery"
    return result
