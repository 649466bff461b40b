"""Re-routing from the case page: only to an office of the same task area, with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from store.engine import Store
from store.models import Delivery, Event
from tests.admin_support import fail_all, post
from tests.bridge.admin.conftest import csrf_of
from tests.conftest import ROOT, snapshot

# A second tax office (a town that joined and runs its own tax office).
EXTRA_OFFICE = """
[offices.schmitten-steueramt]
name = "Steueramt Schmitten"
municipality = "usingen"
task_area = "tax"
channel = "http-json"
options = { url = "http://127.0.0.1:9/cases/schmitten-steueramt", signing_secret_env = "BRIDGE_SECRET_OFFICE_SIGNING" }
"""


@pytest.fixture
def environ(environ: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The shipped routing configuration with a second tax office."""
    text = (ROOT / "config" / "routing.toml").read_text(encoding="utf-8")
    marker = "# --- Online services"
    path = tmp_path / "routing.toml"
    path.write_text(text.replace(marker, EXTRA_OFFICE + "\n" + marker), encoding="utf-8")
    environ["BRIDGE_CONFIG"] = str(path)
    return environ


def test_operator_reroutes_to_another_tax_office(operator: FlaskClient, store: Store) -> None:
    """The select offers only the other tax office; the new delivery goes there, on the record."""
    reference = post(operator)
    delivery_id = fail_all(store)[0]
    page = operator.get(f"/admin/antraege/{reference}")
    html = page.get_data(as_text=True)
    select_html = html.split(f'id="reroute-{delivery_id}"')[1].split("</select>")[0]
    assert "Steueramt Schmitten" in select_html
    assert "Ordnungsamt" not in select_html
    response = operator.post(
        f"/admin/antraege/{reference}/zustellungen/{delivery_id}/umleiten",
        data={
            "csrf_token": csrf_of(page),
            "office": "schmitten-steueramt",
            "reason": "Zuständigkeit gewechselt",
        },
    )
    assert response.status_code == 303
    with store.read() as session:
        offices = {d.office_id: d.status for d in session.scalars(select(Delivery))}
        rerouted = session.scalars(select(Event).where(Event.kind == "delivery.rerouted")).one()
    assert offices == {"usingen-steueramt": "cancelled", "schmitten-steueramt": "pending"}
    assert rerouted.actor == "account:olga"
    assert "Die Zustellung geht jetzt an die gewählte Stelle." in operator.get(
        response.headers["Location"]
    ).get_data(as_text=True)


@pytest.mark.parametrize(
    ("office", "reason", "status", "message"),
    [
        ("neu-anspach-ordnungsamt", "falsch", 422, "desselben Aufgabengebiets"),
        ("gibt-es-nicht", "falsch", 422, "Diese Dienststelle gibt es nicht."),
        ("schmitten-steueramt", "", 422, "Bitte einen Grund angeben."),
    ],
)
def test_reroute_refusals_change_nothing(
    operator: FlaskClient, store: Store, office: str, reason: str, status: int, message: str
) -> None:
    """Another task area, an unknown office or no reason: refused in German, nothing changed."""
    reference = post(operator)
    delivery_id = fail_all(store)[0]
    token = csrf_of(operator.get(f"/admin/antraege/{reference}"))
    before = snapshot(store)
    response = operator.post(
        f"/admin/antraege/{reference}/zustellungen/{delivery_id}/umleiten",
        data={"csrf_token": token, "office": office, "reason": reason},
    )
    assert response.status_code == status
    assert message in response.get_data(as_text=True)
    assert snapshot(store) == before
