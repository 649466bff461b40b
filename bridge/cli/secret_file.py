"""`python -m bridge secrets --env-file PATH`: fresh values for every secret still missing there.

It reads the routing file (`--config`, else BRIDGE_CONFIG of the env file, else of the
environment) and the settings' list of secrets, keeps every value the env file has, and adds
the missing ones: Fernet keys, `whsec_` signing secrets and shared secrets made here; a
credential another party issues gets an empty line to fill in. Exit codes: 0 done (also when
something is left to fill in, which it names); 2 the env file or the routing file is unusable.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from domain.config import ConfigError, load_config
from domain.secret_inventory import NeededSecret, fresh_value, needed_secrets
from domain.settings import config_path_from_env
from infra.env_file import EnvFileError, read_env_file, write_env_file


@click.command("secrets")
@click.option(
    "--env-file",
    "env_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The environment file to complete (made with mode 0600 when missing).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The routing file (default: BRIDGE_CONFIG of the env file, else of the environment).",
)
def secrets_command(env_path: Path, config_path: Path | None) -> None:
    """Write fresh values for the secrets the routing file and the settings name, never
    changing one that is set; name the credentials someone else must hand over."""
    try:
        env = read_env_file(env_path)
    except EnvFileError as exc:
        click.echo(f"refused: {exc}", err=True)
        sys.exit(2)
    present = env.values()
    if config_path is None:
        named = present.get("BRIDGE_CONFIG")
        config_path = Path(named) if named else config_path_from_env()
    try:
        config = load_config(config_path, {}, check_secrets=False)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    needed = needed_secrets(config)
    missing = [s for s in needed if not present.get(s.name)]
    made = {s.name: fresh_value(s.kind) for s in missing if s.made_here}
    to_fill = [s for s in missing if not s.made_here]
    placeholders = {s.name: "" for s in to_fill if s.name not in present}
    if made or placeholders or not env.exists:
        notes = {s.name: _note(s) for s in missing}
        write_env_file(env, env.with_values({**made, **placeholders}, notes))
    kept = len(needed) - len(missing)
    for secret in missing:
        if secret.made_here:
            click.echo(f"added {secret.name} ({secret.kind}; {', '.join(secret.where)})")
    click.echo(f"{env_path}: {len(made)} added, {kept} kept (mode 0600)")
    for secret in to_fill:
        click.echo(
            f"fill in {secret.name}: the {secret.kind} for {', '.join(secret.where)}",
            err=True,
        )


def _note(secret: NeededSecret) -> str:
    """The comment above an appended line: where the secret is used and who makes it."""
    who = "made by python -m bridge secrets" if secret.made_here else "fill in what they issued"
    return f"{', '.join(secret.where)}: {secret.kind}, {who}"
