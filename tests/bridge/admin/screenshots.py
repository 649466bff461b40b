"""Make the README's screenshots of the admin page: `scripts/screenshots` (not a test).

Demo data only (the test factories' invented citizens): a weekend on which the tax office's
back office was down, seen on Monday. Runs the bridge on a real server with a private Redis
and takes the pictures in Debian's Chromium, as the browser tests do.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from flask import Flask
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import select

from bridge import create_app
from demo_backoffice import DemoBackOffice
from domain.accounts.accounts import Actor, create_account
from domain.accounts.passwords import ScryptParams
from domain.payments.payments import Confirmed, apply
from domain.settings import Settings
from store.engine import Store, make_engine
from store.migrations import upgrade
from store.models import Delivery, Event, Payment, Submission, utcnow
from tests.bridge.admin.browser import chromium, served
from tests.conftest import FORMCYCLE_SECRET, ROOT, base_environ
from tests.factories import dog, traffic
from tests.worker.conftest import routing_config

OUT = ROOT / "docs" / "screenshots"
PASSWORD = "Demo-Passwort-2026!"  # a throwaway account of a throwaway database
KDF = ScryptParams(n=2**14)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is missing: apt-get install -y redis-server")
    port = _port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        try:
            Redis.from_url(url).ping()
            break
        except RedisError:
            time.sleep(0.05)
    return proc, url


def _demo_data(store: Store, post: list[str]) -> str:
    """Shape the posted submissions into a Monday morning; returns a failed case's reference."""
    now = utcnow()
    failed_case = ""
    with store.session() as session:
        deliveries = list(session.scalars(select(Delivery).order_by(Delivery.created_at)))
        for i, delivery in enumerate(deliveries):
            submission = session.get(Submission, delivery.submission_id)
            assert submission is not None
            weekend = delivery.office_id == "usingen-steueramt" and i % 3 != 0
            if weekend:
                failed_at = now - dt.timedelta(days=2, hours=i)
                delivery.status = "failed"
                delivery.attempts = 8
                delivery.last_status_code = 503
                delivery.last_error = "HTTP 503 Service Unavailable"
                delivery.next_attempt_at = None
                delivery.updated_at = failed_at
                submission.status = "failed"
                # Received on Friday evening, like the rest of the weekend's cases.
                received = failed_at - dt.timedelta(hours=40)
                submission.received_at = received
                for event in submission.events:
                    event.at = received
                for hours in (30, 12, 2):
                    session.add(
                        Event(
                            submission_id=submission.id,
                            delivery_id=delivery.id,
                            kind="delivery.retry_scheduled",
                            actor="worker",
                            at=failed_at - dt.timedelta(hours=hours),
                            detail={"error": "HTTP 503 Service Unavailable"},
                        )
                    )
                session.add(
                    Event(
                        submission_id=submission.id,
                        delivery_id=delivery.id,
                        kind="delivery.failed",
                        actor="worker",
                        at=failed_at,
                        detail={"error": "HTTP 503 Service Unavailable", "permanent": False},
                    )
                )
                failed_case = failed_case or submission.reference
            else:
                delivery.status = "delivered"
                delivery.attempts = 1
                delivery.delivered_at = now - dt.timedelta(days=i % 9, hours=1)
                delivery.case_number = f"VG-2026-{4711 + i}"
                delivery.next_attempt_at = None
                submission.status = "delivered"
        # Two earlier failures of the public-order office, last week.
        for days in (6, 9):
            session.add(
                Event(
                    delivery_id=deliveries[0].id,
                    kind="delivery.failed",
                    actor="worker",
                    at=now - dt.timedelta(days=days),
                    detail={"error": "timeout"},
                )
            )
    return failed_case


def _paid(app: Flask, store: Store, reference: str) -> None:
    """The traffic order's fee paid by giropay, applied as the provider's confirmation is."""
    number = int(reference.rsplit("-", 1)[1])
    with store.read() as session:
        payment = session.scalars(select(Payment).where(Payment.submission_id == number)).one()
        payment_id, cents = payment.id, payment.amount_cents
    confirmed = Confirmed(
        "PAYED", cents, "EUR", transaction_reference="KZ-2026-004711", method="GIROPAY"
    )
    apply(store, app.extensions["bridge"].settings.config, payment_id, confirmed, "provider")


def main() -> None:
    """Build the demo, take the pictures, write them under docs/screenshots/."""
    with tempfile.TemporaryDirectory() as tmp, DemoBackOffice() as backoffice:
        work = Path(tmp)
        redis_proc, redis_url = _redis(work)
        try:
            url = f"sqlite:///{work / 'bridge.db'}"
            engine = make_engine(url)
            upgrade(engine)
            engine.dispose()
            # The offices at a demo back office on loopback: "Stelle erreichbar" is true.
            routing = work / "routing.toml"
            routing.write_text(routing_config(backoffice.url), encoding="utf-8")
            settings = Settings.from_env(
                base_environ(
                    url, redis_url, BRIDGE_PASSWORD_SCRYPT_N=str(KDF.n), BRIDGE_CONFIG=str(routing)
                )
            )
            app = create_app(settings)
            store: Store = app.extensions["bridge"].store
            client = app.test_client()
            references = []
            for i in range(14):
                body = dog() if i % 2 == 0 else traffic()
                service = "dog-registration" if i % 2 == 0 else "traffic-order"
                answer = client.post(
                    f"/webhooks/formcycle/{service}",
                    json=body,
                    headers={"X-Bridge-Secret": FORMCYCLE_SECRET, "Idempotency-Key": f"demo-{i}"},
                )
                assert answer.status_code == 202, answer.get_data(as_text=True)
                references.append(answer.get_json()["reference"])
            failed_case = _demo_data(store, references)
            paid_case = references[1]  # a traffic order, delivered, with its fee paid
            _paid(app, store, paid_case)
            create_account(
                store,
                "anna.schmidt",
                PASSWORD,
                "operator",
                actor=Actor("setup", "admin", via="cli"),
                kdf=KDF,
            )
            OUT.mkdir(parents=True, exist_ok=True)
            with served(app) as base, chromium() as browser:
                page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="de-DE")
                page.goto(base + "/admin/login")
                page.get_by_label("Benutzername").fill("anna.schmidt")
                page.get_by_label("Passwort").fill(PASSWORD)
                page.get_by_role("button", name="Anmelden").click()
                page.wait_for_url(base + "/admin/")
                page.screenshot(path=str(OUT / "admin-overview.png"), full_page=True)
                page.goto(f"{base}/admin/fehler")
                page.screenshot(path=str(OUT / "admin-failures.png"), full_page=True)
                page.goto(f"{base}/admin/antraege/{failed_case}")
                page.screenshot(path=str(OUT / "admin-case.png"), full_page=True)
                page.goto(f"{base}/admin/antraege/{paid_case}")
                page.screenshot(path=str(OUT / "admin-case-paid.png"), full_page=True)
                # No worker runs here: the bulk replay stays running for its picture.
                page.goto(f"{base}/admin/fehler")
                page.get_by_role("button", name=re.compile("Alle gefilterten")).click()
                page.get_by_role("button", name=re.compile("^Jetzt .* erneut senden$")).click()
                page.wait_for_url(re.compile(r".*/admin/sammel/\d+$"))
                page.screenshot(path=str(OUT / "admin-bulk-progress.png"), full_page=True)
            store.dispose()
        finally:
            redis_proc.terminate()
            redis_proc.wait(10)
    print(f"wrote the admin page's pictures under {OUT}")


if __name__ == "__main__":
    main()
