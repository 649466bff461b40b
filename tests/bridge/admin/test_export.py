"""The lists as CSV: what the list shows and nothing more, under its filter, formula-safe."""

from __future__ import annotations

import csv
import io

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update

from bridge.admin.export import csv_cell
from store.engine import Store
from store.models import Delivery, Event
from tests.admin_support import fail_all, post


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://evil")', '\'=HYPERLINK("http://evil")'),
        ("+49 6081", "'+49 6081"),
        ("-1+1", "'-1+1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("HTTP 503", "HTTP 503"),
        ("NA-2026-000001", "NA-2026-000001"),
        (8, "8"),
        (None, ""),
    ],
)
def test_a_cell_never_starts_a_formula(value: object, cell: str) -> None:
    """= + - @ tab and CR at the start get an apostrophe; everything else stays as it is."""
    assert csv_cell(value) == cell


def _rows(body: bytes) -> list[list[str]]:
    assert body.startswith("\ufeff".encode())  # Excel reads the umlauts as UTF-8
    text = body.decode("utf-8")[1:]
    assert "\r\n" in text
    return list(csv.reader(io.StringIO(text), delimiter=";"))


def test_the_failed_list_exports_as_shown_under_its_filter(
    viewer: FlaskClient, store: Store
) -> None:
    """Columns of the list, German, office by name, the office's error in the list's German
    words (not the technical text it sent), no applicant's data; the export is on the record."""
    dog = post(viewer, "dog-registration")
    traffic = post(viewer, "traffic-order")
    fail_all(store, error='=HYPERLINK("http://evil.example","Klick")', status_code=None)
    with store.session() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.office_id == "usingen-steueramt")
            .values(last_error="HTTP 503 Service Unavailable: nicht bereit", last_status_code=503)
        )
    response = viewer.get("/admin/fehler/export.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith(
        'attachment; filename="fehlgeschlagene-zustellungen-'
    )
    rows = _rows(response.data)
    assert rows[0] == [
        "Aktenzeichen",
        "Leistung",
        "Stelle",
        "Letzter Fehler",
        "Versuche",
        "Fehlgeschlagen seit",
    ]
    by_reference = {r[0]: r for r in rows[1:]}
    assert set(by_reference) == {dog, traffic}
    assert by_reference[traffic][2] == "Ordnungsamt Neu-Anspach"
    assert by_reference[traffic][3] == "Die Zustellung ist fehlgeschlagen."
    assert by_reference[dog][3:5] == [
        "Die Stelle antwortete mit einem Serverfehler (HTTP 503).",
        "8",
    ]
    body = response.get_data(as_text=True)
    assert "HYPERLINK" not in body
    assert "Service Unavailable" not in body
    assert "Musterfrau" not in body  # the applicant's name

    only = _rows(viewer.get("/admin/fehler/export.csv?office=usingen-steueramt").data)
    assert [r[0] for r in only[1:]] == [dog]
    bad = viewer.get("/admin/fehler/export.csv?office=gibt-es-nicht")
    assert bad.status_code == 400
    with store.read() as session:
        exported = list(session.scalars(select(Event).where(Event.kind == "admin.exported")))
    assert [e.actor for e in exported] == ["account:vera", "account:vera"]
    assert exported[1].detail["filter"] == {"office": "usingen-steueramt"}
    assert exported[1].detail["rows"] == 1


def test_the_submission_list_exports_with_german_statuses(
    viewer: FlaskClient, store: Store
) -> None:
    """Status and deliveries in German words, as the list shows them."""
    reference = post(viewer, "dog-registration")
    rows = _rows(viewer.get("/admin/antraege/export.csv").data)
    assert rows[0] == ["Aktenzeichen", "Leistung", "Kommune", "Status", "Zustellungen", "Eingang"]
    [row] = rows[1:]
    assert row[0] == reference
    assert row[4] == "Steueramt Usingen: Wartet auf Zustellung"
