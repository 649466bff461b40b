"""The command line for operators: set-up, configuration checks, keys and replay."""

from __future__ import annotations

import sys

import click

from bridge.cli_accounts import accounts, tokens
from domain.crypto import generate_key
from domain.payments import fee_summary
from worker.checks import settings_or_exit


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
    from domain.migrations import upgrade
    from domain.store import make_engine

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


@main.command()
@click.option("--office", help="Only this office's failed deliveries.")
def failed(office: str | None) -> None:
    """List failed deliveries (the dead-letter list) with their last error."""
    from domain.deliveries import failed_deliveries
    from domain.store import Store, format_reference

    settings = settings_or_exit()
    store = Store.from_url(settings.database_url)
    rows = failed_deliveries(store, office)
    if not rows:
        click.echo("no failed deliveries")
    with store.read() as session:
        for d in rows:
            s = session.merge(d).submission
            ref = format_reference(s.reference_prefix, s.reference_year, s.id)
            click.echo(
                f"{d.id}  {ref:<16} {d.office_id:<28} attempts={d.attempts}  "
                f"last error: {d.last_error or '-'}"
            )
    store.dispose()


@main.command()
@click.option("--delivery", "delivery_ids", multiple=True, help="A failed delivery's id.")
@click.option("--office", help="Replay all failed deliveries of this office.")
@click.option("--by", "actor", default=None, help="Who replays (recorded); default: login name.")
@click.option("--reason", default="", help="Why (recorded with the replay).")
def replay(
    delivery_ids: tuple[str, ...], office: str | None, actor: str | None, reason: str
) -> None:
    """Replay failed deliveries: reset their attempts and send them again to the same office."""
    import getpass

    from domain.deliveries import failed_deliveries
    from domain.deliveries import replay as replay_deliveries
    from domain.redis_connection import connect
    from domain.store import Store
    from worker.queue import wake_offices

    if not delivery_ids and not office:
        raise click.UsageError("name --delivery ID (repeatable) or --office OFFICE")
    settings = settings_or_exit()
    if office and office not in settings.config.offices:
        raise click.UsageError(f"unknown office {office!r}")
    store = Store.from_url(settings.database_url)
    ids = list(delivery_ids) + ([d.id for d in failed_deliveries(store, office)] if office else [])
    who = f"cli:{actor or getpass.getuser()}"
    result = replay_deliveries(store, ids, actor=who, reason=reason)
    for delivery_id in result.replayed:
        click.echo(f"replayed {delivery_id}")
    for delivery_id, why in result.skipped.items():
        click.echo(f"skipped  {delivery_id}: {why}", err=True)
    if result.replayed:
        with store.read() as session:
            from sqlalchemy import select

            from domain.store import Delivery

            offices = set(
                session.scalars(select(Delivery.office_id).where(Delivery.id.in_(result.replayed)))
            )
        try:
            wake_offices(connect(settings.redis_url), sorted(offices))
        except Exception:
            click.echo("Redis not reachable: the sweeper will send them", err=True)
    store.dispose()
    sys.exit(0 if result.replayed or not ids else 1)


@main.command("rotate-keys")
def rotate_keys() -> None:
    """Re-encrypt all stored personal data with the first key of BRIDGE_ENCRYPTION_KEYS."""
    from sqlalchemy import select

    from domain.crypto import Vault
    from domain.store import Attachment, Store, Submission

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


main.add_command(accounts)
main.add_command(tokens)
