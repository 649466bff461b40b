"""The operators' CLI: the same filters and actions as the API, with meaningful exit codes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from domain.payments.pay_links import pay_token
from store.engine import Store, make_engine
from store.migrations import upgrade
from store.models import BulkReplay, Delivery, Event, Payment
from tests.admin_support import fail_all, post
from tests.conftest import bridge_cli, snapshot


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: each command starts a process (about a second each); the operations
    themselves run on both stores in test_operations_domain and test_admin_api."""
    url = f"sqlite:///{tmp_path / 'bridge.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def test_list_and_bad_usage(client: FlaskClient, store: Store, environ: dict[str, str]) -> None:
    """`submissions list` filters; nothing matched is 1; a bad filter is 2 and says why."""
    dog = post(client)
    post(client, "traffic-order")
    listed = bridge_cli(environ, "submissions", "list", "--service", "dog-registration")
    assert listed.returncode == 0, listed.stderr
    assert dog in listed.stdout
    assert "1 submission(s), page 1/1" in listed.stdout
    empty = bridge_cli(environ, "submissions", "list", "--to", "2020-01-01")
    assert empty.returncode == 1
    bad = bridge_cli(environ, "submissions", "list", "--office", "nowhere", "--from", "gestern")
    assert bad.returncode == 2
    assert "Der Filter ist ungültig." in bad.stderr
    assert "office: Unbekannte Dienststelle" in bad.stderr
    assert "from: Kein Datum" in bad.stderr


def test_bulk_replay_dry_run_start_status_cancel(
    client: FlaskClient, store: Store, environ: dict[str, str]
) -> None:
    """Dry run counts and changes nothing; a start is recorded with the operator; cancel it."""
    for _ in range(3):
        post(client)
    fail_all(store)
    before = snapshot(store)
    dry = bridge_cli(environ, "replay", "--filter", "office=usingen-steueramt", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "3 failed deliveries match; nothing was changed (dry run)" in dry.stdout
    none = bridge_cli(environ, "replay", "--filter", "service=traffic-order", "--dry-run")
    assert none.returncode == 0, none.stderr  # nothing to replay is no failure (cron jobs)
    assert "0 failed deliveries match" in none.stdout
    typo = bridge_cli(environ, "replay", "--filter", "ofice=x", "--reason", "r")
    assert typo.returncode == 2
    no_reason = bridge_cli(environ, "replay", "--filter", "office=usingen-steueramt")
    assert no_reason.returncode == 1
    assert "Bitte einen Grund angeben." in no_reason.stderr
    assert snapshot(store) == before
    started = bridge_cli(
        environ, "replay", "--filter", "office=usingen-steueramt", "--reason", "Amt wieder da",
        "--by", "erika", "--no-wait",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    assert "bulk replay 1 started: 3 deliveries, at most 5/s per office" in started.stdout
    busy = bridge_cli(environ, "replay", "--filter", "", "--reason", "noch einer")
    assert busy.returncode == 2  # "" is not KEY=VALUE
    busy = bridge_cli(environ, "replay", "--filter", "service=dog-registration", "--reason", "x")
    assert busy.returncode == 1
    assert "Es läuft bereits eine Sammel-Wiederholung." in busy.stderr
    status = bridge_cli(environ, "replay-status", "1")
    assert status.returncode == 0
    assert "by cli:erika: Amt wieder da" in status.stdout
    assert "0 of 3 sent" in status.stdout
    assert bridge_cli(environ, "replay-status", "7").returncode == 1
    cancelled = bridge_cli(
        environ, "cancel", "--replay", "1", "--reason", "doch nicht", "--by", "erika"
    )
    assert cancelled.returncode == 0, cancelled.stderr
    assert "(status cancelled)" in cancelled.stdout
    with store.read() as session:
        assert session.scalars(select(BulkReplay.status)).one() == "cancelled"
        assert set(session.scalars(select(Delivery.status))) == {"failed"}
        actors = set(session.scalars(select(Event.actor).where(Event.kind.like("admin.%"))))
    assert actors == {"cli:erika"}
    again = bridge_cli(environ, "cancel", "--replay", "1", "--reason", "nochmal")
    assert again.returncode == 1


def test_bulk_replay_waits_with_progress(
    client: FlaskClient, store: Store, environ: dict[str, str]
) -> None:
    """With --wait the CLI follows the replay until every delivery was tried, then sums up."""
    post(client)
    fail_all(store)
    # No worker runs here; the delivery is delivered "by the office" while the CLI waits.
    import subprocess
    import sys
    import threading
    import time

    from sqlalchemy import update

    from tests.conftest import ROOT

    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge", "replay", "--filter", "service=dog-registration",
         "--reason", "wieder da"],
        env={"PATH": "/usr/bin:/bin", **environ}, cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip

    def deliver() -> None:
        for _ in range(100):
            with store.session() as session:
                if session.scalar(select(BulkReplay.id)) is not None:
                    session.execute(update(Delivery).values(status="delivered", attempts=1))
                    return
            time.sleep(0.1)

    thread = threading.Thread(target=deliver)
    thread.start()
    out, err = proc.communicate(timeout=60)
    thread.join()
    assert proc.returncode == 0, err
    assert "bulk replay 1: 1 of 1 sent, 1 delivered, 0 failed again" in out


def test_cancel_and_reroute_exit_codes(
    client: FlaskClient, store: Store, environ: dict[str, str]
) -> None:
    """A refused re-route is 1 with the reason; cancelling a case is 0, again 1."""
    reference = post(client)
    (delivery_id,) = fail_all(store)
    refused = bridge_cli(
        environ, "reroute", "--delivery", delivery_id, "--office", "neu-anspach-ordnungsamt",
        "--reason", "Umzug",
    )  # fmt: skip
    assert refused.returncode == 1
    assert "desselben Aufgabengebiets" in refused.stderr
    done = bridge_cli(environ, "cancel", "--reference", reference, "--reason", "doppelt")
    assert done.returncode == 0, done.stderr
    again = bridge_cli(environ, "cancel", "--reference", reference, "--reason", "doppelt")
    assert again.returncode == 1
    assert "bereits abgebrochen" in again.stdout
    assert bridge_cli(environ, "cancel", "--reason", "x").returncode == 2


def test_nothing_to_do_is_success(
    client: FlaskClient, store: Store, environ: dict[str, str]
) -> None:
    """A purge or replay that finds nothing exits 0 (a nightly cron job must not report a
    failure), dry run or not, and says so; nothing changes."""
    post(client)  # delivered or pending, never due for a purge, never failed
    before = snapshot(store)
    for args in (("purge", "--dry-run"), ("purge",)):
        done = bridge_cli(environ, *args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        assert "0 submission(s)" in done.stdout
    nothing = bridge_cli(environ, "replay", "--filter", "service=traffic-order", "--reason", "x")
    assert nothing.returncode == 0, nothing.stderr
    assert "nothing to replay" in nothing.stdout
    assert snapshot(store) == before


def test_cancel_an_unpaid_case(client: FlaskClient, store: Store, environ: dict[str, str]) -> None:
    """`cancel --reference` on a traffic order awaiting its fee: 0, the held delivery is
    cancelled and the payment withdrawn; the pay link then says so and creates nothing."""
    reference = post(client, "traffic-order")
    done = bridge_cli(environ, "cancel", "--reference", reference, "--reason", "zurückgezogen")
    assert done.returncode == 0, done.stderr
    assert "Der Antrag ist zurückgezogen" in done.stdout
    with store.read() as session:
        assert session.scalars(select(Delivery.status)).one() == "cancelled"
        assert session.scalars(select(Payment.status)).one() == "withdrawn"
    before = snapshot(store)
    token = pay_token(
        reference,
        encryption_keys=tuple(environ["BRIDGE_ENCRYPTION_KEYS"].split(",")),
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
    )
    page = client.get(f"/pay/{reference}", query_string={"token": token})
    assert page.status_code == 200
    assert "Der Antrag wurde zurückgezogen" in page.get_data(as_text=True)
    assert snapshot(store) == before
    again = bridge_cli(environ, "cancel", "--reference", reference, "--reason", "zurückgezogen")
    assert again.returncode == 1
    assert "bereits abgebrochen" in again.stdout
