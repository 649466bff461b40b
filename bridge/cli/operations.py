"""Operators' commands: find cases, replay one or many (with progress), cancel, re-route, purge, digest.

Exit codes: 0 done, 1 nothing matched or the action was refused, 2 bad usage (also a bad
filter). Actions are recorded with the operator's login name (or --by) as the acting account.
When `--by` names an account, the command acts as that account: its role and its offices
(`domain.accounts.scopes`) apply to what it lists, counts and changes; any other name is only
recorded, with the shell's full access.
"""

from __future__ import annotations

import datetime as dt
import getpass
import sys
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, NoReturn

import click

from bridge.cli.context import Context, pass_context
from domain.accounts.accounts import Actor, Role
from domain.problems import Problem

if TYPE_CHECKING:
    from domain.admin.bulk_replay import BulkReplayView
    from store.engine import Store

BY = click.option(
    "--by",
    "who",
    default=None,
    help="Who acts (recorded); an account's name applies its role and offices. "
    "Default: login name.",
)


def _actor(ctx: Context, who: str | None) -> Actor:
    """Who acts: the account `who` names (with its role and offices), else a recorded name."""
    from domain.accounts.accounts import AccountError, get_account_in
    from domain.accounts.scopes import account_offices

    if who is None:
        return Actor(name=getpass.getuser(), role=Role.ADMIN, via="cli")
    with ctx.store.read() as session:
        try:
            account = get_account_in(session, who)
        except AccountError:
            # Not an account: only a name for the record (shell access is admin access).
            return Actor(name=who, role=Role.ADMIN, via="cli")
        offices = account_offices(session, account.id)
    if not account.active:
        click.echo(f"Das Konto {account.username!r} ist deaktiviert.", err=True)
        sys.exit(1)
    return Actor(
        name=account.username,
        role=account.role,
        account_id=account.id,
        via="cli",
        offices=offices,
    )


def _fail(problem: Problem) -> NoReturn:
    """Print a refusal in German and leave with 2 (bad usage) or 1 (refused / nothing)."""
    detail = f": {problem.detail}" if problem.detail else ""
    click.echo(f"{problem.title}{detail}", err=True)
    for error in problem.errors:
        click.echo(f"  {error.field}: {error.message}", err=True)
    sys.exit(2 if problem.status == 400 else 1)


def _filter_options(values: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.UsageError(f"--filter wants KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _wake(ctx: Context, offices: Iterable[str]) -> None:
    """Wake the offices the action made due; when Redis is away, say the sweeper will."""
    from worker.queue import wake_quietly

    if not wake_quietly(ctx.redis, offices):
        click.echo("Redis nicht erreichbar: der Sweeper sendet sie.", err=True)


FILTERS = [
    click.option("--service"),
    click.option("--municipality", help="Id or 8-digit AGS."),
    click.option("--office"),
    click.option("--status"),
    click.option("--from", "from_", help="First day (YYYY-MM-DD, Europe/Berlin)."),
    click.option("--to", help="Last day, included."),
    click.option("--reference"),
]


def _with_filters(fn: click.decorators.FC) -> click.decorators.FC:
    for option in reversed(FILTERS):
        fn = option(fn)
    return fn


@click.group("submissions")
def submissions() -> None:
    """Find submissions."""


@submissions.command("list")
@_with_filters
@click.option("--page", default=1, show_default=True)
@click.option("--per-page", default=50, show_default=True)
@BY
@pass_context
def list_command(
    ctx: Context,
    service: str | None,
    municipality: str | None,
    office: str | None,
    status: str | None,
    from_: str | None,
    to: str | None,
    reference: str | None,
    page: int,
    per_page: int,
    who: str | None,
) -> None:
    """List submissions matching the filters, newest first."""
    from domain.admin.search import SubmissionFilter, list_submissions

    settings = ctx.settings
    args = {"service": service, "municipality": municipality, "office": office,
            "status": status, "from": from_, "to": to, "reference": reference}  # fmt: skip
    try:
        flt = SubmissionFilter.from_args(
            {k: v for k, v in args.items() if v is not None}, settings.config
        )
        found = list_submissions(
            ctx.store, flt, settings.config, actor=_actor(ctx, who), page=page, per_page=per_page
        )
    except Problem as problem:
        _fail(problem)
    for row in found.items:
        offices = ", ".join(f"{d.office}={d.status}" for d in row.deliveries)
        click.echo(
            f"{row.reference:<16} {row.service:<18} {row.municipality:<14} {row.status:<20} "
            f"{row.received_at:%Y-%m-%d %H:%M} {offices}"
        )
    click.echo(f"{found.total} submission(s), page {found.page}/{found.pages}")
    sys.exit(0 if found.total else 1)


@click.command()
@click.option("--office", help="Only this office's failed deliveries.")
@BY
@pass_context
def failed(ctx: Context, office: str | None, who: str | None) -> None:
    """List failed deliveries (the dead-letter list) with their last error."""
    from domain.admin.search import SubmissionFilter, failed_deliveries

    settings = ctx.settings
    store = ctx.store
    actor = _actor(ctx, who)
    try:
        flt = SubmissionFilter.from_args({"office": office} if office else {}, settings.config)
        rows = []
        page = 1
        while True:
            found = failed_deliveries(store, flt, actor=actor, page=page, per_page=200)
            rows += found.items
            if page >= found.pages:
                break
            page += 1
    except Problem as problem:
        _fail(problem)
    if not rows:
        click.echo("no failed deliveries")
    for d in rows:
        click.echo(
            f"{d.delivery_id}  {d.reference:<16} {d.office:<28} attempts={d.attempts}  "
            f"last error: {d.last_error or '-'}"
        )


@click.command()
@click.option("--delivery", "delivery_ids", multiple=True, help="A failed delivery's id.")
@click.option("--office", help="Replay all failed deliveries of this office at once.")
@click.option(
    "--filter", "filters", multiple=True, help="Bulk replay by KEY=VALUE (repeatable), paced."
)
@click.option("--dry-run", is_flag=True, help="Only count what a bulk replay would take.")
@click.option("--wait/--no-wait", default=True, help="Show the bulk replay's progress until done.")
@BY
@click.option("--reason", default="", help="Why (recorded; required for a bulk replay).")
@pass_context
def replay(
    ctx: Context,
    delivery_ids: tuple[str, ...],
    office: str | None,
    filters: tuple[str, ...],
    dry_run: bool,
    wait: bool,
    who: str | None,
    reason: str,
) -> None:
    """Replay failed deliveries: named ones or an office's at once, or by filter as a bulk replay."""
    if filters or dry_run:
        if delivery_ids or office:
            raise click.UsageError("--filter/--dry-run do not go with --delivery or --office")
        _bulk(ctx, _filter_options(filters), reason, dry_run, wait, who)
        return
    _replay_now(ctx, delivery_ids, office, who, reason)


def _replay_now(
    ctx: Context, delivery_ids: tuple[str, ...], office: str | None, who: str | None, reason: str
) -> None:
    from sqlalchemy import select

    from domain.admin.operations import replay_deliveries
    from domain.delivery.deliveries import failed_deliveries
    from store.models import Delivery

    if not delivery_ids and not office:
        raise click.UsageError("name --delivery ID (repeatable), --office OFFICE or --filter K=V")
    if office and office not in ctx.settings.config.offices:
        raise click.UsageError(f"unknown office {office!r}")
    store = ctx.store
    ids = list(delivery_ids) + ([d.id for d in failed_deliveries(store, office)] if office else [])
    try:
        result = replay_deliveries(store, ids, _actor(ctx, who), reason)
    except Problem as problem:
        _fail(problem)
    for delivery_id in result.replayed:
        click.echo(f"replayed {delivery_id}")
    for delivery_id, why in result.skipped.items():
        click.echo(f"skipped  {delivery_id}: {why}", err=True)
    if result.replayed:
        with store.read() as session:
            offices = set(
                session.scalars(select(Delivery.office_id).where(Delivery.id.in_(result.replayed)))
            )
        _wake(ctx, offices)
    sys.exit(0 if result.replayed or not ids else 1)


def _bulk(
    ctx: Context, args: dict[str, str], reason: str, dry_run: bool, wait: bool, who: str | None
) -> None:
    from domain.admin import bulk_replay
    from domain.admin.search import SubmissionFilter, count_replayable

    settings = ctx.settings
    store = ctx.store
    actor = _actor(ctx, who)
    try:
        flt = SubmissionFilter.from_args(args, settings.config, extra=())
        if dry_run:
            count = count_replayable(store, flt, actor=actor)
            # Nothing to replay is an answer, not a failure: a cron job's dry run exits 0.
            click.echo(f"{count} failed deliveries match; nothing was changed (dry run)")
            sys.exit(0)
        view, offices = bulk_replay.start(
            store, settings.config, flt, actor, reason,
            rate_per_office=settings.replay_rate_per_office,
        )  # fmt: skip
    except Problem as problem:
        if problem.type == "nothing-to-replay":
            click.echo("nothing to replay: no failed delivery matches the filter")
            sys.exit(0)
        _fail(problem)
    _wake(ctx, offices)
    click.echo(
        f"bulk replay {view.id} started: {view.total} deliveries, at most "
        f"{view.rate_per_office:g}/s per office"
    )
    if not wait:
        return
    _summary(_progress(store, view.id, view.total, actor))


def _progress(store: Store, job_id: int, total: int, actor: Actor) -> BulkReplayView:
    from domain.admin import bulk_replay

    shown = 0
    with click.progressbar(length=total, label=f"bulk replay {job_id}") as bar:
        while True:
            view = bulk_replay.get(store, job_id, actor=actor)
            assert view is not None
            bar.update(view.processed - shown)
            shown = view.processed
            if view.processed >= view.total or not view.active:
                return view
            time.sleep(0.5)


def _summary(view: BulkReplayView) -> None:
    click.echo(
        f"bulk replay {view.id}: {view.processed} of {view.total} sent, {view.delivered} delivered, "
        f"{view.failed} failed again (status {view.status})"
    )


@click.command("replay-status")
@click.argument("job_id", type=int)
@BY
@pass_context
def replay_status(ctx: Context, job_id: int, who: str | None) -> None:
    """Show a bulk replay's progress."""
    from domain.admin import bulk_replay

    store = ctx.store
    actor = _actor(ctx, who)
    view = bulk_replay.get(store, job_id, actor=actor) if 0 < job_id < 2**62 else None
    if view is None:
        click.echo(f"no bulk replay {job_id}", err=True)
        sys.exit(1)
    click.echo(f"filter {view.filter or 'all'}, by {view.created_by}: {view.reason}")
    _summary(view)


@click.command()
@click.option("--reference", help="Cancel every open delivery of this submission.")
@click.option("--replay", "job_id", type=int, help="Cancel this bulk replay.")
@BY
@click.option("--reason", required=True, help="Why (recorded).")
@pass_context
def cancel(
    ctx: Context, reference: str | None, job_id: int | None, who: str | None, reason: str
) -> None:
    """Cancel a submission's open deliveries, or a running bulk replay."""
    from domain.admin import bulk_replay
    from domain.admin.operations import cancel_submission

    if (reference is None) == (job_id is None):
        raise click.UsageError("name either --reference REF or --replay ID")
    store = ctx.store
    try:
        if reference is not None:
            outcome = cancel_submission(store, reference, _actor(ctx, who), reason)
            click.echo(str(outcome.message))
            changed = outcome.changed
        else:
            assert job_id is not None
            if not 0 < job_id < 2**62:
                raise bulk_replay.unknown_replay(job_id)
            view, changed = bulk_replay.cancel(store, job_id, _actor(ctx, who), reason)
            _summary(view)
    except Problem as problem:
        _fail(problem)
    sys.exit(0 if changed else 1)


@click.command()
@click.option("--delivery", "delivery_id", required=True)
@click.option("--office", required=True, help="An office of the same task area.")
@BY
@click.option("--reason", required=True)
@pass_context
def reroute(ctx: Context, delivery_id: str, office: str, who: str | None, reason: str) -> None:
    """Send a delivery to another office of the same task area instead."""
    from domain.admin.operations import reroute_delivery

    settings = ctx.settings
    try:
        outcome = reroute_delivery(
            ctx.store, settings.config, delivery_id, office, _actor(ctx, who), reason
        )
    except Problem as problem:
        _fail(problem)
    _wake(ctx, outcome.wake)
    click.echo(f"{outcome.message} ({', '.join(outcome.delivery_ids)})")
    sys.exit(0 if outcome.changed else 1)


@click.command()
@click.option("--dry-run", is_flag=True, help="Only count the cases a purge would clear.")
@pass_context
def purge(ctx: Context, dry_run: bool) -> None:
    """Purge personal data of cases delivered longer ago than their service's retention_days."""
    from domain.delivery.retention import purge as purge_cases

    result = purge_cases(ctx.store, ctx.settings.config, dry_run=dry_run)
    if dry_run:
        click.echo(f"{result.submissions} submission(s) would be purged (dry run)")
    else:
        click.echo(
            f"purged {result.submissions} submission(s) and {result.attachments} attachment(s)"
        )
    # Nothing due is the usual night, not an error: the nightly cron job exits 0 then too.


@click.command()
@click.option("--send", "mode", flag_value="send", help="Send today's digest (once per day).")
@click.option("--print", "mode", flag_value="print", default=True, help="Print it (default).")
@pass_context
def digest(ctx: Context, mode: str) -> None:
    """The daily digest for administrators: print it, or send it to BRIDGE_DIGEST_RECIPIENTS."""
    from schemas.options import LOCAL_TZ
    from worker import digest as daily

    settings = ctx.settings
    store = ctx.store
    now = dt.datetime.now(dt.UTC)
    if mode == "print":
        day = now.astimezone(LOCAL_TZ).date()
        body = daily.render(daily.build(store, settings.config, now), day, settings.public_url)
        click.echo(body, nl=False)
        return
    if not settings.digest_recipients:
        raise click.UsageError("BRIDGE_DIGEST_RECIPIENTS is empty")
    sent = daily.send_once(settings, store, now)
    click.echo(
        "digest sent" if sent else "not sent (already sent today, or the mail server refused)"
    )
    sys.exit(0 if sent else 1)


COMMANDS = (submissions, failed, replay, replay_status, cancel, reroute, purge, digest)
