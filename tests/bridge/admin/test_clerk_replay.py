"""The bulk replay as a clerk does it (issue 19, items 1 and 4): a reason chosen from a short
list, and per office whether it is back, against a real loopback back office up and down."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from bridge.admin.office_state import EXTENSION
from demo_backoffice import DemoBackOffice
from integrations.reachability import ReachabilityMonitor
from store.engine import Store
from store.models import BulkReplay, Delivery, Event, utcnow
from tests.admin_support import fail_all, post
from tests.bridge.admin.conftest import csrf_of
from tests.conftest import snapshot
from tests.worker.conftest import (  # noqa: F401 - fixtures are found by name
    backoffice,
    config_extra,
    environ,
)

CHECKED = re.compile(r"Stelle erreichbar \(geprüft \d\d:\d\d\)")
DOWN = re.compile(r"Stelle nicht erreichbar \(geprüft \d\d:\d\d\)")


def _confirmation(client: FlaskClient) -> tuple[str, dict[str, str]]:
    page = client.get("/admin/fehler/alle-erneut-senden")
    html = page.get_data(as_text=True)
    count = html.split('id="bulk-count">')[1].split("<")[0]
    return html, {"csrf_token": csrf_of(page), "expected": count}


def test_the_preselected_reason_is_recorded(operator: FlaskClient, store: Store) -> None:
    """Confirmed as shown (the likely reason preselected, no text typed): the replay starts and
    every case's history records the reason in words; a typed addition is appended."""
    post(operator)
    post(operator)
    fail_all(store)
    html, form = _confirmation(operator)
    checked = re.search(r'name="reason_choice" value="([a-z-]+)" checked', html)
    assert checked is not None
    assert checked.group(1) == "wieder-erreichbar"
    started = operator.post(
        "/admin/fehler/alle-erneut-senden", data={**form, "reason_choice": checked.group(1)}
    )
    assert started.status_code == 303
    with store.read() as session:
        job = session.scalars(select(BulkReplay)).one()
        replayed = [
            e.detail.get("reason")
            for e in session.scalars(select(Event).where(Event.kind == "delivery.replayed"))
        ]
    assert job.reason == "Stelle war nicht erreichbar, jetzt wieder erreichbar"
    assert replayed == [job.reason, job.reason]
    progress = operator.get(started.headers["Location"]).get_data(as_text=True)
    assert "Stelle war nicht erreichbar, jetzt wieder erreichbar" in progress


def test_a_typed_addition_follows_the_chosen_reason(operator: FlaskClient, store: Store) -> None:
    """The free text is optional; when given it follows the chosen sentence."""
    post(operator)
    fail_all(store)
    _, form = _confirmation(operator)
    data = {**form, "reason_choice": "stelle-behoben", "reason": "Update vom Sonntag"}
    assert operator.post("/admin/fehler/alle-erneut-senden", data=data).status_code == 303
    with store.read() as session:
        reason = session.scalars(select(BulkReplay.reason)).one()
    assert (
        reason == "Die Stelle hat einen Fehler in ihrem Fachverfahren behoben: Update vom Sonntag"
    )


def test_other_reason_needs_text_and_unknown_choices_are_refused(
    operator: FlaskClient, store: Store
) -> None:
    """ "Anderer Grund" without text, or a choice the page never offered: 422, nothing changes."""
    post(operator)
    fail_all(store)
    _, form = _confirmation(operator)
    before = snapshot(store)
    other = operator.post(
        "/admin/fehler/alle-erneut-senden", data={**form, "reason_choice": "anderer"}
    )
    assert other.status_code == 422
    assert "Bitte einen Grund angeben." in other.get_data(as_text=True)
    forged = operator.post(
        "/admin/fehler/alle-erneut-senden", data={**form, "reason_choice": "weil-ich-es-kann"}
    )
    assert forged.status_code == 422
    assert "Bitte einen der angebotenen Gründe wählen." in forged.get_data(as_text=True)
    assert snapshot(store) == before


def test_failed_list_and_confirmation_say_whether_the_office_is_back(
    app: Flask,
    operator: FlaskClient,
    store: Store,
    backoffice: DemoBackOffice,  # noqa: F811 - the imported fixture, requested by name
) -> None:
    """With the back office up: "Stelle erreichbar (geprüft hh:mm)" and its last delivery; with
    it down: "nicht erreichbar". The replay is offered either way."""
    post(operator)
    post(operator)
    with store.session() as session:
        first = session.scalars(select(Delivery).order_by(Delivery.created_at)).first()
        assert first is not None
        first_id = first.id
    fail_all(store)
    with store.session() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id == first_id)
            .values(status="delivered", delivered_at=utcnow())
        )
    failures = operator.get("/admin/fehler").get_data(as_text=True)
    offices = failures.split('<table class="offices">')[1].split("</table>")[0]
    assert "Steueramt Usingen" in offices
    assert CHECKED.search(offices)
    assert "noch nie" not in offices  # the delivered one is its last delivery
    html, _ = _confirmation(operator)
    assert CHECKED.search(html)
    assert backoffice.cases() == []  # the check sent nothing

    backoffice.stop()
    app.extensions[EXTENSION] = ReachabilityMonitor(ttl_s=0)  # a fresh check, not the cached one
    failures = operator.get("/admin/fehler").get_data(as_text=True)
    assert DOWN.search(failures)
    html, _ = _confirmation(operator)
    assert DOWN.search(html)
    assert "Jetzt 1 erneut senden" in html
