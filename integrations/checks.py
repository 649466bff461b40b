"""Start-up checks of the routing configuration that need the channel plugins."""

from __future__ import annotations

import sys

import click

from domain.config import Config
from domain.settings import Settings, SettingsError
from integrations.channels import validate_options
from integrations.payment_providers import validate_provider_options


def office_problems(config: Config) -> list[str]:
    """Every office whose channel is unknown or whose options its channel refuses."""
    problems: list[str] = []
    for office in config.offices.values():
        _, found = validate_options(office.channel, office.options)
        problems.extend(f"offices.{office.id}.options.{p}" for p in found)
    return problems


def provider_problems(config: Config) -> list[str]:
    """Every payment provider whose plugin is unknown or whose options its plugin refuses."""
    problems: list[str] = []
    for provider in config.payment_providers.values():
        _, found = validate_provider_options(provider.plugin, provider.options)
        problems.extend(
            f"payment_providers.{provider.id}.{p if p.startswith('plugin') else 'options.' + p}"
            for p in found
        )
    return problems


def plain_mail_warnings(settings: Settings) -> list[str]:
    """Every place that sends e-mail without TLS because its configuration asks for it."""
    warnings = [
        f"office {office.id} ({office.name}) sends e-mail without TLS "
        '(tls = "insecure"): only for a mail server on the same machine'
        for office in settings.config.offices.values()
        if office.channel == "email" and office.options.get("tls") == "insecure"
    ]
    if settings.smtp_tls == "insecure":
        warnings.append(
            "BRIDGE_SMTP_TLS=insecure: the daily digest is sent without TLS "
            f"to {settings.smtp_host}:{settings.smtp_port}"
        )
    return warnings


def checked(settings: Settings) -> Settings:
    """The settings, if every office's channel and every provider's options are valid."""
    problems = office_problems(settings.config) + provider_problems(settings.config)
    if problems:
        raise SettingsError(problems)
    return settings


def settings_or_exit() -> Settings:
    """Settings for a command-line entry point; on problems print them all and exit 2.

    The environment, the file and the plugins' options are all checked in one run: when the
    file has problems of its own, its readable rest still goes through the channel checks.
    """
    try:
        return checked(Settings.from_env())
    except SettingsError as exc:
        problems = list(exc.problems)
        if exc.config is not None:  # `checked` raises without one: its problems are these
            problems += office_problems(exc.config) + provider_problems(exc.config)
        click.echo(str(SettingsError(problems)), err=True)
        sys.exit(2)
