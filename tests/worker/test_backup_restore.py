"""A backup taken while cases arrive restores every acknowledged case, and deliveries resume.

Both stores: cases are posted by a thread the whole time `python -m bridge backup` runs; the
backup is restored into a fresh store (migrated first, as a new server is); every case whose
202 came before the backup began is there, its data and files readable with the keys, and real
worker and sweeper processes on the restored store deliver it to the back office.
"""

from __future__ import annotations

import threading
from pathlib import Path

from flask import Flask
from sqlalchemy import select

from demo_backoffice import DemoBackOffice
from harness.waiting import wait_for
from infra.crypto import Vault
from store.engine import Store
from store.models import DeliveryStatus, Submission, parse_reference
from tests.conftest import bridge_cli
from tests.factories import PDF, dog, flatten, traffic
from tests.webhook_support import FilePart, form_body, multipart_body, post
from tests.worker.conftest import Processes, deliveries


class Arrivals:
    """Cases posted one after another by a thread until stopped; the acknowledged ones recorded."""

    def __init__(self, app: Flask) -> None:
        """Start posting at once."""
        self.app = app
        # (reference, what identifies the case's data: a dog's name or the site plan's bytes)
        self.acknowledged: list[tuple[str, str | bytes]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._post, daemon=True)
        self._thread.start()

    def _post(self) -> None:
        client = self.app.test_client()
        number = 0
        while not self._stop.is_set():
            number += 1
            if number % 3 == 0:
                plan = PDF + f"% Lageplan {number}\n".encode()
                body, content_type = multipart_body(
                    flatten(traffic(reason="construction")),
                    [FilePart("site_plan", "Lageplan.pdf", "application/pdf", plan)],
                )
                mark: str | bytes = plan
                response = post(client, "traffic-order", body, content_type)
            else:
                mark = f"Rex {number}"
                response = post(client, "dog-registration", form_body(dog({"dog.name": mark})))
            if response.status_code != 202:
                self.errors.append(f"{response.status_code} {response.get_data(as_text=True)}")
                continue
            self.acknowledged.append((response.get_json()["reference"], mark))

    def stop(self) -> None:
        """Stop posting and wait for the thread."""
        self._stop.set()
        self._thread.join(60)


def _readable(store: Store, vault: Vault, reference: str, mark: str | bytes) -> bool:
    """The case is in `store`, and its data (or its site plan) decrypts to what was sent."""
    parsed = parse_reference(reference)
    assert parsed is not None
    with store.read() as session:
        found = session.scalars(select(Submission).where(Submission.id == parsed[2])).first()
        if found is None or found.reference != reference or found.data is None:
            return False
        data = vault.decrypt_json(found.data)
        if isinstance(mark, str):
            return bool(data["dog"]["name"] == mark)
        [attachment] = found.attachments
        assert attachment.content is not None
        return vault.decrypt(attachment.content) == mark


def test_backup_while_cases_arrive_then_restore_and_deliver(
    app: Flask,
    environ: dict[str, str],
    backoffice: DemoBackOffice,
    processes: Processes,
    fresh_database_url: str,
    tmp_path: Path,
) -> None:
    """Every case acknowledged before the backup began is restored, readable and delivered."""
    path = tmp_path / "during-intake.backup"
    arrivals = Arrivals(app)
    try:
        wait_for(
            lambda: len(arrivals.acknowledged) >= 6, timeout=60, what="the first acknowledged cases"
        )
        before_backup = list(arrivals.acknowledged)
        made = bridge_cli(environ, "backup", str(path))
        during = len(arrivals.acknowledged) - len(before_backup)
    finally:
        arrivals.stop()
    assert made.returncode == 0, made.stderr
    assert arrivals.errors == []
    # Cases kept arriving (and were acknowledged) while the backup ran.
    assert during > 0

    fresh = {**environ, "DATABASE_URL": fresh_database_url}
    migrated = bridge_cli(fresh, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    restored = bridge_cli(fresh, "restore", str(path))
    assert restored.returncode == 0, restored.stderr

    store = Store.from_url(fresh_database_url)
    try:
        vault = Vault(environ["BRIDGE_ENCRYPTION_KEYS"].split(","))
        for reference, mark in before_backup:
            assert _readable(store, vault, reference, mark), reference
        # The restored store is the one the bridge runs on now: its workers deliver what waits.
        processes.env["DATABASE_URL"] = fresh_database_url
        processes.worker()
        processes.sweeper()
        wait_for(
            lambda: all(d.status == DeliveryStatus.DELIVERED for d in deliveries(store)),
            timeout=120,
            what="every restored delivery delivered",
        )
        filed = {case["reference"] for case in backoffice.cases()}
        assert {reference for reference, _ in before_backup} <= filed
    finally:
        store.dispose()
