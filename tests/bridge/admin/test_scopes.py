"""Accounts and tokens limited to offices: a tax clerk cannot read, list, count, export or replay
a public-order case by any route (the page, the API, the CLI acting --by the clerk, a bulk
filter, the CSV export, an attachment link), on SQLite and on PostgreSQL.

Two failed cases: the Ordnungsamt Neu-Anspach's traffic order (with a site plan) and the
Steueramt Usingen's dog registration. Theo works at the Steueramt: his account and his token
are limited to it.
"""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from domain.accounts.accounts import Actor, create_account
from domain.accounts.api_tokens import create_token
from domain.accounts.passwords import ScryptParams
from domain.admin import bulk_replay, operations
from domain.admin.search import SubmissionFilter
from store.engine import Store
from store.models import Delivery, Event
from tests.admin_support import fail_all
from tests.bridge.admin.conftest import SCRYPT_N, SETUP, csrf_of, login
from tests.bridge.api.test_office_scope import (  # noqa: F401 - fixtures are found by name
    ORDNUNGSAMT,
    STEUERAMT,
    Case,
    cases,
    environ,
)
from tests.conftest import TEST_ADMIN, bearer, bridge_cli, snapshot

THEO = "theo"
THEO_PASSWORD = "Hundesteuer-Usingen-2026!"
ADA_PASSWORD = "Verwaltung-Usingen-2026!"


@pytest.fixture
def theo(store: Store, cases: tuple[Case, Case]) -> tuple[Case, Case]:  # noqa: F811
    """Both cases failed, and Theo's operator account limited to the Steueramt."""
    fail_all(store)
    create_account(
        store,
        THEO,
        THEO_PASSWORD,
        "operator",
        actor=SETUP,
        kdf=ScryptParams(n=SCRYPT_N),
        offices=frozenset({STEUERAMT}),
    )
    return cases


def _status(store: Store, delivery_id: str) -> str:
    with store.read() as session:
        status = session.scalar(select(Delivery.status).where(Delivery.id == delivery_id))
    assert status is not None
    return status


def test_the_page_shows_a_clerk_only_his_offices_cases(
    client: FlaskClient, store: Store, theo: tuple[Case, Case]
) -> None:
    """List, search, case page, overview, export, single and bulk replay: only the Steueramt."""
    plan, vaccination = theo
    assert login(client, THEO, THEO_PASSWORD).status_code == 303
    listed = client.get("/admin/antraege").get_data(as_text=True)
    assert vaccination.reference in listed
    assert plan.reference not in listed
    assert "1 Antrag gefunden" in listed
    assert "Ordnungsamt" not in listed  # not even offered in the filter
    searched = client.get(f"/admin/antraege?reference={plan.reference}").get_data(as_text=True)
    assert "0 Anträge gefunden" in searched
    assert client.get(f"/admin/antraege/{plan.reference}").status_code == 404
    assert client.get(f"/admin/antraege/{vaccination.reference}").status_code == 200
    failed = client.get("/admin/fehler").get_data(as_text=True)
    assert "1 fehlgeschlagene Zustellung." in failed
    assert plan.reference not in failed
    assert "<strong>1</strong> Zustellung fehlgeschlagen" in client.get("/admin/").get_data(
        as_text=True
    )
    for export in ("/admin/antraege/export.csv", "/admin/fehler/export.csv"):
        body = client.get(export).get_data(as_text=True)
        assert vaccination.reference in body
        assert plan.reference not in body
    other = client.get(f"/admin/fehler/alle-erneut-senden?office={ORDNUNGSAMT}")
    assert "keine fehlgeschlagenen Zustellungen" in other.get_data(as_text=True)

    token = csrf_of(client.get("/admin/fehler"))
    before = snapshot(store)
    replay = f"/admin/antraege/{plan.reference}/zustellungen/{plan.delivery_id}/erneut-senden"
    assert client.post(replay, data={"csrf_token": token}).status_code == 404
    # His own case's URL with the other office's delivery: not found either.
    mixed = f"/admin/antraege/{vaccination.reference}/zustellungen/{plan.delivery_id}/erneut-senden"
    assert client.post(mixed, data={"csrf_token": token}).status_code == 404
    cancel = f"/admin/antraege/{plan.reference}/zustellungen/{plan.delivery_id}/abbrechen"
    assert client.post(cancel, data={"csrf_token": token, "reason": "x"}).status_code == 404
    bulk = {"csrf_token": token, "office": ORDNUNGSAMT, "expected": "0", "reason": "Wochenende"}
    assert client.post("/admin/fehler/alle-erneut-senden", data=bulk).status_code == 422
    assert snapshot(store) == before

    # "Alle gefilterten" without a filter takes his one delivery, never the Ordnungsamt's.
    everything = {"csrf_token": token, "expected": "1", "reason": "Wochenende"}
    assert client.post("/admin/fehler/alle-erneut-senden", data=everything).status_code == 303
    assert _status(store, vaccination.delivery_id) == "pending"
    assert _status(store, plan.delivery_id) == "failed"


def test_a_limited_token_reads_and_replays_only_its_offices_cases(
    client: FlaskClient, store: Store, theo: tuple[Case, Case]
) -> None:
    """The API with Theo's token: lists, counts, detail, status, attachments, replays, bulk."""
    plan, vaccination = theo
    _, clear = create_token(
        store,
        "theo-skript",
        "operator",
        expires_at=None,
        actor=TEST_ADMIN,
        offices=frozenset({STEUERAMT}),
    )
    headers = bearer(clear)
    _, admin = create_token(store, "chef", "admin", expires_at=None, actor=TEST_ADMIN)
    tokens = client.get("/api/v1/tokens", headers=bearer(admin)).get_json()["tokens"]
    assert {t["name"]: t["offices"] for t in tokens} == {"chef": None, "theo-skript": [STEUERAMT]}
    listed = client.get("/api/v1/submissions", headers=headers).get_json()
    assert [i["reference"] for i in listed["items"]] == [vaccination.reference]
    searched = client.get(f"/api/v1/submissions?reference={plan.reference}", headers=headers)
    assert searched.get_json()["total"] == 0
    failed = client.get("/api/v1/deliveries/failed", headers=headers).get_json()
    assert [i["reference"] for i in failed["items"]] == [vaccination.reference]
    overview = client.get("/api/v1/overview", headers=headers).get_json()
    assert overview["deliveries_by_status"] == {"failed": 1}
    assert list(overview["failures_per_office_day"]) in ([], [STEUERAMT])
    for path in (
        f"/api/v1/submissions/{plan.reference}/detail",
        f"/api/v1/submissions/{plan.reference}",
        plan.path,  # the attachment, by the staff token alone
    ):
        assert client.get(path, headers=headers).status_code == 404, path
    # The Ordnungsamt's signed link does not work with a token of another office.
    assert client.get(plan.local(), headers=headers).status_code == 403
    assert client.get(vaccination.path, headers=headers).status_code == 200
    dry = {"filter": {"office": ORDNUNGSAMT}, "dry_run": True}
    assert client.post("/api/v1/replays", json=dry, headers=headers).get_json()["count"] == 0
    admin_job, _ = bulk_replay.start(
        store, client.application.extensions["bridge"].settings.config,
        SubmissionFilter(office=ORDNUNGSAMT), TEST_ADMIN, "Amt wieder da", rate_per_office=1.0,
    )  # fmt: skip
    before = snapshot(store)
    refused = {
        f"/api/v1/deliveries/{plan.delivery_id}/replay": {"reason": "x"},
        f"/api/v1/deliveries/{plan.delivery_id}/reroute": {"office": STEUERAMT, "reason": "x"},
        f"/api/v1/submissions/{plan.reference}/cancel": {"reason": "x"},
        f"/api/v1/replays/{admin_job.id}/cancel": {"reason": "x"},
    }
    for path, body in refused.items():
        assert client.post(path, json=body, headers=headers).status_code == 404, path
    assert client.get(f"/api/v1/replays/{admin_job.id}", headers=headers).status_code == 404
    assert snapshot(store) == before


def test_the_cli_acting_by_a_limited_account_is_limited(
    environ: dict[str, str],  # noqa: F811 - the imported fixture, requested by name
    store: Store,
    theo: tuple[Case, Case],
) -> None:
    """`--by theo`: the lists, the dry run, a replay and a cancel see only the Steueramt."""
    plan, vaccination = theo
    listed = bridge_cli(environ, "submissions", "list", "--by", THEO)
    assert vaccination.reference in listed.stdout
    assert plan.reference not in listed.stdout
    failed = bridge_cli(environ, "failed", "--by", THEO)
    assert plan.delivery_id not in failed.stdout
    assert vaccination.delivery_id in failed.stdout
    dry = bridge_cli(
        environ, "replay", "--filter", f"office={ORDNUNGSAMT}", "--dry-run", "--by", THEO
    )
    assert dry.stdout.startswith("0 failed deliveries match")
    before = snapshot(store)
    replay = bridge_cli(environ, "replay", "--delivery", plan.delivery_id, "--by", THEO)
    assert replay.returncode == 1
    assert f"skipped  {plan.delivery_id}: unknown delivery" in replay.stderr
    cancel = bridge_cli(
        environ, "cancel", "--reference", plan.reference, "--reason", "x", "--by", THEO
    )
    assert cancel.returncode == 1
    assert "Diesen Antrag gibt es nicht." in cancel.stderr
    assert snapshot(store) == before
    # The shell's own access (no --by) still sees both offices.
    both = bridge_cli(environ, "failed")
    assert plan.delivery_id in both.stdout
    with store.read() as session:
        assert not session.scalars(select(Event).where(Event.actor == f"account:{THEO}")).all()


def test_the_report_and_the_activity_list_show_a_clerk_only_his_offices(
    app: Flask, client: FlaskClient, store: Store, theo: tuple[Case, Case]
) -> None:
    """The daily report counts and lists only the Steueramt's deliveries for Theo, and the
    activity list shows only actions on its cases; an admin sees both offices in each."""
    plan, vaccination = theo
    create_account(store, "ada", ADA_PASSWORD, "admin", actor=SETUP, kdf=ScryptParams(n=SCRYPT_N))
    ada = app.test_client()
    assert login(ada, "ada", ADA_PASSWORD).status_code == 303
    assert login(client, THEO, THEO_PASSWORD).status_code == 303

    both_failed = client.get("/admin/bericht?stand=jetzt").get_data(as_text=True)
    assert "Steueramt Usingen: 1 fehlgeschlagen" in both_failed
    assert "Ordnungsamt" not in both_failed
    assert "Ordnungsamt Neu-Anspach: 1 fehlgeschlagen" in ada.get(
        "/admin/bericht?stand=jetzt"
    ).get_data(as_text=True)

    # The Ordnungsamt fetches its site plan, an admin replays its case: both concern the
    # Ordnungsamt alone. Theo replays his own case.
    assert client.get(plan.local()).status_code == 200
    operations.replay_delivery(store, plan.delivery_id, TEST_ADMIN, "Ordnungsamt wieder da")
    token = csrf_of(client.get(f"/admin/antraege/{vaccination.reference}"))
    own = f"/admin/antraege/{vaccination.reference}/zustellungen/{vaccination.delivery_id}"
    assert client.post(f"{own}/erneut-senden", data={"csrf_token": token}).status_code == 303

    waiting = client.get("/admin/bericht?stand=jetzt").get_data(as_text=True)
    assert vaccination.reference in waiting
    assert plan.reference not in waiting
    assert "Ordnungsamt" not in waiting
    assert plan.reference in ada.get("/admin/bericht?stand=jetzt").get_data(as_text=True)

    activity = client.get("/admin/aktivitaet").get_data(as_text=True)
    assert vaccination.reference in activity
    assert plan.reference not in activity
    assert "Ordnungsamt" not in activity
    assert "1 Eintrag." in activity
    by_admin = client.get("/admin/aktivitaet?actor=cli:pytest").get_data(as_text=True)
    assert "0 Einträge." in by_admin
    everything = ada.get("/admin/aktivitaet").get_data(as_text=True)
    assert plan.reference in everything
    assert "Ordnungsamt wieder da" in everything
    assert vaccination.reference in everything


def test_the_activity_filter_names_only_people_whose_actions_the_clerk_may_see(
    app: Flask, client: FlaskClient, store: Store, theo: tuple[Case, Case]
) -> None:
    """A clerk limited to the Steueramt is not offered the Ordnungsamt's clerks as actors: the
    list of names is itself information about another office (who works there)."""
    plan, vaccination = theo
    create_account(
        store,
        "olga",
        ADA_PASSWORD,
        "operator",
        actor=SETUP,
        kdf=ScryptParams(n=SCRYPT_N),
        offices=frozenset({ORDNUNGSAMT}),
    )
    olga = Actor(name="olga", role="operator", offices=frozenset({ORDNUNGSAMT}))
    operations.replay_delivery(store, plan.delivery_id, olga, "Ordnungsamt wieder da")
    operations.replay_delivery(store, vaccination.delivery_id, TEST_ADMIN, "Steueramt wieder da")
    assert login(client, THEO, THEO_PASSWORD).status_code == 303

    page = client.get("/admin/aktivitaet").get_data(as_text=True)
    assert "olga" not in page
    assert "account:olga" not in page
    # Whoever acted on his office's case is offered, and so is he himself.
    assert 'value="cli:pytest"' in page
    assert f'value="account:{THEO}"' in page
    # An admin is offered everyone.
    create_account(store, "ada", ADA_PASSWORD, "admin", actor=SETUP, kdf=ScryptParams(n=SCRYPT_N))
    ada = app.test_client()
    assert login(ada, "ada", ADA_PASSWORD).status_code == 303
    assert 'value="account:olga"' in ada.get("/admin/aktivitaet").get_data(as_text=True)
