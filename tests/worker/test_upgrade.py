"""An upgrade: a database of an earlier release, with cases waiting, is migrated and delivered.

The database is made at schema revision 0006, the schema of release 0.1.0 (CHANGELOG.md);
upgrading from it runs every migration of 0.2.0 (0007 to 0009) and its
rows are written with plain SQL, as that release stored them: a case pending, one failed (on
the dead-letter list) and one awaiting its fee. `python -m bridge migrate` upgrades it; real
worker and sweeper processes then deliver the pending case, the failed one after the operator's
replay, and the fee-held one only once its payment is confirmed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import text

from demo_backoffice import DemoBackOffice
from domain.payments import payments
from domain.payments.payments import Confirmed
from domain.settings import Settings
from harness.waiting import wait_for
from infra.crypto import Vault
from store.engine import Store
from store.migrations import upgrade
from store.models import DeliveryStatus, SubmissionStatus
from tests.conftest import bridge_cli
from tests.factories import dog, traffic
from tests.worker.conftest import Processes, deliveries

PREVIOUS_SCHEMA = "0006"  # release 0.1.0
PENDING, FAILED, HELD = "a" * 32, "b" * 32, "c" * 32
PAYMENT = "d" * 32


def _stamp(moment: dt.datetime) -> str:
    """A naive UTC time as the store writes it (a string both stores cast)."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")


def _old_rows(url: str, vault: Vault) -> None:
    """Three cases as the release at revision 0006 stored them, written with plain SQL."""
    now = dt.datetime.now(dt.UTC)
    earlier = _stamp(now - dt.timedelta(hours=1))
    submission = text(
        "INSERT INTO submissions (id, reference_prefix, reference_year, service, schema, sender, "
        "idempotency_key, fingerprint, municipality_ags, status, flags, data, received_at, "
        "updated_at) VALUES (:id, :prefix, 2026, :service, :schema, 'formcycle', :key, NULL, "
        ":ags, :status, '{}', :data, :at, :at)"
    )
    delivery = text(
        "INSERT INTO deliveries (id, submission_id, office_id, task_area, channel, status, "
        "attempts, next_attempt_at, last_error, created_at, updated_at, kind) VALUES "
        "(:id, :sub, :office, :area, 'http-json', :status, :attempts, :due, :error, :at, :at, "
        "'case')"
    )
    cases: list[dict[str, Any]] = [
        {"id": 1, "prefix": "NA", "service": "dog-registration", "ags": "06434007",
         "status": SubmissionStatus.ROUTED, "data": dog({"dog.name": "Bello"})},
        {"id": 2, "prefix": "NA", "service": "dog-registration", "ags": "06434007",
         "status": SubmissionStatus.FAILED, "data": dog({"dog.name": "Hasso"})},
        {"id": 3, "prefix": "US", "service": "traffic-order", "ags": "06434011",
         "status": SubmissionStatus.AWAITING_PAYMENT, "data": traffic()},
    ]  # fmt: skip
    sends: list[dict[str, Any]] = [
        {"id": PENDING, "sub": 1, "office": "usingen-steueramt", "area": "tax",
         "status": DeliveryStatus.PENDING, "attempts": 0, "due": earlier, "error": None},
        {"id": FAILED, "sub": 2, "office": "usingen-steueramt", "area": "tax",
         "status": DeliveryStatus.FAILED, "attempts": 7, "due": None, "error": "HTTP 503"},
        {"id": HELD, "sub": 3, "office": "neu-anspach-ordnungsamt", "area": "public-order",
         "status": DeliveryStatus.HELD, "attempts": 0, "due": None, "error": None},
    ]  # fmt: skip
    engine = Store.from_url(url).engine
    try:
        with engine.begin() as conn:
            for case in cases:
                schema = f"{case['service']}@1"
                conn.execute(
                    submission,
                    {**case, "schema": schema, "key": f"fc-{case['id']}", "at": earlier,
                     "data": vault.encrypt_json(case["data"])},
                )  # fmt: skip
            for send in sends:
                conn.execute(delivery, {**send, "at": earlier})
            conn.execute(
                text(
                    "INSERT INTO payments (id, submission_id, provider, transaction_id, "
                    "transaction_reference, pay_url, amount_cents, currency, purpose, status, "
                    "origin, created_at, updated_at, expires_at, attempts) VALUES (:id, 3, "
                    "'epay21-demo', 'TX-OLD-1', NULL, 'http://127.0.0.1:1/pay', 3500, 'EUR', "
                    "'US-2026-000003 Halteverbot', 'INITIAL', 'bridge', :at, :at, :expires, 0)"
                ),
                {"id": PAYMENT, "at": earlier, "expires": _stamp(now + dt.timedelta(hours=71))},
            )
    finally:
        engine.dispose()


def _status(store: Store, delivery_id: str) -> str | None:
    found = [d.status for d in deliveries(store) if d.id == delivery_id]
    return found[0] if found else None


def test_upgrade_from_the_previous_schema_delivers_what_waited(
    environ: dict[str, str],
    settings: Settings,
    backoffice: DemoBackOffice,
    processes: Processes,
    fresh_database_url: str,
) -> None:
    """Pending, failed and fee-held cases of revision 0006 are delivered after `migrate`."""
    old = Store.from_url(fresh_database_url)
    upgrade(old.engine, PREVIOUS_SCHEMA)  # what the earlier release's `migrate` made
    old.dispose()
    _old_rows(fresh_database_url, Vault(settings.encryption_keys))

    env = {**environ, "DATABASE_URL": fresh_database_url}
    migrated = bridge_cli(env, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.startswith(
        f"upgraded the database schema from revision {PREVIOUS_SCHEMA}"
    )

    store = Store.from_url(fresh_database_url)
    try:
        processes.env["DATABASE_URL"] = fresh_database_url
        processes.worker()
        processes.sweeper()
        wait_for(
            lambda: _status(store, PENDING) == DeliveryStatus.DELIVERED,
            timeout=60,  # the first wait also waits for the processes to start
            what="the pending case",
        )
        [filed] = backoffice.cases("usingen-steueramt")
        assert filed["reference"] == "NA-2026-000001"
        document = backoffice.document("usingen-steueramt", PENDING)
        assert document["data"]["dog"]["name"] == "Bello"

        replayed = bridge_cli(env, "replay", "--delivery", FAILED, "--reason", "after the upgrade")
        assert replayed.returncode == 0, replayed.stderr
        wait_for(
            lambda: _status(store, FAILED) == DeliveryStatus.DELIVERED,
            timeout=60,
            what="the replay",
        )
        assert backoffice.document("usingen-steueramt", FAILED)["data"]["dog"]["name"] == "Hasso"
        # Still held: the fee is not paid, whatever the workers and the sweeper did meanwhile.
        assert _status(store, HELD) == DeliveryStatus.HELD
        assert backoffice.cases("neu-anspach-ordnungsamt") == []

        paid = Confirmed("PAYED", 3500, "EUR", transaction_reference="KZ-OLD-1", method="GIROPAY")
        assert payments.apply(store, settings.config, PAYMENT, paid, "test").verdict == "applied"
        wait_for(
            lambda: _status(store, HELD) == DeliveryStatus.DELIVERED,
            timeout=60,
            what="the paid case",
        )
        [case] = backoffice.cases("neu-anspach-ordnungsamt")
        assert case["reference"] == "US-2026-000003"
        # And the cash office hears of the payment.
        wait_for(
            lambda: backoffice.cases("usingen-stadtkasse"), timeout=60, what="the payment notice"
        )
    finally:
        store.dispose()
