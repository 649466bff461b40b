"""The admin API: filters and pages, role checks, refusals that change nothing, bulk replay."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from domain.accounts.accounts import Role
from schemas.options import LOCAL_TZ
from store.engine import Store
from store.models import BulkReplay, Delivery, Event, Payment, Submission
from tests.admin_support import fail_all, payment_calls, post
from tests.conftest import MakeToken, snapshot

# Filled per test with tokens made in that test's store (see `_tokens`).
VIEWER: dict[str, str] = {}
OPERATOR: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _tokens(api_token: MakeToken, client: FlaskClient) -> None:
    """A viewer's and an operator's token in the test's store, each used once already.

    The first use records the token's last use; later ones within a minute write nothing, so
    a refused request leaves the database exactly as it was.
    """
    VIEWER["Authorization"] = f"Bearer {api_token(Role.VIEWER, name='victor')}"
    OPERATOR["Authorization"] = f"Bearer {api_token(Role.OPERATOR, name='anna')}"
    for headers in (VIEWER, OPERATOR):
        assert client.get("/api/v1/overview", headers=headers).status_code == 200


def _get(client: FlaskClient, url: str, **params: str) -> Any:
    response = client.get(url, query_string=params, headers=VIEWER)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_list_filters_and_pages(client: FlaskClient, store: Store) -> None:
    """Each filter narrows the list; pages hold per_page items, newest first."""
    dogs = [post(client) for _ in range(3)]
    order = post(client, "traffic-order")
    everything = _get(client, "/api/v1/submissions")
    assert everything["total"] == 4
    assert [i["reference"] for i in everything["items"]] == [order, *reversed(dogs)]
    assert everything["items"][0]["deliveries"][0]["office"] == "neu-anspach-ordnungsamt"
    assert _get(client, "/api/v1/submissions", service="traffic-order")["total"] == 1
    assert _get(client, "/api/v1/submissions", office="usingen-steueramt")["total"] == 3
    # The dogs live in Neu-Anspach (by postal code), the zone in Usingen: by id and by AGS.
    assert _get(client, "/api/v1/submissions", municipality="neu-anspach")["total"] == 3
    assert _get(client, "/api/v1/submissions", municipality="06434011")["total"] == 1
    assert (
        _get(client, "/api/v1/submissions", reference=dogs[1])["items"][0]["reference"] == dogs[1]
    )
    # Dates in filters are the town's calendar days (Europe/Berlin), not UTC's.
    today = dt.datetime.now(LOCAL_TZ).date().isoformat()
    assert _get(client, "/api/v1/submissions", **{"from": "2020-01-01", "to": today})["total"] == 4
    assert _get(client, "/api/v1/submissions", to="2020-01-01")["total"] == 0
    assert _get(client, "/api/v1/submissions", status="routed")["total"] == 3
    # The traffic order's fee is due before delivery (issue 7): it waits for the payment.
    assert _get(client, "/api/v1/submissions", status="awaiting_payment")["total"] == 1
    page = _get(client, "/api/v1/submissions", per_page="3", page="2")
    assert (page["total"], page["pages"], len(page["items"])) == (4, 2, 1)
    fail_all(store)
    failed = _get(client, "/api/v1/deliveries/failed", service="dog-registration")
    assert failed["total"] == 3
    assert failed["items"][0]["last_error"] == "HTTP 503"
    assert failed["items"][0]["last_status_code"] == 503


def test_bad_filters_are_400_in_both_languages(client: FlaskClient, store: Store) -> None:
    """Unknown names and values, bad dates and from > to are listed; nothing changes."""
    post(client)
    before = snapshot(store)
    bad = {
        "service": "cat",
        "office": "nowhere",
        "municipality": "99999999",
        "status": "lost",
        "from": "2026-13-01",
        "reference": "x",
        "servce": "dog-registration",
    }
    response = client.get("/api/v1/submissions", query_string=bad, headers=VIEWER)
    assert response.status_code == 400
    body = response.get_json()
    assert body["title"] == "Der Filter ist ungültig."
    assert {e["field"] for e in body["errors"]} == set(bad)
    english = client.get(
        "/api/v1/deliveries/failed",
        query_string={"from": "2026-02-02", "to": "2026-02-01"},
        headers={**VIEWER, "Accept-Language": "en"},
    )
    assert english.status_code == 400
    assert (
        english.get_json()["errors"][0]["message"] == "The start lies after the end of the period."
    )
    assert client.get("/api/v1/submissions?page=0", headers=VIEWER).status_code == 400
    assert client.get("/api/v1/submissions?per_page=201", headers=VIEWER).status_code == 400
    assert client.get("/api/v1/submissions?page=abc", headers=VIEWER).status_code == 400
    assert snapshot(store) == before


def test_replay_roles_and_idempotency(client: FlaskClient, store: Store) -> None:
    """401 without a token, 403 for a viewer, 200 for an operator, then a no-op; each audited."""
    post(client)
    (delivery_id,) = fail_all(store)
    url = f"/api/v1/deliveries/{delivery_id}/replay"
    before = snapshot(store)
    assert client.post(url).status_code == 401
    refused = client.post(url, json={"reason": "x"}, headers=VIEWER)
    assert refused.status_code == 403
    assert refused.get_json()["detail"].startswith("Dafür ist die Rolle operator nötig")
    assert (
        client.post(url, data="{", headers=OPERATOR, content_type="application/json").status_code
        == 400
    )
    assert (
        client.post(url, data="a=b", headers=OPERATOR, content_type="text/plain").status_code == 415
    )
    assert client.post(url, json={"reason": 5}, headers=OPERATOR).status_code == 400
    assert client.post(url, json={"reason": "x" * 20_000}, headers=OPERATOR).status_code == 413
    assert client.post(url, json=[1], headers=OPERATOR).status_code == 400
    assert client.post("/api/v1/deliveries/nope/replay", headers=OPERATOR).status_code == 404
    assert snapshot(store) == before
    done = client.post(url, json={"reason": "Amt wieder da"}, headers=OPERATOR)
    assert done.status_code == 200
    assert done.get_json() == {
        "changed": True,
        "message": "Die Zustellung wird erneut gesendet.",
        "deliveries": [delivery_id],
    }
    again = client.post(url, headers={**OPERATOR, "Accept-Language": "en"})
    assert again.get_json()["changed"] is False
    assert "already waiting" in again.get_json()["message"]
    with store.read() as session:
        (event,) = session.scalars(select(Event).where(Event.kind == "delivery.replayed"))
    assert event.actor == "token:anna"
    assert event.detail["reason"] == "Amt wieder da"


def test_cancel_and_reroute_refusals(client: FlaskClient, store: Store) -> None:
    """Cancel needs a reason; re-routing across task areas is refused; both change nothing."""
    reference = post(client)
    (delivery_id,) = fail_all(store)
    before = snapshot(store)
    cancel = f"/api/v1/submissions/{reference}/cancel"
    assert client.post(cancel, json={}, headers=OPERATOR).status_code == 422
    assert client.post(cancel, json={"reason": " "}, headers=OPERATOR).status_code == 422
    assert client.post(cancel, json={"reason": "x"}, headers=VIEWER).status_code == 403
    assert (
        client.post(
            "/api/v1/submissions/XX-2026-000009/cancel", json={"reason": "x"}, headers=OPERATOR
        )
    ).status_code == 404
    reroute = client.post(
        f"/api/v1/deliveries/{delivery_id}/reroute",
        json={"office": "neu-anspach-ordnungsamt", "reason": "Umzug"},
        headers=OPERATOR,
    )
    assert reroute.status_code == 422
    assert (
        reroute.get_json()["title"]
        == "Nur an eine Dienststelle desselben Aufgabengebiets umleitbar."
    )
    assert snapshot(store) == before
    done = client.post(cancel, json={"reason": "doppelt"}, headers=OPERATOR)
    assert done.get_json()["changed"] is True
    with store.read() as session:
        assert session.scalars(select(Submission.status)).one() == "cancelled"


def test_bulk_replay_dry_run_start_poll_cancel(client: FlaskClient, store: Store) -> None:
    """The dry run's count is what the start takes; one run at a time; poll and cancel it."""
    for _ in range(3):
        post(client)
    post(client, "traffic-order")
    fail_all(store)
    body = {"filter": {"office": "usingen-steueramt"}, "reason": "Steueramt wieder online"}
    dry = client.post("/api/v1/replays", json={**body, "dry_run": True}, headers=OPERATOR)
    assert dry.get_json() == {
        "dry_run": True,
        "count": 3,
        "filter": {"office": "usingen-steueramt"},
    }
    before = snapshot(store)
    assert (
        client.post("/api/v1/replays", json={**body, "reason": ""}, headers=OPERATOR).status_code
        == 422
    )
    assert client.post("/api/v1/replays", json=body, headers=VIEWER).status_code == 403
    wrong = client.post(
        "/api/v1/replays", json={"filter": {"ofice": "x"}, "reason": "r"}, headers=OPERATOR
    )
    assert wrong.status_code == 400
    none = client.post(
        "/api/v1/replays", json={"filter": {"service": "traffic-order", "office": "usingen-steueramt"},
                                 "reason": "r"}, headers=OPERATOR,
    )  # fmt: skip
    assert none.status_code == 422
    assert snapshot(store) == before
    started = client.post("/api/v1/replays", json=body, headers=OPERATOR)
    assert started.status_code == 202
    job = started.get_json()
    assert started.headers["Location"] == f"/api/v1/replays/{job['id']}"
    assert (job["total"], job["status"], job["created_by"]) == (3, "running", "token:anna")
    busy = client.post(
        "/api/v1/replays", json={"filter": {}, "reason": "noch einer"}, headers=OPERATOR
    )
    assert busy.status_code == 409
    polled = _get(client, started.headers["Location"])
    assert (polled["total"], polled["processed"]) == (3, 0)
    assert client.get("/api/v1/replays/999999", headers=VIEWER).status_code == 404
    assert client.get(f"/api/v1/replays/{2**70}", headers=VIEWER).status_code == 404
    # The first delivery of the office was due at once; the worker "sent" it: it is delivered.
    with store.session() as session:
        first = session.scalars(
            select(Delivery.id)
            .where(Delivery.status == "pending")
            .order_by(Delivery.next_attempt_at)
        ).first()
        session.execute(
            update(Delivery).where(Delivery.id == first).values(status="delivered", attempts=1)
        )
    cancelled = client.post(f"/api/v1/replays/{job['id']}/cancel", json={"reason": "Amt wieder weg"},
                            headers=OPERATOR)  # fmt: skip
    assert cancelled.status_code == 200
    assert {k: cancelled.get_json()[k] for k in ("status", "processed", "failed", "changed")} == {
        "status": "cancelled", "processed": 1, "failed": 0, "changed": True,
    }  # fmt: skip
    with store.read() as session:
        statuses = sorted(session.scalars(select(Delivery.status)))
        attempts = sorted(
            session.scalars(select(Delivery.attempts).where(Delivery.status == "failed"))
        )
        assert session.scalars(select(BulkReplay.status)).one() == "cancelled"
    assert statuses == ["delivered", "failed", "failed", "failed"]
    assert attempts == [8, 8, 8]
    again = client.post(
        f"/api/v1/replays/{job['id']}/cancel", json={"reason": "x"}, headers=OPERATOR
    )
    assert again.get_json()["changed"] is False
    # After a cancel a new bulk replay may start.
    assert client.post("/api/v1/replays", json=body, headers=OPERATOR).status_code == 202


def test_openapi_describes_every_admin_operation(client: FlaskClient) -> None:
    """Each admin route is an operation of /openapi.json."""
    paths = client.get("/openapi.json").get_json()["paths"]
    expected = {
        ("/api/v1/submissions", "get"),
        ("/api/v1/submissions/{reference}/detail", "get"),
        ("/api/v1/deliveries/failed", "get"),
        ("/api/v1/overview", "get"),
        ("/api/v1/deliveries/{delivery_id}/replay", "post"),
        ("/api/v1/deliveries/{delivery_id}/reroute", "post"),
        ("/api/v1/submissions/{reference}/cancel", "post"),
        ("/api/v1/replays", "post"),
        ("/api/v1/replays/{job_id}", "get"),
        ("/api/v1/replays/{job_id}/cancel", "post"),
    }
    assert {(p, m) for p, ops in paths.items() for m in ops} >= expected


FILTER_VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["dog-registration", "usingen", "06434011", "2026-02-30", "US-2026-000001",
                     "routed", "usingen-steueramt", "٢٠٢٦-01-01", "\x00", "9" * 150]),
)  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    params=st.dictionaries(
        st.sampled_from(["service", "municipality", "office", "status", "from", "to", "reference",
                         "page", "per_page", "x"]),
        FILTER_VALUES,
        max_size=5,
    )
)  # fmt: skip
def test_any_filter_is_answered_without_a_server_error(
    client: FlaskClient, params: dict[str, str]
) -> None:
    """Whatever the query, the lists answer 200 or a 400 problem, never a 5xx."""
    for url in ("/api/v1/submissions", "/api/v1/deliveries/failed"):
        response = client.get(url, query_string=params, headers=VIEWER)
        assert response.status_code in (200, 400), (params, response.get_data(as_text=True))
    dry = client.post("/api/v1/replays", json={"filter": params, "dry_run": True}, headers=OPERATOR)
    assert dry.status_code in (200, 400), (params, dry.get_data(as_text=True))


def test_detail_shows_the_payment_callback_journal(client: FlaskClient, store: Store) -> None:
    """The case's journal rows (time, provider, kind, verdict), oldest first; a call naming no
    payment or another case's payment is not the case's; no caller address, no body."""
    reference = post(client, "traffic-order")
    other = post(client, "traffic-order")
    payment_id = payment_calls(client, store, reference)
    payment_calls(client, store, other)
    detail = _get(client, f"/api/v1/submissions/{reference}/detail")
    journal = detail["payment_journal"]
    assert [(j["provider"], j["kind"], j["verdict"], j["payment_id"]) for j in journal] == [
        ("epay21-demo", "notify", "transaction_mismatch", payment_id)
    ] * 2
    assert set(journal[0]) == {"at", "provider", "kind", "verdict", "payment_id", "detail"}
    assert dt.datetime.fromisoformat(journal[0]["at"]) <= dt.datetime.now(dt.UTC)
    assert journal[0]["at"] <= journal[1]["at"]
    assert _get(client, f"/api/v1/submissions/{post(client)}/detail")["payment_journal"] == []


def test_openapi_describes_the_journal_and_the_pay_routes(client: FlaskClient) -> None:
    """The detail's schema names the journal; the pay link, its POST, the return and the
    providers' callback are operations of /openapi.json."""
    doc = client.get("/openapi.json").get_json()
    schemas = doc["components"]["schemas"]
    entry = schemas["PaymentJournalEntry"]
    assert set(entry["required"]) == {"at", "provider", "kind", "verdict", "payment_id", "detail"}
    journal = schemas["SubmissionDetail"]["properties"]["payment_journal"]
    assert journal["items"] == {"$ref": "#/components/schemas/PaymentJournalEntry"}
    detail = doc["paths"]["/api/v1/submissions/{reference}/detail"]["get"]
    assert detail["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SubmissionDetail"
    }
    operations = {(p, m) for p, ops in doc["paths"].items() for m in ops}
    assert {
        ("/pay/{reference}", "get"),
        ("/pay/{reference}", "post"),
        ("/pay/{reference}/return", "get"),
        ("/webhooks/payments/{provider_id}", "post"),
    } <= operations
    pay = doc["paths"]["/pay/{reference}"]
    assert "text/html" in pay["get"]["responses"]["200"]["content"]
    assert "303" in pay["post"]["responses"]
    form = pay["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
    assert form["schema"]["required"] == ["token", "csrf_token"]


def test_cancel_an_unpaid_case_withdraws_its_payment(client: FlaskClient, store: Store) -> None:
    """The API cancels a case held for its fee (it said 'already delivered' before)."""
    reference = post(client, "traffic-order")
    done = client.post(
        f"/api/v1/submissions/{reference}/cancel",
        json={"reason": "zurückgezogen"},
        headers=OPERATOR,
    )
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["changed"] is True
    with store.read() as session:
        assert session.scalars(select(Submission.status)).one() == "cancelled"
        assert session.scalars(select(Payment.status)).one() == "withdrawn"
