"""The command line for operators: set-up, configuration checks, keys and replay."""

from __future__ import annotations

import click

from bridge.cli.accounts import accounts, tokens
from bridge.cli.backup import backup, restore_command
from bridge.cli.context import Context, pass_context
from bridge.cli.formcycle import formcycle_command
from bridge.cli.operations import COMMANDS
from bridge.cli.secret_file import secrets_command
from domain.config import Config, Office, Service
from domain.delivery.schema_versions import office_version
from domain.payments.payments import fee_summary
from infra.crypto import generate_key
from infra.version import VERSION
from integrations.checks import plain_mail_warnings


@click.group()
@click.version_option(VERSION, prog_name="formcycle-bridge", message="%(prog)s %(version)s")
def main() -> None:
    """Formcycle/Civento bridge: operator commands."""


@main.command("generate-key")
def generate_key_command() -> None:
    """Print a new encryption key for BRIDGE_ENCRYPTION_KEYS."""
    click.echo(generate_key())


@main.command()
@pass_context
def migrate(ctx: Context) -> None:
    """Create or upgrade the database schema (stop the old release first: docs/upgrade.md)."""
    from alembic.util import CommandError

    from store.migrations import upgrade

    try:
        click.echo(upgrade(ctx.store.engine).describe())
    except CommandError as exc:
        # The database names a revision these migrations do not have: a newer release made it.
        raise click.ClickException(
            f"{exc}: the database was migrated by a newer release than this one. Go back with "
            "the restore of the backup taken before that upgrade, or run `downgrade` with the "
            "newer release first (docs/upgrade.md)"
        ) from None


@main.command("downgrade")
@click.argument("revision")
@click.confirmation_option(
    prompt="A downgrade drops what later schema revisions added, their data too. Go on?"
)
@pass_context
def downgrade_command(ctx: Context, revision: str) -> None:
    """Take the database schema back to REVISION (the way back without a backup: docs/upgrade.md).

    Run it with the newer release, before its code is replaced by the older one: only the
    newer code knows how to undo its migrations.
    """
    from alembic.util import CommandError

    from store.migrations import downgrade

    try:
        click.echo(downgrade(ctx.store.engine, revision).describe())
    except CommandError as exc:
        raise click.ClickException(f"cannot downgrade to {revision!r}: {exc}") from None


@main.command("check-config")
@pass_context
def check_config(ctx: Context) -> None:
    """Validate the routing configuration and print who handles what for every town."""
    settings = ctx.settings
    config = settings.config
    click.echo(f"configuration {settings.config_path}: valid")
    for warning in plain_mail_warnings(settings):
        click.echo(f"warning: {warning}", err=True)
    for service in config.services.values():
        click.echo(f"\n{service.title} ({service.id}, {service.schema}, LeiKa {service.leika})")
        for m in config.municipalities.values():
            base = config.route(service, m, {})
            line = ", ".join(
                f"{o.task_area} -> {o.name} [{o.channel}{_pin(config, o, service)}]" for o in base
            )
            extra = [
                f"{c.task_area} -> {config.offices[config.responsibilities[c.task_area][m.id]].name}"
                f" (when {c.flag})"
                for c in service.conditional_task_areas
            ]
            click.echo(f"  {m.name:<20} {line}{'; ' + '; '.join(extra) if extra else ''}")
            fee = fee_summary(config, service, m)
            if fee:
                click.echo(f"  {'':<20} {fee}")


def _pin(config: Config, office: Office, service: Service) -> str:
    """ ", dog-registration@1" when the office takes an older version than the service's."""
    version = office_version(config, office.id, service.id)
    current = service.schema.rpartition("@")
    if version is None or current[2] == str(version):
        return ""
    return f", {current[0]}@{version}"


@main.command("rotate-keys")
@pass_context
def rotate_keys(ctx: Context) -> None:
    """Re-encrypt all stored personal data with the first key of BRIDGE_ENCRYPTION_KEYS."""
    from sqlalchemy import select

    from infra.crypto import Vault
    from store.models import Attachment, Submission

    vault = Vault(ctx.settings.encryption_keys)
    count = 0
    with ctx.store.session() as session:
        for s in session.scalars(select(Submission).where(Submission.data.is_not(None))):
            assert s.data is not None
            s.data = vault.rotate(s.data)
            count += 1
        for a in session.scalars(select(Attachment)):
            a.filename = vault.rotate(a.filename)
            if a.content is not None:
                a.content = vault.rotate(a.content)
            count += 1
    click.echo(f"re-encrypted {count} values; older keys can now be removed")


for _command in COMMANDS:  # submissions, failed, replay, cancel, reroute, purge, digest (issue 8)
    main.add_command(_command)
main.add_command(accounts)
main.add_command(backup)
main.add_command(restore_command)
main.add_command(tokens)
main.add_command(secrets_command)
main.add_command(formcycle_command)
