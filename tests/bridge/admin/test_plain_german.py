"""Every word on the admin page German and plain (issue 19, item 3).

A walk over every page with data (a failed case, a paid case, a bulk replay) fails on English
words and on raw event keys; the office's error, money, payment methods, providers, plurals,
the error pages under /admin/ and the login page are checked one by one.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from html.parser import HTMLParser

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from werkzeug.test import TestResponse

from bridge.admin import activity as activity_page
from bridge.admin.explain import explain
from bridge.admin.labels import EVENT_KIND, money, payment_method, plural
from domain.accounts.accounts import create_account
from domain.accounts.passwords import ScryptParams
from domain.admin.activity import ACCOUNT_KINDS, CASE_KINDS, kinds_for
from domain.config import parse_config
from domain.payments.payments import Confirmed, apply
from store.engine import Store
from store.models import Delivery, Event, Payment, utcnow
from tests.admin_support import fail_all, post
from tests.bridge.admin.conftest import SCRYPT_N, SETUP, csrf_of, login
from tests.conftest import ROOT

# Words a clerk should never read on the page: protocol phrases, status codes, config ids,
# English labels and shell advice (the technical text behind "Technische Meldung" is exempt).
ENGLISH = (
    "Internal Server Error",
    "Service Unavailable",
    "Bad Request",
    "Not Found",
    "Forbidden",
    "Error",
    "error",
    "failed",
    "pending",
    "delivered",
    "cancelled",
    "payment",
    "delivery",
    "submission",
    "Worker",
    "worker",
    "Redis",
    "README",
    "python",
    "EUR",
    "GIROPAY",
    "PAYED",
    "BOOKED",
    "INITIAL",
    "None",
    "null",
    "True",
    "False",
    "operator",
    "viewer",
    "admin",
    "token",
    "replay",
    "bulk",
    "timeout",
    "ConnectionError",
    "http-json",
    "epay21-demo",
    "Please",
    "please",
    "the",
)
CHEF = "Verwaltung-Usingen-2026!"
RAW_KEY = re.compile(
    r"\b(?:submission|delivery|payment|admin|queue|retention|attachment|account|token)\.[a-z_]+"
)


class _Text(HTMLParser):
    """The text a clerk reads: visible text and labels for assistive technology."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        technical = tag == "details" and "technik" in (found.get("class") or "")
        if tag in ("script", "style") or technical or self._skip:
            self._skip.append(tag)
            return
        for name in ("aria-label", "placeholder", "title", "alt"):
            if found.get(name):
                self.parts.append(str(found[name]))

    def handle_endtag(self, tag: str) -> None:
        if self._skip and self._skip[-1] == tag:
            self._skip.pop()

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    """What a clerk reads on a page (technical details left out)."""
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def foreign_words(text: str) -> list[str]:
    """English words and raw event keys found in `text`."""
    found = [w for w in ENGLISH if re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", text)]
    return found + RAW_KEY.findall(text)


def _weekend(store: Store) -> None:
    """A failed delivery with the history a failing weekend leaves (retries, then failed)."""
    error = "HTTP 500 Internal Server Error: Der Zustellpunkt ist vorübergehend nicht bereit."
    ids = fail_all(store, error=error, status_code=500)
    with store.session() as session:
        for delivery_id in ids:
            delivery = session.get(Delivery, delivery_id)
            assert delivery is not None
            for kind in ("delivery.retry_scheduled", "delivery.failed"):
                session.add(
                    Event(
                        submission_id=delivery.submission_id,
                        delivery_id=delivery_id,
                        kind=kind,
                        actor="worker",
                        at=utcnow(),
                        detail={"error": error},
                    )
                )


def _paid(app: Flask, store: Store, reference: str) -> None:
    """The traffic order's fee paid by giropay, through the payments' one way of applying it."""
    number = int(reference.rsplit("-", 1)[1])
    with store.read() as session:
        payment = session.scalars(select(Payment).where(Payment.submission_id == number)).one()
        payment_id, cents = payment.id, payment.amount_cents
    confirmed = Confirmed("PAYED", cents, "EUR", transaction_reference="KZ-1", method="GIROPAY")
    config = app.extensions["bridge"].settings.config
    assert apply(store, config, payment_id, confirmed, "provider").verdict == "applied"


def test_every_admin_page_speaks_plain_german(
    app: Flask, operator: FlaskClient, store: Store, accounts: dict[str, str]
) -> None:
    """Logged in, with a failed case, a paid case and a bulk replay running: no page shows an
    English word or an event key; the error pages under /admin/ are German HTML too."""
    failed = post(operator)
    _weekend(store)
    paid = post(operator, "traffic-order")
    _paid(app, store, paid)
    confirm = operator.get("/admin/fehler/alle-erneut-senden")
    pages = {"confirmation": confirm}
    form = {"csrf_token": csrf_of(confirm), "reason_choice": "wieder-erreichbar"}
    form["expected"] = confirm.get_data(as_text=True).split('id="bulk-count">')[1].split("<")[0]
    started = operator.post("/admin/fehler/alle-erneut-senden", data=form)
    assert started.status_code == 303
    for name, path in {
        "overview": "/admin/",
        "failures": "/admin/fehler",
        "submissions": "/admin/antraege",
        "failed case": f"/admin/antraege/{failed}",
        "paid case": f"/admin/antraege/{paid}",
        "progress": started.headers["Location"],
        "unknown case": "/admin/antraege/XX-2026-000999",
        "unknown address": "/admin/gibt-es-nicht",
        "unknown replay": "/admin/sammel/abc",
    }.items():
        pages[name] = operator.get(path)
    viewer = app.test_client()
    assert login(viewer, "vera", accounts["vera"]).status_code == 303
    pages["forbidden"] = viewer.get("/admin/fehler/alle-erneut-senden")
    pages["login"] = app.test_client().get("/admin/login")
    found = {}
    for name, response in pages.items():
        assert response.mimetype == "text/html", name
        words = foreign_words(visible_text(response.get_data(as_text=True)))
        if words:
            found[name] = words
    assert found == {}
    assert pages["unknown address"].status_code == 404
    assert "Diese Seite gibt es nicht." in pages["unknown address"].get_data(as_text=True)
    assert pages["forbidden"].status_code == 403
    paid_page = visible_text(pages["paid case"].get_data(as_text=True))
    for expected in ("Zahlung eingegangen", "35,00 €", "giropay", "epay21 (ekom21)"):
        assert expected in paid_page
    failed_page = visible_text(pages["failed case"].get_data(as_text=True))
    assert "Die Stelle antwortete mit einem Serverfehler (HTTP 500)." in failed_page
    assert "Zustellung fehlgeschlagen, ein neuer Versuch ist geplant" in failed_page


def _foreign(pages: dict[str, TestResponse]) -> dict[str, list[str]]:
    """Each HTML page's English words and raw event keys (none expected)."""
    found = {}
    for name, response in pages.items():
        assert response.mimetype == "text/html", name
        words = foreign_words(visible_text(response.get_data(as_text=True)))
        if words:
            found[name] = words
    return found


def test_the_accounts_report_and_activity_pages_speak_plain_german(
    app: Flask, operator: FlaskClient, store: Store, accounts: dict[str, str]
) -> None:
    """An admin creates a limited account (its password link), changes its offices, makes and
    revokes a token, exports a list; a fee stays open for two days. The accounts page, an
    account's page, the tokens page, the password-link page, the daily report and the activity
    list (an admin's and an operator's) show no English word and no event key."""
    post(operator)
    _weekend(store)
    fee = post(operator, "traffic-order")
    with store.session() as session:
        session.execute(update(Payment).values(created_at=utcnow() - dt.timedelta(days=2)))
    operator.get("/admin/fehler/export.csv")
    create_account(store, "chef", CHEF, "admin", actor=SETUP, kdf=ScryptParams(n=SCRYPT_N))
    chef = app.test_client()
    assert login(chef, "chef", CHEF).status_code == 303
    token = csrf_of(chef.get("/admin/konten"))
    created = chef.post(
        "/admin/konten",
        data={"csrf_token": token, "username": "anna", "display_name": "Anna Beispiel",
              "role": "operator", "scope": "auswahl", "office": "usingen-steueramt"},
    )  # fmt: skip
    assert created.status_code == 200
    link = created.get_data(as_text=True).split('id="secret" class="secret" readonly value="')[1]
    link = link.split('"')[0].replace("&amp;", "&")
    limit = {"csrf_token": token, "scope": "auswahl", "office": "neu-anspach-ordnungsamt"}
    assert chef.post("/admin/konten/anna/stellen", data=limit).status_code == 303
    made = chef.post(
        "/admin/schluessel",
        data={"csrf_token": token, "name": "steuer-skript", "role": "operator",
              "scope": "auswahl", "office": "usingen-steueramt", "days": "30"},
    )  # fmt: skip
    assert made.status_code == 200
    gone = {"csrf_token": token, "reason": "Skript abgelöst"}
    assert chef.post("/admin/schluessel/steuer-skript/widerrufen", data=gone).status_code == 303
    pages = {
        "account created": created,
        "token created": made,
        "accounts": chef.get("/admin/konten"),
        "account": chef.get("/admin/konten/anna"),
        "tokens": chef.get("/admin/schluessel"),
        "password link": app.test_client().get(link[link.index("/admin/passwort/") :]),
        "report": chef.get("/admin/bericht?stand=jetzt"),
        "report (operator)": operator.get("/admin/bericht?stand=jetzt"),
        "activity": chef.get("/admin/aktivitaet"),
        "activity (operator)": operator.get("/admin/aktivitaet"),
    }
    assert {n: r.status_code for n, r in pages.items()} == dict.fromkeys(pages, 200)
    assert _foreign(pages) == {}
    report = visible_text(pages["report"].get_data(as_text=True))
    assert f"{fee}: 35,00 € bei epay21 (ekom21), offen seit" in report
    activity = visible_text(pages["activity"].get_data(as_text=True))
    for sentence in (
        "Konto angelegt",
        "Stellen des Kontos geändert",
        "API-Schlüssel widerrufen",
        "Link zum Setzen des Passworts erstellt",
        "Liste als CSV-Datei heruntergeladen",
    ):
        assert sentence in activity  # fmt: skip
    assert "Sonstige" not in activity


def test_the_walk_finds_what_it_must_refuse() -> None:
    """The word check is not blind: an English status, an event key and a raw amount are found,
    a technical text inside "Technische Meldung" is not."""
    html = (
        "<main><p>Status: failed</p><p>payment.paid</p><p>35.00 EUR</p>"
        '<details class="technik"><summary>Technische Meldung</summary>'
        "HTTP 500 Internal Server Error</details></main>"
    )
    assert foreign_words(visible_text(html)) == ["failed", "payment", "EUR", "payment.paid"]


def test_the_technical_text_is_one_click_away(operator: FlaskClient, store: Store) -> None:
    """The stored error stays on the page, inside a closed <details> under the plain sentence."""
    post(operator)
    fail_all(store, error="HTTP 500 Internal Server Error: nicht bereit", status_code=500)
    html = operator.get("/admin/fehler").get_data(as_text=True)
    assert "Die Stelle antwortete mit einem Serverfehler (HTTP 500)." in html
    technical = html.split('<details class="technik">')[1].split("</details>")[0]
    assert "<summary>Technische Meldung</summary>" in technical
    assert "HTTP 500 Internal Server Error: nicht bereit" in technical


@pytest.mark.parametrize(
    ("error", "code", "sentence"),
    [
        ("HTTP 500 Internal Server Error: ...", 500, "Die Stelle antwortete mit einem Serverfehler (HTTP 500)."),
        ("HTTP 503 Service Unavailable: ...", None, "Die Stelle antwortete mit einem Serverfehler (HTTP 503)."),
        ("HTTP 400 Bad Request: abgelehnt", 400, "Die Stelle hat den Antrag abgelehnt (HTTP 400)."),
        ("HTTP 401 Unauthorized", 401, "Die Stelle hat die Anmeldung der Brücke abgelehnt (HTTP 401)."),
        ("HTTP 301 Moved Permanently: ...", 301, "Die Stelle leitet an eine andere Adresse weiter (HTTP 301); die Adresse der Stelle muss in der Konfiguration berichtigt werden."),
        ("HTTP 429 Too Many Requests", 429, "Die Stelle war überlastet und bat, später erneut zu senden (HTTP 429)."),
        ("Der Zustellpunkt ist nicht erreichbar (ConnectionError).", None, "Die Stelle war nicht erreichbar: die Verbindung wurde abgelehnt oder kam nicht zustande."),
        ("Zeitüberschreitung beim Zustellpunkt (ReadTimeout).", None, "Die Stelle hat nicht rechtzeitig geantwortet (Zeitüberschreitung)."),
        ("timeout", None, "Die Stelle hat nicht rechtzeitig geantwortet (Zeitüberschreitung)."),
        ("SMTP 451: Der Mailserver hat die Nachricht vorübergehend abgewiesen.", None, "Der Mailserver der Stelle hat die Nachricht vorübergehend abgewiesen (SMTP 451)."),
        ("SMTP 550: Der Mailserver hat die Nachricht abgelehnt.", None, "Der Mailserver der Stelle hat die Nachricht abgelehnt (SMTP 550)."),
        ("Der Mailserver ist nicht erreichbar (ConnectionRefusedError).", None, "Der Mailserver der Stelle war nicht erreichbar (keine Verbindung)."),
        ("etwas ganz anderes", None, "Die Zustellung ist fehlgeschlagen."),
    ],
)  # fmt: skip
def test_an_office_error_in_words(error: str, code: int | None, sentence: str) -> None:
    """Server errors, refusals, redirects, refused connections, timeouts and mail in words."""
    assert explain(error, code) == sentence


def test_money_methods_and_plurals_in_german() -> None:
    """35,00 €, giropay / Kreditkarte / PayPal / Lastschrift, and 1 Minute but 2 Minuten."""
    assert money("35.00") == "35,00 €"
    assert money("1234.5", "EUR") == "1.234,50 €"
    assert [payment_method(m) for m in ("GIROPAY", "CREDITCARD", "PAYPAL", "giropay")] == [
        "giropay",
        "Kreditkarte",
        "PayPal",
        "giropay",
    ]
    assert payment_method("SEPA") == "Lastschrift"
    assert (plural(1, "Minute", "Minuten"), plural(2, "Minute", "Minuten")) == (
        "1 Minute",
        "2 Minuten",
    )


def test_every_event_kind_the_code_records_has_a_sentence() -> None:
    """Each event kind the code records (found in the source: a case's history, the accounts'
    and tokens' audit, the exports) has one German name, the one the activity list uses too."""
    pattern = re.compile(
        r"""(?:kind\s*[=:]\s*|"kind":\s*|record_action\(\s*\w+,\s*[\w.()]+,\s*|
        ^\s*PaymentStatus\.\w+:\s*|change,\s*)"([a-z_]+\.[a-z_.]+)\"""",
        re.VERBOSE | re.MULTILINE,
    )
    kinds: set[str] = set()
    for folder in ("domain", "bridge", "worker", "integrations"):
        for path in (ROOT / folder).rglob("*.py"):
            kinds.update(pattern.findall(path.read_text(encoding="utf-8")))
    kinds.add("payment.paid")  # the default of the payments' kind table
    recorded = {"delivery.released", "payment.paid", "delivery.failed", "admin.exported"}
    assert (
        recorded | {"account.unlocked", "account.password_link_created", "token.revoked"} <= kinds
    )
    assert sorted(kinds - set(EVENT_KIND)) == []
    assert sorted(set(CASE_KINDS + ACCOUNT_KINDS) - set(EVENT_KIND)) == []
    # The activity list names the kinds by the same table as a case's history.
    assert activity_page.kind_label("account.unlocked") == EVENT_KIND["account.unlocked"]


def test_admins_see_every_account_and_token_action_in_the_activity_list() -> None:
    """Every account and token event the code records is a kind admins can filter by."""
    recorded = {k for k in EVENT_KIND if k.startswith(("account.", "token."))}
    assert sorted(recorded - set(kinds_for("admin"))) == []
    assert "admin.exported" in kinds_for("admin")
    assert not recorded & set(kinds_for("operator"))


def test_login_page_names_whom_to_ask_and_no_shell_command(client: FlaskClient) -> None:
    """The login page says whom to ask, not which command to run on the server."""
    html = client.get("/admin/login").get_data(as_text=True)
    assert "python -m" not in html
    assert "<code>" not in html
    assert "IT-Betreuung" in html


def test_an_internal_error_under_admin_is_a_german_page(app: Flask) -> None:
    """An unexpected error on an admin address answers a German HTML page, not JSON."""

    def broken() -> str:
        raise RuntimeError("kaputt")

    app.add_url_rule("/admin/kaputt", "kaputt", broken)
    response = app.test_client().get("/admin/kaputt")
    assert response.status_code == 500
    assert response.mimetype == "text/html"
    assert "Ein interner Fehler ist aufgetreten." in response.get_data(as_text=True)
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    outside = app.test_client().get("/api/v1/gibt-es-nicht")
    assert outside.mimetype == "application/problem+json"


def test_a_provider_error_in_the_history_is_not_blamed_on_the_office(
    operator: FlaskClient, store: Store
) -> None:
    """A payment provider's error reads as the provider's, its text one click away."""
    reference = post(operator, "traffic-order")
    with store.session() as session:
        session.add(
            Event(
                submission_id=int(reference.rsplit("-", 1)[1]),
                kind="payment.provider_error",
                actor="system",
                at=utcnow(),
                detail={"error": "HTTP 502 Bad Gateway", "attempt": 1},
            )
        )
    html = operator.get(f"/admin/antraege/{reference}").get_data(as_text=True)
    timeline = html.split('class="timeline"')[1]
    assert "Der Bezahldienst hat mit einem Fehler geantwortet" in timeline
    assert "Die Stelle" not in timeline
    assert "HTTP 502 Bad Gateway" in timeline.split('<details class="technik">')[1]


def test_payment_providers_have_display_names() -> None:
    """A provider's `name` is what clerks read; without one a plain German default, not the id."""
    text = (ROOT / "config" / "routing.toml").read_text(encoding="utf-8")
    raw = tomllib.loads(text)
    names = ("EPAY21_PASSWORD", "FORMCYCLE", "FORMCYCLE_SIGNING", "OFFICE_SIGNING")
    environ = {f"BRIDGE_SECRET_{n}": "x" for n in names}
    assert parse_config(raw, environ).payment_providers["epay21-demo"].name == "epay21 (ekom21)"
    del raw["payment_providers"]["epay21-demo"]["name"]
    unnamed = parse_config(raw, environ).payment_providers["epay21-demo"]
    assert unnamed.name == "Online-Bezahldienst"
