"""The admin page through the Flask client: login, sessions, CSRF, roles and what pages show."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from bridge import create_app
from domain.settings import Settings
from store.accounts import AdminSession
from store.engine import Store
from store.models import Delivery, Event, Payment, utcnow
from tests.admin_support import fail_all, payment_calls, post
from tests.bridge.admin.conftest import csrf_of, login
from tests.conftest import snapshot


def test_pages_need_a_session(client: FlaskClient) -> None:
    """Without a session every page redirects to the login, keeping where the clerk wanted to go."""
    for path in ("/admin/", "/admin/antraege", "/admin/fehler", "/admin/antraege/NA-2026-000001"):
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["Location"].startswith("/admin/login?next=")


def test_login_page_is_german_with_headers(client: FlaskClient) -> None:
    """The login page: German, labelled fields, security headers, a login cookie for its token."""
    response = client.get("/admin/login")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<html lang="de">' in page
    assert '<label for="username">Benutzername</label>' in page
    assert '<label for="password">Passwort</label>' in page
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Cache-Control"] == "no-store"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_the_style_sheet_is_served_without_a_session(client: FlaskClient) -> None:
    """The login page's style sheet link works: the blueprint finds bridge/static, not a 404."""
    page = client.get("/admin/login").get_data(as_text=True)
    assert 'href="/admin/static/admin.css"' in page
    response = client.get("/admin/static/admin.css")
    assert response.status_code == 200
    assert response.mimetype == "text/css"
    # Only the pages are no-store; the style sheet may be kept by the browser.
    assert response.headers.get("Cache-Control") != "no-store"
    response.close()


def test_login_sets_a_session_cookie_and_logout_ends_it(
    client: FlaskClient, accounts: dict[str, str]
) -> None:
    """A good login sets an HttpOnly session cookie on /admin; logout (POST) ends the session."""
    response = login(client, "olga", accounts["olga"])
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/"
    cookie = next(
        c for c in response.headers.getlist("Set-Cookie") if c.startswith("bridge_admin=")
    )
    assert "HttpOnly" in cookie
    assert "Path=/admin" in cookie
    assert "SameSite=Lax" in cookie
    # The test client talks from 127.0.0.1 over http: loopback, so not Secure.
    assert "Secure" not in cookie
    page = client.get("/admin/")
    assert page.status_code == 200
    assert "Angemeldet als <strong>olga</strong>" in page.get_data(as_text=True)
    out = client.post("/admin/logout", data={"csrf_token": csrf_of(page)})
    assert out.status_code == 303
    assert client.get("/admin/").status_code == 303


def test_session_cookie_is_secure_off_loopback(
    client: FlaskClient, accounts: dict[str, str]
) -> None:
    """A browser on another machine gets a Secure cookie (so it only travels over https)."""
    remote = {"REMOTE_ADDR": "192.0.2.10"}
    token = csrf_of(client.get("/admin/login", environ_base=remote))
    response = client.post(
        "/admin/login",
        data={"username": "olga", "password": accounts["olga"], "csrf_token": token},
        environ_base=remote,
    )
    cookie = next(
        c for c in response.headers.getlist("Set-Cookie") if c.startswith("bridge_admin=")
    )
    assert "Secure" in cookie


@pytest.mark.parametrize("username", ["olga", "niemand"])
def test_wrong_login_is_one_generic_message(
    client: FlaskClient, accounts: dict[str, str], username: str
) -> None:
    """Unknown user and wrong password get the same German message and no session."""
    response = login(client, username, "falsch-falsch-falsch")
    assert response.status_code == 401
    assert "Benutzername oder Passwort falsch." in response.get_data(as_text=True)
    assert not any(c.startswith("bridge_admin=") for c in response.headers.getlist("Set-Cookie"))
    assert client.get("/admin/").status_code == 303


def test_repeated_failures_lock_the_login_with_a_german_message(
    client: FlaskClient, accounts: dict[str, str]
) -> None:
    """After five wrong passwords the account is locked: the page says when to try again."""
    for _ in range(4):
        assert login(client, "olga", "falsch-falsch-falsch").status_code == 401
    response = login(client, "olga", "falsch-falsch-falsch")
    page = response.get_data(as_text=True)
    assert response.status_code == 429
    # The first lock is one minute: singular, not "1 Minuten" (issue 19).
    assert "Zu viele Fehlversuche. Bitte in 1 Minute erneut versuchen." in page
    # Even the right password is refused while locked.
    again = login(client, "olga", accounts["olga"])
    assert again.status_code == 429
    assert client.get("/admin/").status_code == 303


def test_login_without_csrf_token_is_refused(
    client: FlaskClient, accounts: dict[str, str], store: Store
) -> None:
    """A login form posted without the login cookie's token is refused and opens no session."""
    client.get("/admin/login")
    before = snapshot(store)
    response = client.post("/admin/login", data={"username": "olga", "password": accounts["olga"]})
    assert response.status_code == 403
    assert "Sicherheitsprüfung" in response.get_data(as_text=True)
    assert snapshot(store) == before
    assert client.get("/admin/").status_code == 303


def _failed_case(client: FlaskClient, store: Store) -> tuple[str, str]:
    reference = post(client)
    delivery_id = fail_all(store)[0]
    return reference, delivery_id


@pytest.mark.parametrize("token", [None, "", "0" * 64, "nicht-hex"])
def test_post_without_or_with_wrong_csrf_token_changes_nothing(
    operator: FlaskClient, store: Store, token: str | None
) -> None:
    """An operator's replay without the right CSRF token: 403 with a German message, DB unchanged."""
    reference, delivery_id = _failed_case(operator, store)
    before = snapshot(store)
    data = {} if token is None else {"csrf_token": token}
    response = operator.post(
        f"/admin/antraege/{reference}/zustellungen/{delivery_id}/erneut-senden", data=data
    )
    assert response.status_code == 403
    page = response.get_data(as_text=True)
    assert "Sicherheitsprüfung" in page
    assert "Es wurde nichts geändert" in page
    assert snapshot(store) == before


def test_post_from_a_foreign_origin_changes_nothing(operator: FlaskClient, store: Store) -> None:
    """The right token from another site's page (Origin header) is refused too."""
    reference, delivery_id = _failed_case(operator, store)
    token = csrf_of(operator.get(f"/admin/antraege/{reference}"))
    before = snapshot(store)
    response = operator.post(
        f"/admin/antraege/{reference}/zustellungen/{delivery_id}/erneut-senden",
        data={"csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert "nicht von dieser Seite" in response.get_data(as_text=True)
    assert snapshot(store) == before


def test_post_without_session_changes_nothing(client: FlaskClient, store: Store) -> None:
    """A POST with no session at all is refused with a German page; nothing changes."""
    reference, delivery_id = _failed_case(client, store)
    before = snapshot(store)
    response = client.post(
        f"/admin/antraege/{reference}/zustellungen/{delivery_id}/erneut-senden",
        data={"csrf_token": "0" * 64},
    )
    assert response.status_code == 403
    assert "Nicht angemeldet" in response.get_data(as_text=True)
    assert snapshot(store) == before


def test_viewer_sees_no_buttons_and_a_viewer_post_is_refused(
    viewer: FlaskClient, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """A viewer reads the case without action buttons; a forged replay POST is 403 and logged."""
    reference, delivery_id = _failed_case(viewer, store)
    page = viewer.get(f"/admin/antraege/{reference}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Fehlgeschlagen" in html
    assert "Erneut senden" not in html
    failures = viewer.get("/admin/fehler").get_data(as_text=True)
    assert reference in failures
    # Only the filter's GET form: no form that posts, no replay button.
    assert 'method="post"' not in failures.split("</header>")[1]
    assert "Erneut senden" not in failures
    assert "Alle gefilterten erneut senden" not in failures
    before = snapshot(store)
    with caplog.at_level("INFO", logger="bridge.admin"):
        response = viewer.post(
            f"/admin/antraege/{reference}/zustellungen/{delivery_id}/erneut-senden",
            data={"csrf_token": csrf_of(page)},
        )
    assert response.status_code == 403
    assert "Keine Berechtigung" in response.get_data(as_text=True)
    assert snapshot(store) == before
    refusals = [r for r in caplog.records if r.getMessage() == "admin.refused"]
    assert refusals
    fields = getattr(refusals[-1], "bridge_fields", {})
    assert fields["reason"] == "role"
    assert fields["account_id"] is not None


def test_operator_replays_from_the_case_page_on_the_record(
    operator: FlaskClient, store: Store
) -> None:
    """The operator's replay makes the delivery due again and leaves an event naming her."""
    reference, delivery_id = _failed_case(operator, store)
    page = operator.get(f"/admin/antraege/{reference}")
    html = page.get_data(as_text=True)
    assert "Erneut senden" in html
    assert "Wartet" not in html.split("Zustellungen</h2>")[1].split("</table>")[0]
    response = operator.post(
        f"/admin/antraege/{reference}/zustellungen/{delivery_id}/erneut-senden",
        data={"csrf_token": csrf_of(page)},
    )
    assert response.status_code == 303
    assert response.headers["Location"].startswith(f"/admin/antraege/{reference}?hinweis=replayed")
    with store.read() as session:
        delivery = session.get(Delivery, delivery_id)
        assert delivery is not None
        assert delivery.status == "pending"
        actors = [
            e.actor for e in session.scalars(select(Event).where(Event.delivery_id == delivery_id))
        ]
    assert "account:olga" in actors
    after = operator.get(response.headers["Location"]).get_data(as_text=True)
    assert "Die Zustellung wird erneut gesendet." in after
    assert "Wartet auf Zustellung" in after
    assert "olga" in after.split("Verlauf</h2>")[1]


def test_cancel_needs_a_reason(operator: FlaskClient, store: Store) -> None:
    """Cancelling without a reason is refused with the German message; nothing changes."""
    reference, delivery_id = _failed_case(operator, store)
    token = csrf_of(operator.get(f"/admin/antraege/{reference}"))
    before = snapshot(store)
    response = operator.post(
        f"/admin/antraege/{reference}/zustellungen/{delivery_id}/abbrechen",
        data={"csrf_token": token, "reason": "  "},
    )
    assert response.status_code == 422
    assert "Bitte einen Grund angeben." in response.get_data(as_text=True)
    assert snapshot(store) == before


def test_a_delivery_of_another_case_is_not_found(operator: FlaskClient, store: Store) -> None:
    """The URL's reference and delivery must belong together; else 404 and nothing changes."""
    reference, _ = _failed_case(operator, store)
    other = post(operator, service="traffic-order")
    other_delivery = fail_all(store)[-1]
    token = csrf_of(operator.get(f"/admin/antraege/{reference}"))
    before = snapshot(store)
    response = operator.post(
        f"/admin/antraege/{reference}/zustellungen/{other_delivery}/erneut-senden",
        data={"csrf_token": token},
    )
    assert other != reference
    assert response.status_code == 404
    assert "Diese Zustellung gibt es nicht." in response.get_data(as_text=True)
    assert snapshot(store) == before


def test_lists_filter_and_label_in_german(operator: FlaskClient, store: Store) -> None:
    """The list shows German labels and statuses; a bad filter is a German 400 page."""
    reference, _ = _failed_case(operator, store)
    html = operator.get("/admin/antraege").get_data(as_text=True)
    for text in (
        "Aktenzeichen",
        "Leistung",
        "Kommune",
        "Stelle",
        "Status",
        "Eingang",
        reference,
        "Fehlgeschlagen",
    ):
        assert text in html
    assert '<th scope="col">' in html
    bad = operator.get("/admin/antraege?status=kaputt&from=gestern")
    page = bad.get_data(as_text=True)
    assert bad.status_code == 400
    assert "Der Filter ist ungültig." in page
    assert "Eingang von" in page
    assert operator.get("/admin/antraege?page=x").status_code == 400
    assert operator.get("/admin/fehler?unbekannt=1").status_code == 400


def test_overview_counts_chart_and_unknown_queue(
    operator: FlaskClient, store: Store, app: Flask
) -> None:
    """The overview: counts by status, an accessible SVG chart and its table; Redis down -> unbekannt."""
    _, delivery_id = _failed_case(operator, store)
    with store.session() as session:
        for days_ago in (0, 2, 2):
            session.add(
                Event(
                    delivery_id=delivery_id,
                    kind="delivery.failed",
                    actor="worker",
                    at=utcnow() - dt.timedelta(days=days_ago),
                    detail={},
                )
            )
    html = operator.get("/admin/").get_data(as_text=True)
    assert "Anträge nach Status" in html
    assert '<svg class="chart" role="img"' in html
    assert "Fehlgeschlagene Zustellungen an Steueramt" in html
    assert "3 Fehler vom" in html
    assert "Zahlen als Tabelle" in html
    # fail_all sets the status without events, so the chart is empty; the callout counts.
    assert "1</strong> Zustellung fehlgeschlagen" in html
    bridge = app.extensions["bridge"]
    from redis import Redis

    bridge.redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    html = operator.get("/admin/").get_data(as_text=True)
    assert html.count("unbekannt") >= 2


def test_bulk_confirmation_shows_the_exact_count(operator: FlaskClient, store: Store) -> None:
    """'Alle gefilterten erneut senden' first shows how many and asks for a reason."""
    post(operator)
    post(operator, service="traffic-order")
    fail_all(store)
    html = operator.get("/admin/fehler/alle-erneut-senden").get_data(as_text=True)
    assert 'id="bulk-count">' in html
    with store.read() as session:
        failed = len(list(session.scalars(select(Delivery.id).where(Delivery.status == "failed"))))
    assert f'id="bulk-count">{failed}<' in html
    # A reason is preselected; the free text is optional.
    assert 'value="wieder-erreichbar" checked' in html
    assert 'name="reason" maxlength="400"' in html


def test_viewer_gets_no_bulk_confirmation(viewer: FlaskClient, store: Store) -> None:
    """The bulk confirmation is for operators only."""
    response = viewer.get("/admin/fehler/alle-erneut-senden")
    assert response.status_code == 403


def _bulk_form(client: FlaskClient) -> dict[str, str]:
    html = client.get("/admin/fehler/alle-erneut-senden")
    text = html.get_data(as_text=True)
    count = text.split('id="bulk-count">')[1].split("<")[0]
    return {"csrf_token": csrf_of(html), "expected": count}


def test_bulk_replay_needs_a_reason_and_the_confirmed_count(
    operator: FlaskClient, store: Store
) -> None:
    """No reason: 422; a count that changed since the confirmation: 409 with the new count."""
    post(operator)
    fail_all(store)
    form = _bulk_form(operator)
    before = snapshot(store)
    response = operator.post("/admin/fehler/alle-erneut-senden", data={**form, "reason": ""})
    assert response.status_code == 422
    assert "Bitte einen Grund angeben." in response.get_data(as_text=True)
    assert snapshot(store) == before
    post(operator, service="traffic-order")
    fail_all(store)
    before = snapshot(store)
    stale = operator.post("/admin/fehler/alle-erneut-senden", data={**form, "reason": "Test"})
    page = stale.get_data(as_text=True)
    assert stale.status_code == 409
    assert "Die Anzahl hat sich seit der Bestätigung geändert." in page
    assert f'id="bulk-count">{int(form["expected"]) + 1}<' in page
    assert snapshot(store) == before


def test_bulk_replay_starts_and_shows_progress(operator: FlaskClient, store: Store) -> None:
    """Confirmed with a reason: the job starts, the progress page counts, the event names her."""
    post(operator)
    post(operator, service="traffic-order")
    fail_all(store)
    form = _bulk_form(operator)
    response = operator.post(
        "/admin/fehler/alle-erneut-senden",
        data={**form, "reason": "Fachverfahren am Wochenende ausgefallen"},
    )
    assert response.status_code == 303
    progress = operator.get(response.headers["Location"])
    html = progress.get_data(as_text=True)
    assert progress.status_code == 200
    assert f'id="bulk-total">{form["expected"]}<' in html
    # No reload of the whole page (axe: meta-refresh); a same-origin script reads the state.
    assert 'http-equiv="refresh"' not in html
    assert '<script src="/admin/static/bulk-progress.js" defer></script>' in html
    state = operator.get(response.headers["Location"] + "/stand")
    assert state.status_code == 200
    assert state.get_json()["total"] == int(form["expected"])
    assert state.get_json()["running"] is True
    assert "Fachverfahren am Wochenende ausgefallen" in html
    with store.read() as session:
        started = session.scalars(
            select(Event).where(Event.kind == "admin.bulk_replay.started")
        ).one()
    assert started.actor == "account:olga"
    for path in ("/admin/", "/admin/fehler"):
        assert "Eine Sammel-Wiederholung läuft" in operator.get(path).get_data(as_text=True)
    cancel_form = {"csrf_token": csrf_of(progress), "reason": "doch nicht"}
    cancelled = operator.post(response.headers["Location"] + "/abbrechen", data=cancel_form)
    assert cancelled.status_code == 303
    assert "abgebrochen" in operator.get(cancelled.headers["Location"]).get_data(as_text=True)


def test_viewer_cannot_start_a_bulk_replay(viewer: FlaskClient, store: Store) -> None:
    """A viewer's forged bulk POST is 403 and changes nothing."""
    post(viewer)
    fail_all(store)
    token = csrf_of(viewer.get("/admin/fehler"))
    before = snapshot(store)
    response = viewer.post(
        "/admin/fehler/alle-erneut-senden",
        data={"csrf_token": token, "expected": "1", "reason": "x"},
    )
    assert response.status_code == 403
    assert snapshot(store) == before


def test_an_idle_session_expires_to_the_login(operator: FlaskClient, store: Store) -> None:
    """After the idle time the next click lands on the login page saying the session expired."""
    with store.session() as session:
        session.execute(update(AdminSession).values(last_seen_at=utcnow() - dt.timedelta(hours=1)))
    response = operator.get("/admin/antraege")
    assert response.status_code == 303
    assert "hinweis=expired" in response.headers["Location"]
    page = operator.get(response.headers["Location"]).get_data(as_text=True)
    assert "Ihre Sitzung ist abgelaufen." in page


@pytest.mark.parametrize(
    ("target", "lands"),
    [
        ("/admin/fehler", "/admin/fehler"),
        ("//evil.example/admin/", "/admin/"),
        ("https://evil.example/", "/admin/"),
        ("/admin/\\\\evil.example", "/admin/"),
    ],
)
def test_login_goes_only_to_our_own_pages(
    client: FlaskClient, accounts: dict[str, str], target: str, lands: str
) -> None:
    """The page asked for before the login is kept, but never a place outside /admin/."""
    token = csrf_of(client.get("/admin/login"))
    response = client.post(
        "/admin/login",
        data={
            "username": "olga",
            "password": accounts["olga"],
            "csrf_token": token,
            "next": target,
        },
    )
    assert response.status_code == 303
    assert response.headers["Location"] == lands


def test_the_list_is_paged(operator: FlaskClient, store: Store) -> None:
    """More than a page of cases: page 1 links to page 2, which has the rest."""
    for _ in range(3):
        post(operator)
    first = operator.get("/admin/antraege?per_page=2").get_data(as_text=True)
    assert "Seite 1 von 2" in first
    assert 'href="/admin/antraege?per_page=2&amp;page=2"' in first
    second = operator.get("/admin/antraege?per_page=2&page=2").get_data(as_text=True)
    assert "Seite 2 von 2" in second
    assert second.count('<th scope="row"><a href="/admin/antraege/') == 1
    assert operator.get("/admin/antraege?per_page=100000").status_code == 400


def test_post_with_a_foreign_referer_changes_nothing(operator: FlaskClient, store: Store) -> None:
    """Without Origin, a Referer from another site is refused just the same."""
    reference, delivery_id = _failed_case(operator, store)
    token = csrf_of(operator.get(f"/admin/antraege/{reference}"))
    before = snapshot(store)
    response = operator.post(
        f"/admin/antraege/{reference}/zustellungen/{delivery_id}/erneut-senden",
        data={"csrf_token": token},
        headers={"Referer": "https://evil.example/admin/"},
    )
    assert response.status_code == 403
    assert snapshot(store) == before


def test_unknown_case_is_a_german_404(operator: FlaskClient) -> None:
    """A reference that names no case, or is no reference, is a German 404 page."""
    for reference in ("NA-2026-999999", "kein-aktenzeichen"):
        response = operator.get(f"/admin/antraege/{reference}")
        assert response.status_code == 404
        assert "Diesen Antrag gibt es nicht." in response.get_data(as_text=True)
        assert response.mimetype == "text/html"


def test_database_outage_is_a_german_503(environ: dict[str, str], tmp_path: Path) -> None:
    """A store that cannot be reached: the admin page answers 503 in German, not an error."""
    environ["DATABASE_URL"] = f"sqlite:///{tmp_path / 'fehlt' / 'bridge.db'}"
    app = create_app(Settings.from_env(environ))
    client = app.test_client()
    client.set_cookie("bridge_admin", "x" * 43, path="/admin")
    response = client.get("/admin/")
    assert response.status_code == 503
    assert "Die Datenbank ist gerade nicht erreichbar." in response.get_data(as_text=True)
    assert response.headers["Retry-After"] == "60"
    app.extensions["bridge"].store.dispose()


def test_what_a_back_office_answered_is_shown_escaped(operator: FlaskClient, store: Store) -> None:
    """An error text from a back office is data, never markup, on the failures and case pages."""
    post(operator)
    fail_all(store, error='<script>alert("x")</script>')
    reference = post(operator)
    fail_all(store, error='<script>alert("x")</script>')
    for path in ("/admin/fehler", f"/admin/antraege/{reference}"):
        html = operator.get(path).get_data(as_text=True)
        assert "<script>" not in html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


def test_replay_from_the_failures_list_returns_to_the_same_filter(
    operator: FlaskClient, store: Store
) -> None:
    """A replay from a filtered failures list goes back to that list, never elsewhere."""
    reference, delivery_id = _failed_case(operator, store)
    url = f"/admin/antraege/{reference}/zustellungen/{delivery_id}/erneut-senden"
    page = operator.get("/admin/fehler?office=usingen-steueramt")
    assert 'name="back" value="/admin/fehler?office=usingen-steueramt"' in page.get_data(
        as_text=True
    )
    token = csrf_of(page)
    response = operator.post(
        url, data={"csrf_token": token, "back": "/admin/fehler?office=usingen-steueramt"}
    )
    assert response.headers["Location"] == (
        "/admin/fehler?office=usingen-steueramt&hinweis=replayed"
    )
    fail_all(store)
    elsewhere = operator.post(url, data={"csrf_token": token, "back": "https://evil.example/"})
    assert elsewhere.headers["Location"].startswith(f"/admin/antraege/{reference}?")


def test_case_page_shows_the_payment_that_counts(operator: FlaskClient, store: Store) -> None:
    """A traffic order's fee: open at first; after a cancelled and a paid attempt the page
    shows the paid one with its Kassenzeichen, and both attempts."""
    reference = post(operator, "traffic-order")
    number = int(reference.rsplit("-", 1)[1])
    html = operator.get(f"/admin/antraege/{reference}").get_data(as_text=True)
    payment = html.split('id="h-payment"')[1].split("</section>")[0]
    assert "<dd>35,00 €</dd>" in payment
    assert "Offen" in payment
    with store.session() as session:
        first = session.scalars(select(Payment).where(Payment.submission_id == number)).one()
        first.status = "CANCELED"
        session.add(
            Payment(
                submission_id=number,
                provider=first.provider,
                transaction_id="T-2",
                transaction_reference="KZ-2026-000042",
                amount_cents=first.amount_cents,
                currency="EUR",
                purpose=first.purpose,
                status="PAYED",
                method="GIROPAY",
                paid_at=utcnow(),
                expires_at=first.expires_at,
                created_at=utcnow() + dt.timedelta(seconds=1),
            )
        )
    html = operator.get(f"/admin/antraege/{reference}").get_data(as_text=True)
    payment = html.split('id="h-payment"')[1].split("</section>")[0]
    assert "<dt>Kassenzeichen</dt><dd>KZ-2026-000042</dd>" in payment
    assert "<dt>Zahlart</dt><dd>giropay</dd>" in payment
    assert "<dt>Zahlungsversuche</dt><dd>2 (" in payment


def test_case_page_shows_the_payment_callback_journal(operator: FlaskClient, store: Store) -> None:
    """The case page lists the provider calls about its payment in German words: time,
    provider, kind and verdict; a case without a fee has no such section."""
    reference = post(operator, "traffic-order")
    html = operator.get(f"/admin/antraege/{reference}").get_data(as_text=True)
    section = html.split('id="h-journal"')[1].split("</section>")[0]
    assert "Zu diesem Antrag hat kein Bezahldienst eine Nachricht geschickt." in section
    payment_calls(operator, store, reference)
    html = operator.get(f"/admin/antraege/{reference}").get_data(as_text=True)
    section = html.split('id="h-journal"')[1].split("</section>")[0]
    assert ">Nachrichten zur Zahlung</h2>" in html
    rows = section.split("<tbody>")[1].split("</tbody>")[0].count("<tr>")
    assert rows == 2
    assert "<td>epay21-demo</td>" in section
    assert "<td>Nachricht des Bezahldienstes</td>" in section
    assert "<td>Transaktion passt nicht, abgelehnt</td>" in section
    assert "transaction_mismatch" not in section
    assert "127.0.0.1" not in section
    assert 'id="h-journal"' not in operator.get(f"/admin/antraege/{post(operator)}").get_data(
        as_text=True
    )


def test_cancelling_an_unpaid_cases_held_delivery_withdraws_it(
    operator: FlaskClient, store: Store
) -> None:
    """The case page cancels a delivery held for the fee; the case is then withdrawn."""
    reference = post(operator, service="traffic-order")
    with store.read() as session:
        delivery_id = session.scalars(select(Delivery.id)).one()
    page = operator.get(f"/admin/antraege/{reference}")
    response = operator.post(
        f"/admin/antraege/{reference}/zustellungen/{delivery_id}/abbrechen",
        data={"csrf_token": csrf_of(page), "reason": "Antrag zurückgezogen"},
    )
    assert response.status_code == 303
    with store.read() as session:
        assert session.scalars(select(Delivery.status)).one() == "cancelled"
        assert session.scalars(select(Payment.status)).one() == "withdrawn"


def test_the_case_page_withdraws_an_unpaid_case_in_one_step(
    operator: FlaskClient, store: Store
) -> None:
    """The form "Antrag zurückziehen" cancels every open delivery of the case at once (here the one held
    for the fee) and withdraws its payment; without a reason nothing changes (a German 422)."""
    reference = post(operator, service="traffic-order")
    page = operator.get(f"/admin/antraege/{reference}")
    html = page.get_data(as_text=True)
    assert "Antrag zurückziehen" in html
    before = snapshot(store)
    refused = operator.post(
        f"/admin/antraege/{reference}/abbrechen", data={"csrf_token": csrf_of(page), "reason": ""}
    )
    assert refused.status_code == 422
    assert "Grund" in refused.get_data(as_text=True)
    assert snapshot(store) == before
    done = operator.post(
        f"/admin/antraege/{reference}/abbrechen",
        data={"csrf_token": csrf_of(page), "reason": "Antrag telefonisch zurückgezogen"},
    )
    assert done.status_code == 303
    assert "hinweis=case-cancelled" in done.headers["Location"]
    with store.read() as session:
        assert session.scalars(select(Delivery.status)).all() == ["cancelled"]
        assert session.scalars(select(Payment.status)).one() == "withdrawn"
    shown = operator.get(done.headers["Location"]).get_data(as_text=True)
    assert "Der Antrag wurde zurückgezogen" in shown
    assert "Antrag zurückziehen" not in shown


def test_a_viewer_cannot_withdraw_a_case(viewer: FlaskClient, store: Store) -> None:
    """The case-level cancel is for operators: a viewer's forged POST is 403, nothing changes."""
    reference = post(viewer, service="traffic-order")
    page = viewer.get(f"/admin/antraege/{reference}")
    assert "Antrag zurückziehen" not in page.get_data(as_text=True)
    before = snapshot(store)
    refused = viewer.post(
        f"/admin/antraege/{reference}/abbrechen",
        data={"csrf_token": csrf_of(page), "reason": "zurückgezogen"},
    )
    assert refused.status_code == 403
    assert snapshot(store) == before
