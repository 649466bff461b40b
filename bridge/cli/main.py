"""The command line for operators: set-up, configuration checks, keys and replay."""

from __future__ import annotations

import click

from bridge.cli.accounts import accounts, tokens
from bridge.cli.operations import COMMANDS
from domain.payments.payments import fee_summary
from infra.crypto import generate_key
from integrations.checks import settings_or_exit


@click.group()
def main() -> None:
    """Formcycle/Civento bridge: operator commands."""


@main.command("generate-key")
def generate_key_command() -> None:
    """Print a new encryption key for BRIDGE_ENCRYPTION_KEYS."""
    click.echo(generate_key())


@main.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    from store.engine import make_engine
    from store.migrations import upgrade

    settings = settings_or_exit()
    engine = make_engine(settings.database_url)
    done = upgrade(engine)
    engine.dispose()
    click.echo(done.describe())


@main.command("check-config")
def check_config() -> None:
    """Validate the routing configuration and print who handles what for every town."""
    settings = settings_or_exit()
    config = settings.config
    click.echo(f"configuration {settings.config_path}: valid")
    for service in config.services.values():
        click.echo(f"\n{service.title} ({service.id}, {service.schema}, LeiKa {service.leika})")
        for m in config.municipalities.values():
            base = config.route(service, m, {})
            line = ", ".join(f"{o.task_area} -> {o.name} [{o.channel}]" for o in base)
            extra = [
                f"{c.task_area} -> {config.offices[config.responsibilities[c.task_area][m.id]].name}"
                f" (when {c.flag})"
                for c in service.conditional_task_areas
            ]
            click.echo(f"  {m.name:<20} {line}{'; ' + '; '.join(extra) if extra else ''}")
            fee = fee_summary(config, service, m)
            if fee:
                click.echo(f"  {'':<20} {fee}")


@main.command("rotate-keys")
def rotate_keys() -> None:
    """Re-encrypt all stored personal data with the first key of BRIDGE_ENCRYPTION_KEYS."""
    from sqlalchemy import select

    from infra.crypto import Vault
    from store.engine import Store
    from store.models import Attachment, Submission

    settings = settings_or_exit()
    vault = Vault(settings.encryption_keys)
    store = Store.from_url(settings.database_url)
    count = 0
    with store.session() as session:
        for s in session.scalars(select(Submission).where(Submission.data.is_not(None))):
            assert s.data is not None
            s.data = vault.rotate(s.data)
            count += 1
        for a in session.scalars(select(Attachment)):
            a.filename = vault.rotate(a.filename)
            if a.content is not None:
                a.content = vault.rotate(a.content)
            count += 1
    store.dispose()
    click.echo(f"re-encrypted {count} values; older keys can now be removed")


for _command in COMMANDS:  # submissions, failed, replay, cancel, reroute, purge, digest (issue 8)
    main.add_command(_command)
main.add_command(accounts)
main.add_command(tokens)
