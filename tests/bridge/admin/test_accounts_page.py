"""Accounts and API tokens on the admin page: only admins, every change audited and CSRF-checked,
secrets shown once (a one-time password link, a new token) and kept only as hashes."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, text

from domain.accounts.accounts import NO_PASSWORD, create_account, get_account
from domain.accounts.password_links import create_link
from domain.accounts.passwords import ScryptParams
from store.accounts import AccountOffice, PasswordLink
from store.engine import Store
from store.models import Event, utcnow
from tests.bridge.admin.conftest import SCRYPT_N, SETUP, csrf_of, login
from tests.conftest import bearer, snapshot

STEUERAMT = "usingen-steueramt"
CHEF_PASSWORD = "Verwaltung-Usingen-2026!"
ANNA_PASSWORD = "Hundesteuer-ab-Januar-2026!"
LINK = re.compile(r'id="secret" class="secret" readonly value="([^"]+)"')


@pytest.fixture
def chef(client: FlaskClient, store: Store, accounts: dict[str, str]) -> FlaskClient:
    """The client logged in as an admin (beside the operator olga and the viewer vera)."""
    create_account(store, "chef", CHEF_PASSWORD, "admin", actor=SETUP, kdf=ScryptParams(n=SCRYPT_N))
    assert login(client, "chef", CHEF_PASSWORD).status_code == 303
    return client


def _events(store: Store, kind: str) -> list[Event]:
    with store.read() as session:
        return list(session.scalars(select(Event).where(Event.kind == kind).order_by(Event.id)))


def _secret(response_text: str) -> str:
    found = LINK.search(response_text)
    assert found, response_text
    return found.group(1).replace("&amp;", "&")


def test_only_admins_reach_accounts_and_tokens(operator: FlaskClient, store: Store) -> None:
    """An operator gets a German 403 for every page and action here; nothing changes."""
    overview = operator.get("/admin/").get_data(as_text=True)
    assert "Konten" not in overview
    token = csrf_of(operator.get("/admin/"))
    before = snapshot(store)
    for path in ("/admin/konten", "/admin/schluessel", "/admin/konten/vera"):
        response = operator.get(path)
        assert response.status_code == 403, path
        assert "Rolle „Verwalten“" in response.get_data(as_text=True)
    posts = {
        "/admin/konten": {"username": "mallory", "role": "admin"},
        "/admin/konten/vera/rolle": {"role": "admin"},
        "/admin/konten/vera/stellen": {"scope": "alle"},
        "/admin/konten/vera/entsperren": {},
        "/admin/konten/vera/passwort-link": {},
        "/admin/konten/vera/deaktivieren": {},
        "/admin/schluessel": {"name": "x", "role": "admin", "days": "1"},
    }
    for path, data in posts.items():
        response = operator.post(path, data={**data, "csrf_token": token})
        assert response.status_code == 403, path
    assert snapshot(store) == before


def test_an_admin_post_without_the_csrf_token_changes_nothing(
    chef: FlaskClient, store: Store
) -> None:
    """Creating an account needs the session's CSRF token like every form."""
    before = snapshot(store)
    response = chef.post("/admin/konten", data={"username": "anna", "role": "operator"})
    assert response.status_code == 403
    assert "Sicherheitsprüfung" in response.get_data(as_text=True)
    assert snapshot(store) == before


def test_a_new_account_sets_its_password_once_through_its_link(
    chef: FlaskClient, store: Store
) -> None:
    """Create (limited to the Steueramt) -> a one-time link, shown once, kept as a hash; the
    holder sets the password there once; the link then and after expiry is dead."""
    token = csrf_of(chef.get("/admin/konten"))
    created = chef.post(
        "/admin/konten",
        data={
            "csrf_token": token,
            "username": "anna",
            "display_name": "Anna Beispiel",
            "role": "operator",
            "scope": "auswahl",
            "office": STEUERAMT,
        },
    )
    assert created.status_code == 200
    page = created.get_data(as_text=True)
    assert "Konto anna angelegt" in page
    url = _secret(page)
    path = url[url.index("/admin/passwort/") :]
    secret = path.rsplit("/", 1)[1]
    anna = get_account(store, "anna")
    assert anna is not None
    assert anna.password_hash == NO_PASSWORD
    with store.read() as session:
        assert list(session.scalars(select(AccountOffice.office_id))) == [STEUERAMT]
        dumped = str(session.execute(text("SELECT * FROM password_links")).all())
    assert secret not in dumped  # only the hash is stored
    made = _events(store, "account.created")[-1]  # after olga, vera and chef
    assert made.detail["account"] == "anna"
    assert made.actor == "account:chef"
    assert made.detail["offices"] == [STEUERAMT]
    assert [e.actor for e in _events(store, "account.password_link_created")] == ["account:chef"]
    listed = chef.get("/admin/konten").get_data(as_text=True)
    assert "Wartet auf Passwort" in listed
    assert secret not in listed
    # Nobody can log in before the holder chose a password.
    stranger = chef.application.test_client()
    assert login(stranger, "anna", "irgendein-Passwort-2026").status_code == 401

    holder = chef.application.test_client()  # the holder's own browser, without a session
    form = holder.get(path)
    assert form.status_code == 200
    link_token = csrf_of(form)
    before = snapshot(store)
    mismatch = holder.post(
        path, data={"csrf_token": link_token, "password": ANNA_PASSWORD, "password2": "anders"}
    )
    assert mismatch.status_code == 422
    assert "stimmen nicht überein" in mismatch.get_data(as_text=True)
    weak = holder.post(
        path, data={"csrf_token": link_token, "password": "kurz", "password2": "kurz"}
    )
    assert weak.status_code == 422
    forged = holder.post(
        path, data={"csrf_token": "0" * 64, "password": ANNA_PASSWORD, "password2": ANNA_PASSWORD}
    )
    assert "Sicherheitsprüfung" in forged.get_data(as_text=True)
    assert snapshot(store) == before
    done = holder.post(
        path, data={"csrf_token": link_token, "password": ANNA_PASSWORD, "password2": ANNA_PASSWORD}
    )
    assert done.status_code == 303
    assert "hinweis=password-set" in done.headers["Location"]
    assert [e.actor for e in _events(store, "account.password_set")] == ["account:anna"]
    again = holder.get(path)
    assert again.status_code == 404
    assert "Link ungültig" in again.get_data(as_text=True)
    assert login(holder, "anna", ANNA_PASSWORD).status_code == 303

    stale, _ = create_link(store, "vera", actor=SETUP, now=utcnow() - dt.timedelta(hours=73))
    assert holder.get(f"/admin/passwort/{stale}").status_code == 404
    with store.read() as session:
        assert session.scalar(select(PasswordLink.used_at).where(PasswordLink.id == 1))


def test_an_admin_changes_role_and_offices_unlocks_and_deactivates(
    chef: FlaskClient, store: Store
) -> None:
    """Each action on olga's page changes what it says, on the record; refusals change nothing."""
    token = csrf_of(chef.get("/admin/konten/olga"))
    assert chef.post("/admin/konten/olga/rolle", data={"csrf_token": token, "role": "viewer"})
    assert get_account(store, "olga").role == "viewer"  # type: ignore[union-attr]  # exists
    before = snapshot(store)
    none_ticked = chef.post(
        "/admin/konten/olga/stellen", data={"csrf_token": token, "scope": "auswahl"}
    )
    assert none_ticked.status_code == 422
    assert "mindestens eine Stelle" in none_ticked.get_data(as_text=True)
    unknown = chef.post(
        "/admin/konten/olga/stellen",
        data={"csrf_token": token, "scope": "auswahl", "office": "gibt-es-nicht"},
    )
    assert unknown.status_code == 422
    admin_limited = chef.post(
        "/admin/konten/chef/stellen",
        data={"csrf_token": token, "scope": "auswahl", "office": STEUERAMT},
    )
    assert admin_limited.status_code == 422
    assert snapshot(store) == before
    limited = chef.post(
        "/admin/konten/olga/stellen",
        data={"csrf_token": token, "scope": "auswahl", "office": STEUERAMT},
    )
    assert limited.status_code == 303
    assert "Steueramt Usingen" in chef.get("/admin/konten/olga").get_data(as_text=True)
    [limit] = _events(store, "account.offices_set")
    assert limit.detail["new_offices"] == [STEUERAMT]
    assert limit.actor == "account:chef"

    for _ in range(5):
        login(chef.application.test_client(), "olga", "falsch-falsch-falsch")
    page = chef.get("/admin/konten/olga").get_data(as_text=True)
    assert "Konto entsperren" in page
    assert chef.post("/admin/konten/olga/entsperren", data={"csrf_token": token}).status_code == 303
    olga = get_account(store, "olga")
    assert olga is not None
    assert olga.failed_logins == 0
    assert olga.locked_until is None
    assert [e.actor for e in _events(store, "account.unlocked")] == ["account:chef"]

    gone = chef.post("/admin/konten/olga/deaktivieren", data={"csrf_token": token})
    assert gone.status_code == 303
    assert get_account(store, "olga").active is False  # type: ignore[union-attr]  # exists
    before = snapshot(store)
    last = chef.post("/admin/konten/chef/deaktivieren", data={"csrf_token": token})
    assert last.status_code == 409
    assert "letzte aktive Admin-Konto" in last.get_data(as_text=True)
    assert snapshot(store) == before


def test_tokens_are_listed_shown_once_and_revoked(chef: FlaskClient, store: Store) -> None:
    """A new token limited to the Steueramt is shown once; the list shows only its prefix."""
    token = csrf_of(chef.get("/admin/schluessel"))
    made = chef.post(
        "/admin/schluessel",
        data={
            "csrf_token": token,
            "name": "steuer-skript",
            "role": "operator",
            "scope": "auswahl",
            "office": STEUERAMT,
            "days": "30",
        },
    )
    assert made.status_code == 200
    clear = _secret(made.get_data(as_text=True))
    assert clear.startswith("fcb_")
    me = chef.get("/api/v1/me", headers=bearer(clear)).get_json()
    assert me["offices"] == [STEUERAMT]
    listed = chef.get("/admin/schluessel").get_data(as_text=True)
    assert "steuer-skript" in listed
    assert clear[:12] in listed
    assert clear not in listed
    bad_days = chef.post(
        "/admin/schluessel", data={"csrf_token": token, "name": "x", "role": "viewer", "days": "0"}
    )
    assert bad_days.status_code == 422
    revoked = chef.post(
        "/admin/schluessel/steuer-skript/widerrufen",
        data={"csrf_token": token, "reason": "Skript abgelöst"},
    )
    assert revoked.status_code == 303
    assert chef.get("/api/v1/me", headers=bearer(clear)).status_code == 401
    [event] = _events(store, "token.revoked")
    assert event.actor == "account:chef"
    assert event.detail["reason"] == "Skript abgelöst"
    assert _events(store, "token.created")[0].detail["offices"] == [STEUERAMT]


def test_a_deactivated_account_is_reactivated_on_its_page(
    chef: FlaskClient, store: Store, accounts: dict[str, str]
) -> None:
    """A clerk back from leave: her page offers "Konto wieder aktivieren"; afterwards she may
    log in again with her password, and the action is on the record (admins only)."""
    token = csrf_of(chef.get("/admin/konten/olga"))
    assert (
        chef.post("/admin/konten/olga/deaktivieren", data={"csrf_token": token}).status_code == 303
    )
    page = chef.get("/admin/konten/olga").get_data(as_text=True)
    assert "Konto wieder aktivieren" in page
    back = chef.post("/admin/konten/olga/aktivieren", data={"csrf_token": token})
    assert back.status_code == 303
    assert get_account(store, "olga").active is True  # type: ignore[union-attr]  # exists
    assert login(chef.application.test_client(), "olga", accounts["olga"]).status_code == 303
    [event] = _events(store, "account.reactivated")
    assert event.actor == "account:chef"
    assert "Konto wieder aktivieren" not in chef.get("/admin/konten/olga").get_data(as_text=True)
    again = chef.post("/admin/konten/olga/aktivieren", data={"csrf_token": token})
    assert again.status_code == 303
    assert len(_events(store, "account.reactivated")) == 1  # already active: nothing recorded
