"""`python -m bridge formcycle <service>`: the form designer's sheet of element names.

It reads only the routing file (BRIDGE_CONFIG, else the shipped one) and needs no database,
Redis or secrets, so a form designer can run it anywhere the bridge is installed.
"""

from __future__ import annotations

import sys

import click

from domain.config import ConfigError, load_config
from domain.formcycle_sheet import csv_text, markdown, rows
from domain.settings import config_path_from_env


@click.command("formcycle")
@click.argument("service_id", metavar="SERVICE")
@click.option(
    "--format",
    "output",
    type=click.Choice(["markdown", "csv"]),
    default="markdown",
    show_default=True,
    help="Markdown (the docs page) or CSV (for a spreadsheet).",
)
def formcycle_command(service_id: str, output: str) -> None:
    """Print the Formcycle element names of SERVICE with label, type, requirement and limits."""
    try:
        config = load_config(config_path_from_env(), {}, check_secrets=False)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    service = config.services.get(service_id)
    if service is None:
        known = ", ".join(sorted(config.services)) or "none"
        raise click.UsageError(f"unknown service {service_id!r}; the services are: {known}")
    sheet = rows(service)
    click.echo(markdown(service, sheet) if output == "markdown" else csv_text(sheet), nl=False)
