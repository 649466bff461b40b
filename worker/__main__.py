"""`python -m worker work|sweep`: the delivery worker and the sweeper processes."""

from __future__ import annotations

import click

from domain.logs import configure_logging
from worker.checks import settings_or_exit


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
    """Run an RQ worker on the delivery queue."""
    from redis import Redis
    from rq import SimpleWorker, Worker

    import worker.jobs  # noqa: F401 - load the job code before forking
    from worker.queue import delivery_queue

    settings = settings_or_exit()
    configure_logging(settings.log_level, settings.log_format)
    redis = Redis.from_url(settings.redis_url)
    cls = Worker if fork else SimpleWorker
    w = cls([delivery_queue(redis)], connection=redis, serializer=delivery_queue(redis).serializer)
    w.work(burst=burst, with_scheduler=False, logging_level=settings.log_level)


@main.command()
def sweep() -> None:
    """Re-enqueue due deliveries that no job is working on, every BRIDGE_SWEEP_INTERVAL_S."""
    from worker.sweeper import run

    settings = settings_or_exit()
    configure_logging(settings.log_level, settings.log_format)
    run(settings)


if __name__ == "__main__":
    main()
