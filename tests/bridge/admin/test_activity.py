"""The activity list: who did what, when and why, filtered by person, kind and period, paged."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update

from domain.accounts.accounts import Actor, create_account
from domain.accounts.passwords import ScryptParams
from domain.admin import operations
from schemas.options import LOCAL_TZ
from store.engine import Store
from store.models import Delivery, Event, utcnow
from tests.admin_support import post
from tests.bridge.admin.conftest import SCRYPT_N, SETUP, login
from tests.bridge.admin.report_support import attempt
from tests.conftest import snapshot

OLGA = Actor("olga", "operator", account_id=1, via="session")
VERA_TOKEN = Actor("sync", "operator", via="token")
ADA_PASSWORD = "Verwaltung-Usingen-2026!"


def _cases(store: Store, client: FlaskClient) -> list[str]:
    """Three failed cases; olga replays one and cancels one, a token replays the third."""
    refs = [post(client) for _ in range(3)]
    attempt(store, ok=False)
    with store.read() as session:
        ids = list(session.scalars(select(Delivery.id).order_by(Delivery.submission_id)))
    operations.replay_delivery(store, ids[0], OLGA, "Stelle wieder erreichbar")
    operations.cancel_delivery(store, ids[1], OLGA, "Doppelt eingereicht")
    operations.replay_delivery(store, ids[2], VERA_TOKEN, "")
    return refs


def _rows(page: str) -> list[str]:
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", r)).strip() for r in body.split("</tr>")][
        :-1
    ]


def test_the_list_says_who_did_what_when_and_why(viewer: FlaskClient, store: Store) -> None:
    """Newest first, German kinds, the person, the case linked, the reason; no logins for a viewer."""
    refs = _cases(store, viewer)
    page = viewer.get("/admin/aktivitaet").get_data(as_text=True)
    rows = _rows(page)
    assert len(rows) == 3
    assert "API-Schlüssel sync Zustellung erneut gesendet" in rows[0]
    assert "olga Zustellung abgebrochen" in rows[1]
    assert "an Steueramt Usingen Doppelt eingereicht" in rows[1]
    assert "olga Zustellung erneut gesendet" in rows[2]
    assert rows[2].endswith("Stelle wieder erreichbar")
    assert f'<a href="/admin/antraege/{refs[0]}">{refs[0]}</a>' in page
    assert "3 Einträge." in page
    # The viewer's own login is an account event: admins see those, a viewer does not.
    assert not any("Angemeldet" in r for r in rows)
    assert '<option value="account.login">' not in page


def test_an_admin_also_sees_logins_and_account_changes(
    client: FlaskClient, store: Store, accounts: dict[str, str]
) -> None:
    """Logins, failed logins and new accounts are in the admin's list, with what they concerned."""
    create_account(store, "ada", ADA_PASSWORD, "admin", actor=SETUP, kdf=ScryptParams(n=SCRYPT_N))
    assert login(client, "olga", "falsch-falsch-falsch").status_code == 401
    assert login(client, "ada", ADA_PASSWORD).status_code == 303
    page = client.get("/admin/aktivitaet").get_data(as_text=True)
    rows = _rows(page)
    assert "ada Angemeldet – –" in rows[0]
    assert "olga Anmeldung fehlgeschlagen – –" in rows[1]
    assert "Befehlszeile (setup) Konto angelegt – Konto ada, Rolle Verwalten –" in rows[2]
    assert '<option value="account.login">Angemeldet</option>' in page
    assert '<option value="account:ada">ada</option>' in page


def test_the_filters_narrow_by_person_kind_and_period(operator: FlaskClient, store: Store) -> None:
    """Person, kind and days (Europe/Berlin, both ends included) each narrow the list."""
    _cases(store, operator)
    # The token's replay happened "yesterday".
    yesterday = utcnow() - dt.timedelta(days=1)
    with store.session() as session:
        session.execute(update(Event).where(Event.actor == "token:sync").values(at=yesterday))
    today = utcnow().astimezone(LOCAL_TZ).date()
    day_before = yesterday.astimezone(LOCAL_TZ).date()

    by_olga = _rows(operator.get("/admin/aktivitaet?actor=account:olga").get_data(as_text=True))
    assert len(by_olga) == 2
    assert all(" olga " in f" {r} " for r in by_olga)
    assert 'value="account:olga" selected' in operator.get(
        "/admin/aktivitaet?actor=account:olga"
    ).get_data(as_text=True)

    cancels = _rows(
        operator.get("/admin/aktivitaet?kind=delivery.cancelled").get_data(as_text=True)
    )
    assert len(cancels) == 1
    assert "Zustellung abgebrochen" in cancels[0]

    both = (
        f"/admin/aktivitaet?kind=delivery.replayed&from={today.isoformat()}&to={today.isoformat()}"
    )
    [only] = _rows(operator.get(both).get_data(as_text=True))
    assert "olga Zustellung erneut gesendet" in only
    earlier = f"/admin/aktivitaet?to={day_before.isoformat()}"
    [token_row] = _rows(operator.get(earlier).get_data(as_text=True))
    assert "API-Schlüssel sync" in token_row

    nobody = operator.get("/admin/aktivitaet?actor=account:niemand").get_data(as_text=True)
    assert "Keine Einträge für diesen Filter." in nobody


def test_the_list_is_paged(operator: FlaskClient, store: Store) -> None:
    """One a page: two replays make two pages, and the next link keeps the filter."""
    _cases(store, operator)
    first = operator.get("/admin/aktivitaet?kind=delivery.replayed&per_page=1").get_data(
        as_text=True
    )
    assert len(_rows(first)) == 1
    assert "Seite 1 von 2" in first
    assert 'href="/admin/aktivitaet?kind=delivery.replayed&amp;per_page=1&amp;page=2"' in first
    second = operator.get("/admin/aktivitaet?kind=delivery.replayed&per_page=1&page=2")
    assert "olga Zustellung erneut gesendet" in _rows(second.get_data(as_text=True))[0]


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ("kind=admin.login", "Unbekannte Art der Aktion."),
        ("kind=account.login", "Unbekannte Art der Aktion."),  # an operator's list has none
        ("from=gestern", "Kein Datum der Form JJJJ-MM-TT."),
        ("from=2026-12-05&to=2026-12-01", "Der Beginn liegt nach dem Ende des Zeitraums."),
        ("wer=olga", "Unbekannter Filter"),
        ("actor=" + "x" * 101, "höchstens 100 Zeichen"),
        ("page=0", "Muss zwischen 1 und 1000000 liegen."),
        ("per_page=viele", "Seite und Einträge je Seite müssen ganze Zahlen sein."),
    ],
)
def test_a_bad_filter_is_a_german_400_and_changes_nothing(
    operator: FlaskClient, store: Store, query: str, text: str
) -> None:
    """Every bad filter value is named on a German error page; nothing is stored."""
    _cases(store, operator)
    before = {k: v for k, v in snapshot(store).items() if k != "admin_sessions"}
    response = operator.get(f"/admin/aktivitaet?{query}")
    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert text in response.get_data(as_text=True)
    after = {k: v for k, v in snapshot(store).items() if k != "admin_sessions"}
    assert after == before
