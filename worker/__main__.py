"""`python -m worker work|sweep`: the delivery worker and the sweeper processes."""

from __future__ import annotations

import click

from infra.logs import configure_logging
from integrations.checks import settings_or_exit


@click.group()
def main() -> None:
    """Formcycle/Civento bridge: background processes."""


@main.command()
@click.option("--burst", is_flag=True, help="Stop when the queue is empty (tests, one-off runs).")
@click.option(
    "--fork/--no-fork",
    default=False,
    help="Run each job in a forked child (isolation) or in the worker process (speed, default).",
)
def work(burst: bool, fork: bool) -> None:
    """Run a delivery worker; it outlives Redis outages (reconnecting with backoff)."""
    import worker.jobs  # noqa: F401 - load the job code before forking
    from worker.runner import run

    settings = settings_or_exit()
    configure_logging(settings.log_level, settings.log_format)
    run(settings, burst=burst, fork=fork)


@main.command()
def sweep() -> None:
    """Re-enqueue due deliveries that no job is working on, every BRIDGE_SWEEP_INTERVAL_S."""
    from worker.sweeper import run

    settings = settings_or_exit()
    configure_logging(settings.log_level, settings.log_format)
    run(settings)


if __name__ == "__main__":
    main()
