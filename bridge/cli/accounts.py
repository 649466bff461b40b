"""`python -m bridge accounts ...` and `tokens ...`: the first admin, accounts and API tokens.

Exit codes: 0 done; 2 wrong usage or settings; 3 refused input (weak password, bad name or
role); 4 no such account or token; 5 conflict (exists already, last admin). Each action is
an audit event naming who did it: ``--by ACCOUNT`` or, by default, ``cli:<login name>``.
"""

from __future__ import annotations

import datetime as dt
import getpass
import sys
from collections.abc import Callable
from typing import NoReturn

import click

from bridge.cli.context import Context, pass_context
from domain.accounts.accounts import (
    AccountError,
    Actor,
    Role,
    create_account,
    deactivate,
    get_account,
    list_accounts,
    reactivate,
    set_password,
    set_role,
    unlock,
)
from domain.accounts.api_tokens import create_token, import_token, list_tokens, revoke_token
from domain.accounts.scopes import (
    all_account_offices,
    all_token_offices,
    check_offices,
    set_account_offices,
)
from store.accounts import Account
from store.engine import Store

EXIT_INVALID = 3
EXIT_UNKNOWN = 4
EXIT_CONFLICT = 5
_EXITS = {"invalid": EXIT_INVALID, "unknown": EXIT_UNKNOWN}

by_option = click.option(
    "--by", "by", default=None, help="The account acting (recorded); default: cli:<login name>."
)


def _actor(store: Store, by: str | None) -> Actor:
    """Who acts: a named active account, else the shell user (shell access is admin access)."""
    if by is None:
        return Actor(name=getpass.getuser(), role=Role.ADMIN, via="cli")
    account = get_account(store, by)
    if account is None or not account.active:
        click.echo(f"no active account {by!r}", err=True)
        sys.exit(EXIT_UNKNOWN)
    if account.role != Role.ADMIN:
        click.echo(f"{by!r} is {account.role}; managing accounts needs admin", err=True)
        sys.exit(EXIT_INVALID)
    return Actor(name=account.username, role=account.role, account_id=account.id, via="cli")


def _fail(error: AccountError) -> NoReturn:
    click.echo(f"{error.message.en} / {error.message}", err=True)
    sys.exit(_EXITS.get(error.kind, EXIT_CONFLICT))


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


role_choice = click.Choice(Role.ALL)


@click.group("accounts")
def accounts() -> None:
    """Accounts of the web page: viewer reads, operator replays, admin manages."""


office_option = click.option(
    "--office",
    "offices",
    multiple=True,
    help="Limit to this office's cases (repeatable); default: every office.",
)


def _offices(ctx: Context, offices: tuple[str, ...]) -> frozenset[str] | None:
    """The offices named (checked against the configuration), None when none are named."""
    if not offices:
        return None
    try:
        return check_offices(offices, ctx.settings.config.offices)
    except AccountError as exc:
        _fail(exc)


@accounts.command("create")
@click.argument("username")
@click.option("--role", type=role_choice, required=True)
@click.option("--display-name", default=None)
@office_option
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@by_option
@pass_context
def create_command(
    ctx: Context,
    username: str,
    role: str,
    display_name: str | None,
    offices: tuple[str, ...],
    password_stdin: bool,
    by: str | None,
) -> None:
    """Create an account (the first admin too); the password is asked for hidden."""
    settings, store = ctx.settings, ctx.store
    actor = _actor(store, by)
    limited = _offices(ctx, offices)
    password = _password(password_stdin)
    try:
        account = create_account(
            store,
            username,
            password,
            role,
            actor=actor,
            display_name=display_name,
            kdf=settings.password_kdf,
            offices=limited,
        )
    except AccountError as exc:
        _fail(exc)
    scope = f", offices {', '.join(sorted(limited))}" if limited else ""
    click.echo(f"created account {account.username} ({account.role}{scope})")


@accounts.command("list")
@pass_context
def list_command(ctx: Context) -> None:
    """List the accounts with role, state and last login."""
    store = ctx.store
    rows = list_accounts(store)
    if not rows:
        click.echo("no accounts; create the first admin with: accounts create NAME --role admin")
    offices = all_account_offices(store)
    for a in rows:
        state = "active" if a.active else "deactivated"
        last = a.last_login_at.isoformat(timespec="minutes") if a.last_login_at else "never"
        locked = f" locked until {a.locked_until:%H:%M}" if a.locked_until else ""
        scope = ",".join(offices.get(a.id, [])) or "all offices"
        click.echo(
            f"{a.username:<24} {a.role:<9} {state:<12} {scope:<26} last login {last}{locked}"
        )


@accounts.command("set-offices")
@click.argument("username")
@office_option
@click.option("--all", "every", is_flag=True, help="See every office again (no limit).")
@by_option
@pass_context
def set_offices_command(
    ctx: Context, username: str, offices: tuple[str, ...], every: bool, by: str | None
) -> None:
    """Limit an account to offices (--office, repeatable), or lift the limit (--all)."""
    if every == bool(offices):
        raise click.UsageError("name --office OFFICE (repeatable) or --all")
    store = ctx.store
    try:
        set_account_offices(
            store,
            username,
            None if every else offices,
            known=ctx.settings.config.offices,
            actor=_actor(store, by),
        )
    except AccountError as exc:
        _fail(exc)
    scope = "every office" if every else ", ".join(sorted(offices))
    click.echo(f"{username.strip().lower()} sees {scope}")


def _act_on(
    ctx: Context,
    action: Callable[..., Account],
    username: str,
    by: str | None,
    done: str,
) -> None:
    """Run one audited action on an account as `--by` (or the shell user); say what was done."""
    store = ctx.store
    try:
        account = action(store, username, actor=_actor(store, by))
    except AccountError as exc:
        _fail(exc)
    click.echo(f"{done} {account.username}")


@accounts.command("unlock")
@click.argument("username")
@by_option
@pass_context
def unlock_command(ctx: Context, username: str, by: str | None) -> None:
    """Lift a lock-out after failed logins."""
    _act_on(ctx, unlock, username, by, "unlocked")


@accounts.command("set-role")
@click.argument("username")
@click.argument("role", type=role_choice)
@by_option
@pass_context
def set_role_command(ctx: Context, username: str, role: str, by: str | None) -> None:
    """Give an account another role."""
    store = ctx.store
    try:
        account = set_role(store, username, role, actor=_actor(store, by))
    except AccountError as exc:
        _fail(exc)
    click.echo(f"{account.username} is now {account.role}")


@accounts.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@by_option
@pass_context
def set_password_command(ctx: Context, username: str, password_stdin: bool, by: str | None) -> None:
    """Set a new password (also lifts a lock-out and ends the account's sessions)."""
    settings, store = ctx.settings, ctx.store
    actor = _actor(store, by)
    password = _password(password_stdin)
    try:
        set_password(store, username, password, actor=actor, kdf=settings.password_kdf)
    except AccountError as exc:
        _fail(exc)
    click.echo(f"password of {username.strip().lower()} set")


@accounts.command("deactivate")
@click.argument("username")
@by_option
@pass_context
def deactivate_command(ctx: Context, username: str, by: str | None) -> None:
    """Deactivate an account: it can no longer log in, its sessions and tokens stop."""
    _act_on(ctx, deactivate, username, by, "deactivated")


@accounts.command("reactivate")
@click.argument("username")
@by_option
@pass_context
def reactivate_command(ctx: Context, username: str, by: str | None) -> None:
    """Let a deactivated account log in again with its password (its old tokens stay revoked)."""
    _act_on(ctx, reactivate, username, by, "reactivated")


@click.group("tokens")
def tokens() -> None:
    """API tokens: stored hashed, shown once at creation."""


@tokens.command("create")
@click.argument("name")
@click.option("--role", type=role_choice, default=Role.VIEWER, show_default=True)
@click.option("--office", default=None, help="A back office's own token: only its cases.")
@click.option(
    "--limit-office",
    "limit",
    multiple=True,
    help="A staff token limited to this office's cases (repeatable).",
)
@click.option("--days", type=click.IntRange(1, 3650), default=365, show_default=True)
@by_option
@pass_context
def token_create_command(
    ctx: Context,
    name: str,
    role: str,
    office: str | None,
    limit: tuple[str, ...],
    days: int,
    by: str | None,
) -> None:
    """Create a token and print it once (it cannot be shown again)."""
    settings, store = ctx.settings, ctx.store
    if office is not None and office not in settings.config.offices:
        click.echo(f"unknown office {office!r}", err=True)
        sys.exit(EXIT_UNKNOWN)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
    limited = _offices(ctx, limit)
    try:
        token, clear = create_token(
            store,
            name,
            role,
            expires_at=expires,
            actor=_actor(store, by),
            office_id=office,
            offices=limited,
        )
    except AccountError as exc:
        _fail(exc)
    scope = f" for office {office}" if office else ""
    if limited:
        scope = f" limited to {', '.join(sorted(limited))}"
    click.echo(f"token {token.name} ({token.role}{scope}), expires {expires:%Y-%m-%d}:", err=True)
    click.echo(clear)


@tokens.command("list")
@pass_context
def token_list_command(ctx: Context) -> None:
    """List the tokens: prefix, role, office, expiry, last use (never the secret)."""
    store = ctx.store
    rows = list_tokens(store)
    if not rows:
        click.echo("no tokens")
    now = dt.datetime.now(dt.UTC)
    limits = all_token_offices(store)
    for t in rows:
        if t.revoked_at is not None:
            state = "revoked"
        elif t.expires_at is not None and t.expires_at <= now:
            state = "expired"
        else:
            state = "valid"
        expires = f"{t.expires_at:%Y-%m-%d}" if t.expires_at else "never"
        used = t.last_used_at.isoformat(timespec="minutes") if t.last_used_at else "never"
        click.echo(
            f"{t.name:<24} {t.prefix}… {t.role:<9} "
            f"{t.office_id or ','.join(limits.get(t.id, [])) or '-':<26} {state:<8} "
            f"expires {expires} last used {used}"
        )


@tokens.command("revoke")
@click.argument("name")
@by_option
@pass_context
def token_revoke_command(ctx: Context, name: str, by: str | None) -> None:
    """Revoke a token at once."""
    store = ctx.store
    try:
        revoke_token(store, name, actor=_actor(store, by))
    except AccountError as exc:
        _fail(exc)
    click.echo(f"revoked {name}")


@tokens.command("import-env")
@by_option
@pass_context
def token_import_command(ctx: Context, by: str | None) -> None:
    """Move the tokens of BRIDGE_API_TOKENS into the database once (reader -> viewer)."""
    settings, store = ctx.settings, ctx.store
    if not settings.legacy_api_tokens:
        click.echo("BRIDGE_API_TOKENS is not set: nothing to import")
        return
    actor = _actor(store, by)
    conflicts = 0
    for legacy in settings.legacy_api_tokens:
        try:
            outcome = import_token(store, legacy.name, legacy.role, legacy.token, actor=actor)
        except AccountError as exc:
            _fail(exc)
        conflicts += outcome == "conflict"
        click.echo(f"{outcome:<9} {legacy.name} ({legacy.role})")
    click.echo(
        "The tokens keep working from the database. Remove BRIDGE_API_TOKENS from the "
        "environment now; it is no longer read for access."
    )
    if conflicts:
        sys.exit(EXIT_CONFLICT)
