"""Offices see only their own cases: signed fetch links per delivery, office tokens, the inbox.

Two submissions go to two offices: a traffic order (with a site plan) to the Ordnungsamt
Neu-Anspach, a dog registration (with a vaccination record) to the Steueramt Usingen.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from domain.accounts.api_tokens import revoke_token
from domain.admin.operations import reroute_delivery
from domain.delivery.fetch_links import fetch_url
from integrations.channels.envelopes import build_envelopes
from store.engine import Store
from store.models import Delivery, DeliveryStatus, Event
from tests.conftest import TEST_ADMIN, MakeToken, bearer, snapshot
from tests.factories import PDF, dog, flatten, traffic
from tests.webhook_support import FilePart, assert_problem, multipart_body, post
from tests.worker.conftest import replace_office

ORDNUNGSAMT = "neu-anspach-ordnungsamt"
STEUERAMT = "usingen-steueramt"
PLAN = PDF + b"% Lageplan\n"
VACCINATION = PDF + b"% Impfpass\n"


@dataclass
class Case:
    """A stored submission, its one delivery and its one attachment's signed link."""

    reference: str
    delivery_id: str
    office: str
    sha256: str
    link: str

    @property
    def path(self) -> str:
        """The attachment's path without the signature."""
        return f"/api/v1/submissions/{self.reference}/attachments/{self.sha256}"

    def query(self) -> dict[str, str]:
        """The signed link's query parameters."""
        return {k: v[0] for k, v in parse_qs(urlsplit(self.link).query).items()}

    def local(self, **changes: str) -> str:
        """The link as a path of the test client, with some parameters changed."""
        return f"{self.path}?{urlencode({**self.query(), **changes})}"


def _submit(
    client: FlaskClient, app: Flask, service: str, data: list[tuple[str, str]], file: FilePart
) -> Case:
    body, content_type = multipart_body(data, [file])
    answer = post(client, service, body, content_type)
    assert answer.status_code == 202, answer.get_data(as_text=True)
    reference = answer.get_json()["reference"]
    [delivery] = answer.get_json()["deliveries"]
    bridge = app.extensions["bridge"]
    [envelope] = build_envelopes(bridge.settings, bridge.store, bridge.vault, [delivery["id"]])
    [attachment] = envelope.attachments
    assert attachment.fetch_url is not None
    return Case(
        reference, delivery["id"], delivery["office"], attachment.sha256, attachment.fetch_url
    )


@pytest.fixture
def cases(client: FlaskClient, app: Flask) -> tuple[Case, Case]:
    """The Ordnungsamt's traffic order and the Steueramt's dog registration."""
    plan = _submit(
        client,
        app,
        "traffic-order",
        flatten(traffic(reason="construction")),
        FilePart("site_plan", "Lageplan.pdf", "application/pdf", PLAN),
    )
    vaccination = _submit(
        client,
        app,
        "dog-registration",
        flatten(dog()),
        FilePart("vaccination", "Impfpass.pdf", "application/pdf", VACCINATION),
    )
    assert (plan.office, vaccination.office) == (ORDNUNGSAMT, STEUERAMT)
    return plan, vaccination


def test_signed_link_works_for_its_delivery_without_a_token(
    client: FlaskClient, store: Store, cases: tuple[Case, Case]
) -> None:
    """The link in the envelope fetches the file; the event names the office and delivery."""
    plan, _ = cases
    assert plan.link.startswith(f"http://127.0.0.1:8000{plan.path}?delivery=")
    response = client.get(plan.local())
    assert response.status_code == 200
    assert response.data == PLAN
    with store.read() as session:
        event = session.scalars(select(Event).where(Event.kind == "attachment.fetched")).one()
    assert event.actor == f"office:{ORDNUNGSAMT}"
    assert event.delivery_id == plan.delivery_id
    assert event.detail == {"sha256": plan.sha256, "field": "site_plan"}


def test_tampered_or_expired_links_are_refused(
    client: FlaskClient, app: Flask, store: Store, cases: tuple[Case, Case]
) -> None:
    """Another delivery, file, expiry or signature: 403, and nothing is recorded."""
    plan, vaccination = cases
    keys = app.extensions["bridge"].settings.encryption_keys
    q = plan.query()
    flipped = q["signature"][:-1] + ("0" if q["signature"][-1] != "0" else "1")
    invalid = "Der Abruflink ist ungültig."
    attempts = {
        "signature": plan.local(signature=flipped),
        "later expiry": plan.local(expires=str(int(q["expires"]) + 3600)),
        "other delivery": plan.local(delivery=vaccination.delivery_id),
        # The Ordnungsamt's link on the Steueramt's case and file.
        "other case": f"{vaccination.path}?{urlencode(q)}",
        # A valid signature for this file, but on another submission's reference.
        "other reference": plan.local().replace(plan.reference, vaccination.reference),
        "malformed expiry": plan.local(expires="morgen"),
        "non-ascii signature": plan.local(signature="ä" * 64),
        "missing signature": f"{plan.path}?delivery={plan.delivery_id}&expires={q['expires']}",
    }
    before = snapshot(store)
    for what, url in attempts.items():
        response = client.get(url)
        assert response.status_code == 403, what
        assert_problem(response, 403, "forbidden", detail=invalid, title="Keine Berechtigung.")
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    expired = fetch_url(
        "", plan.reference, plan.delivery_id, plan.sha256, encryption_keys=keys, expires_at=past
    )
    response = client.get(expired)
    assert_problem(
        response,
        403,
        "forbidden",
        detail=(
            "Der Abruflink ist abgelaufen; die Stelle erhält mit der nächsten Zustellung "
            "einen neuen."
        ),
    )
    assert snapshot(store) == before


def test_link_of_a_cancelled_delivery_is_refused(
    client: FlaskClient, store: Store, cases: tuple[Case, Case]
) -> None:
    """A cancelled (or re-routed) delivery's office no longer reads the case."""
    plan, _ = cases
    with store.session() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.id == plan.delivery_id)
            .values(status=DeliveryStatus.CANCELLED)
        )
    before = snapshot(store)
    assert_problem(
        client.get(plan.local()),
        403,
        "forbidden",
        detail="Diese Zustellung wurde storniert; der Abruflink gilt nicht mehr.",
    )
    assert snapshot(store) == before


def test_link_of_a_held_delivery_is_refused(
    client: FlaskClient, store: Store, cases: tuple[Case, Case]
) -> None:
    """A delivery held for the fee has not reached its office: its link reads nothing."""
    plan, _ = cases
    _set_status(store, plan.delivery_id, DeliveryStatus.HELD)
    before = snapshot(store)
    assert_problem(client.get(plan.local()), 403, "forbidden", detail=NOT_YOURS_NOW)
    assert snapshot(store) == before


def test_office_token_reads_only_its_own_cases(
    client: FlaskClient, store: Store, api_token: MakeToken, cases: tuple[Case, Case]
) -> None:
    """The Steueramt's token fetches its case's file, not the Ordnungsamt's, with or without
    the Ordnungsamt's link, and reads no case status at all."""
    plan, vaccination = cases
    steueramt = bearer(api_token(name="steueramt", office_id=STEUERAMT))
    own = client.get(vaccination.path, headers=steueramt)
    assert own.status_code == 200
    assert own.data == VACCINATION
    assert client.get(vaccination.local(), headers=steueramt).status_code == 200
    before = snapshot(store)
    other = "Dieser Antrag wurde nicht an Ihre Stelle zugestellt."
    assert_problem(client.get(plan.path, headers=steueramt), 403, "forbidden", detail=other)
    assert_problem(client.get(plan.local(), headers=steueramt), 403, "forbidden", detail=other)
    assert_problem(
        client.get(f"/api/v1/submissions/{vaccination.reference}", headers=steueramt),
        403,
        "forbidden",
        detail="Das Token einer Stelle ruft nur die Anlagen der Fälle dieser Stelle ab.",
    )
    assert snapshot(store) == before
    with store.read() as session:
        actors = set(session.scalars(select(Event.actor).where(Event.kind == "attachment.fetched")))
    assert actors == {"token:steueramt"}


def test_staff_token_fetches_without_a_link_and_nobody_without_anything(
    client: FlaskClient, store: Store, api_token: MakeToken, cases: tuple[Case, Case]
) -> None:
    """A viewer's token reads any attachment; no token and no link is a 401."""
    plan, _ = cases
    before = snapshot(store)
    assert_problem(client.get(plan.path), 401, "unauthorized", detail="Es fehlt ein Zugangstoken.")
    assert snapshot(store) == before
    response = client.get(plan.path, headers=bearer(api_token("viewer")))
    assert response.status_code == 200
    assert response.data == PLAN


SCHMITTEN = "schmitten-steueramt"
SCHMITTEN_BLOCK = f"""
[offices.{SCHMITTEN}]
name = "Steueramt Schmitten"
municipality = "usingen"
task_area = "tax"
channel = "inbox"
options = {{ token_env = "BRIDGE_SECRET_INBOX_SCHMITTEN" }}
"""
INBOX_TOKENS = {
    ORDNUNGSAMT: "inbox-token-ordnungsamt-0123456789abcdef",
    STEUERAMT: "inbox-token-steueramt-0123456789abcdef",
}


@pytest.fixture
def environ(environ: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """Both offices pull their cases from the inbox, each with its own token (in a copy of
    the shipped routing file)."""
    text = Path(environ["BRIDGE_CONFIG"]).read_text(encoding="utf-8")
    path = tmp_path / "routing.toml"
    for office, (name, town, area) in {
        ORDNUNGSAMT: ("Ordnungsamt Neu-Anspach", "neu-anspach", "public-order"),
        STEUERAMT: ("Steueramt Usingen", "usingen", "tax"),
    }.items():
        variable = f"BRIDGE_SECRET_INBOX_{area.upper().replace('-', '_')}"
        block = (
            f'[offices.{office}]\nname = "{name}"\nmunicipality = "{town}"\n'
            f'task_area = "{area}"\nchannel = "inbox"\n'
            f'options = {{ token_env = "{variable}", inline_limit_bytes = 16 }}\n'
        )
        text = replace_office(text, office, block)
        environ[variable] = INBOX_TOKENS[office]
    # Not about the fee: the traffic order is in the inbox at once (tests/payments holds it).
    text = text.replace("before_delivery = true", "before_delivery = false")
    # A second tax office, for re-routing the Steueramt's case.
    marker = "# --- Online services"
    text = text.replace(marker, f"{SCHMITTEN_BLOCK}\n{marker}")
    environ["BRIDGE_SECRET_INBOX_SCHMITTEN"] = "inbox-token-schmitten-0123456789abcdef"
    path.write_text(text, encoding="utf-8")
    environ["BRIDGE_CONFIG"] = str(path)
    return environ


def test_inbox_of_one_office_never_lists_the_others_cases(
    client: FlaskClient, store: Store, cases: tuple[Case, Case]
) -> None:
    """Each office's inbox holds its own case only; its links work; the other's token fails."""
    plan, vaccination = cases
    for office, case in ((ORDNUNGSAMT, plan), (STEUERAMT, vaccination)):
        listed = client.get(f"/api/v1/inbox/{office}/cases", headers=bearer(INBOX_TOKENS[office]))
        assert listed.status_code == 200
        [pulled] = listed.get_json()["cases"]
        assert pulled["reference"] == case.reference
        [attachment] = pulled["attachments"]
        link = urlsplit(attachment["fetch_url"])
        assert link.path == case.path
        assert client.get(f"{link.path}?{link.query}").status_code == 200
    before = snapshot(store)
    wrong = client.get(
        f"/api/v1/inbox/{ORDNUNGSAMT}/cases", headers=bearer(INBOX_TOKENS[STEUERAMT])
    )
    assert_problem(wrong, 401, "unauthorized", detail="Das Token dieser Stelle ist ungültig.")
    # Acknowledging the other office's case through one's own inbox finds nothing.
    ack = client.post(
        f"/api/v1/inbox/{ORDNUNGSAMT}/cases/{vaccination.delivery_id}/ack",
        headers=bearer(INBOX_TOKENS[ORDNUNGSAMT]),
    )
    assert_problem(ack, 404, "unknown-case")
    assert snapshot(store) == before


def test_link_signature_is_bound_to_the_file() -> None:
    """The same delivery and expiry signed for another file gives another signature."""
    keys = ("k" * 44,)
    at = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    one = fetch_url(
        "",
        "NA-2026-000001",
        "d" * 32,
        hashlib.sha256(b"a").hexdigest(),
        encryption_keys=keys,
        expires_at=at,
    )
    two = fetch_url(
        "",
        "NA-2026-000001",
        "d" * 32,
        hashlib.sha256(b"b").hexdigest(),
        encryption_keys=keys,
        expires_at=at,
    )
    assert parse_qs(urlsplit(one).query)["signature"] != parse_qs(urlsplit(two).query)["signature"]


def test_inbox_takes_the_offices_own_api_token_too(
    client: FlaskClient, store: Store, api_token: MakeToken, cases: tuple[Case, Case]
) -> None:
    """A token made with --office opens that office's inbox only; revoked it stops; a staff
    token (even an admin's) opens no inbox."""
    _, vaccination = cases
    steueramt = bearer(api_token(name="steueramt", office_id=STEUERAMT))
    listed = client.get(f"/api/v1/inbox/{STEUERAMT}/cases", headers=steueramt)
    assert listed.status_code == 200
    assert [c["reference"] for c in listed.get_json()["cases"]] == [vaccination.reference]
    refused = "Das Token dieser Stelle ist ungültig."
    admin = bearer(api_token("admin", name="chef"))
    assert client.get("/api/v1/me", headers=admin).status_code == 200
    before = snapshot(store)
    for office, headers in ((ORDNUNGSAMT, steueramt), (STEUERAMT, admin)):
        response = client.get(f"/api/v1/inbox/{office}/cases", headers=headers)
        assert_problem(response, 401, "unauthorized", detail=refused)
    assert snapshot(store) == before
    revoke_token(store, "steueramt", actor=TEST_ADMIN)
    response = client.get(f"/api/v1/inbox/{STEUERAMT}/cases", headers=steueramt)
    assert_problem(response, 401, "unauthorized", detail=refused)


NOT_YOURS_NOW = (
    "Dieser Antrag liegt Ihrer Stelle nicht vor: die Zustellung wurde storniert, umgeleitet "
    "oder wartet auf die Zahlung der Gebühr."
)


def _set_status(store: Store, delivery_id: str, status: DeliveryStatus) -> None:
    with store.session() as session:
        session.execute(update(Delivery).where(Delivery.id == delivery_id).values(status=status))


@pytest.mark.parametrize(
    "status", [DeliveryStatus.PENDING, DeliveryStatus.DELIVERED, DeliveryStatus.FAILED]
)
def test_office_token_reads_its_pending_delivered_or_failed_case(
    client: FlaskClient,
    store: Store,
    api_token: MakeToken,
    cases: tuple[Case, Case],
    status: DeliveryStatus,
) -> None:
    """While the office has the case (to fetch, fetched, or failing to reach it) it reads it."""
    _, vaccination = cases
    _set_status(store, vaccination.delivery_id, status)
    steueramt = bearer(api_token(name="steueramt", office_id=STEUERAMT))
    response = client.get(vaccination.path, headers=steueramt)
    assert response.status_code == 200
    assert response.data == VACCINATION


@pytest.mark.parametrize("status", [DeliveryStatus.CANCELLED, DeliveryStatus.HELD])
def test_office_token_reads_nothing_of_a_cancelled_or_held_case(
    client: FlaskClient,
    store: Store,
    api_token: MakeToken,
    cases: tuple[Case, Case],
    status: DeliveryStatus,
) -> None:
    """Issue 23: the token read the file after its delivery was cancelled and while the case
    was held for payment; now it is a 403, German first, and nothing is recorded."""
    _, vaccination = cases
    steueramt = bearer(api_token(name="steueramt", office_id=STEUERAMT))
    # Read while pending (which also records the token's first use), then the case moves on.
    assert client.get(vaccination.path, headers=steueramt).status_code == 200
    _set_status(store, vaccination.delivery_id, status)
    before = snapshot(store)
    response = client.get(vaccination.path, headers=steueramt)
    assert_problem(response, 403, "forbidden", detail=NOT_YOURS_NOW, title="Keine Berechtigung.")
    english = client.get(vaccination.path, headers={**steueramt, "Accept-Language": "en"})
    assert_problem(
        english,
        403,
        "forbidden",
        detail=(
            "This submission is not with your office: its delivery was cancelled, re-routed or "
            "waits for the fee to be paid."
        ),
        lang="en",
    )
    assert snapshot(store) == before


def test_rerouted_case_is_read_by_the_new_office_only(
    client: FlaskClient, app: Flask, store: Store, api_token: MakeToken, cases: tuple[Case, Case]
) -> None:
    """After a re-route the old office's token is refused, the new office's token reads it."""
    _, vaccination = cases
    steueramt = bearer(api_token(name="steueramt", office_id=STEUERAMT))
    assert client.get(vaccination.path, headers=steueramt).status_code == 200
    config = app.extensions["bridge"].settings.config
    done = reroute_delivery(
        store, config, vaccination.delivery_id, SCHMITTEN, TEST_ADMIN, "Zuständigkeit gewechselt"
    )
    assert done.changed
    schmitten = bearer(api_token(name="schmitten", office_id=SCHMITTEN))
    before = snapshot(store)
    assert_problem(
        client.get(vaccination.path, headers=steueramt), 403, "forbidden", detail=NOT_YOURS_NOW
    )
    assert snapshot(store) == before
    response = client.get(vaccination.path, headers=schmitten)
    assert response.status_code == 200
    assert response.data == VACCINATION
