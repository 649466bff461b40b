"""`backup` and `restore`: a consistent copy of the store while it runs, and its way back."""

from __future__ import annotations

from pathlib import Path

import click

from bridge.cli.context import Context, pass_context
from store.backup import BackupError, make_backup, restore, unreadable_samples


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@pass_context
def backup(ctx: Context, path: Path) -> None:
    """Copy the database into the new file PATH while the service runs (docs/backup.md).

    The copy is as encrypted as the database: keep BRIDGE_ENCRYPTION_KEYS safe, apart from it.
    """
    try:
        manifest = make_backup(ctx.settings.database_url, path)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"wrote {path}: {manifest.describe()}")
    if unreadable_samples(manifest.samples, ctx.settings.encryption_keys):
        click.echo(
            "warning: BRIDGE_ENCRYPTION_KEYS of this shell do not read the data just backed up; "
            "keep the keys the service uses with the backup's records, or it cannot be restored",
            err=True,
        )


@click.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--force",
    is_flag=True,
    help="Replace a store that holds data (e.g. going back to the backup taken before an upgrade).",
)
@pass_context
def restore_command(ctx: Context, path: Path, force: bool) -> None:
    """Bring the backup PATH back into the store of DATABASE_URL; stop the service first.

    The store must be empty unless --force. A backup of a newer release, or one whose data
    BRIDGE_ENCRYPTION_KEYS cannot read, is refused before anything changes.
    """
    settings = ctx.settings
    try:
        restored = restore(settings.database_url, path, settings.encryption_keys, force=force)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"restored {restored.manifest.describe()}")
    if restored.needs_migrate:
        click.echo("the schema is older than this release: run `python -m bridge migrate` next")
