"""The daily report on the admin page: today's and the 14 days before, as the daily mail said it."""

from __future__ import annotations

import datetime as dt

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update

from domain.accounts.accounts import Actor
from domain.admin import operations
from domain.payments.payments import Confirmed, apply
from domain.settings import Settings
from schemas.options import LOCAL_TZ
from store.engine import Store
from store.models import Delivery, DeliveryStatus, Payment, utcnow
from tests.admin_support import post
from tests.bridge.admin.report_support import (
    as_tuples,
    attempt,
    mail_sections,
    moved,
    page_sections,
    shift_back,
)
from tests.conftest import snapshot
from tests.worker.test_digest import Inbox, smtp  # noqa: F401 - the fixture, found by name
from worker import digest

OLGA = Actor("olga", "operator", account_id=1, via="session")


@pytest.fixture
def environ(
    environ: dict[str, str],
    smtp: tuple[Inbox, int],  # noqa: F811 - the imported fixture, requested by name
) -> dict[str, str]:
    """One recipient of the daily mail and the loopback SMTP server (plain, asked for)."""
    environ.update(
        BRIDGE_SMTP_TLS="insecure",
        BRIDGE_DIGEST_RECIPIENTS="it@usingen.test",
        BRIDGE_SMTP_HOST="127.0.0.1",
        BRIDGE_SMTP_PORT=str(smtp[1]),
        BRIDGE_SMTP_FROM="bruecke@usingen.test",
    )
    return environ


def _german(day: dt.date) -> str:
    return day.strftime("%d.%m.%Y")


def test_the_report_needs_a_session(client: FlaskClient) -> None:
    """Without a session the report and the activity list redirect to the login."""
    for path in ("/admin/bericht", "/admin/aktivitaet"):
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["Location"].startswith("/admin/login?next=")


def test_a_viewer_reads_todays_report_with_15_days_to_choose(
    viewer: FlaskClient, store: Store, settings: Settings
) -> None:
    """Today's report is the digest of now: failures per office, what waits, in German."""
    post(viewer)
    post(viewer)
    attempt(store, ok=False)
    post(viewer)  # still waiting
    response = viewer.get("/admin/bericht")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    today = utcnow().astimezone(LOCAL_TZ).date()
    assert f"Tagesbericht vom {_german(today)}" in page
    assert page.count('<option value="') == 15
    assert f'<option value="{today.isoformat()}" selected>{_german(today)} (heute)' in page
    assert "Stand: jetzt" in page
    sections = dict(page_sections(page))
    [failed] = sections["Fehlgeschlagene Zustellungen je Dienststelle"]
    assert failed.startswith("Steueramt Usingen: 2 fehlgeschlagen, erste ")
    [waiting] = sections["Am längsten wartende Zustellungen"]
    assert " an Steueramt Usingen: wartet seit " in waiting
    assert waiting.endswith(", 0 Versuch(e)")
    assert sections["Offene Zahlungen (älter als ein Tag)"] == ["Keine."]


def test_a_past_days_report_is_what_its_mail_said(
    operator: FlaskClient,
    store: Store,
    settings: Settings,
    smtp: tuple[Inbox, int],  # noqa: F811 - the imported fixture, requested by name
) -> None:
    """The mail went out; then the failed cases were replayed and delivered, one cancelled,
    the fee paid. Three days later the page shows that day's report exactly as mailed, and
    today's shows the present."""
    first = post(operator)
    post(operator)
    attempt(store, ok=False)
    post(operator)  # waits
    fee = post(operator, "traffic-order")  # held until its fee is paid
    with store.session() as session:
        session.execute(update(Payment).values(created_at=utcnow() - dt.timedelta(days=2)))
    mailed_at = utcnow()
    assert digest.send_once(settings, store, mailed_at) is True
    [(_, message)] = smtp[0].messages
    mailed = mail_sections(message.get_content())
    assert [title for title, _ in mailed] == [
        "Fehlgeschlagene Zustellungen je Dienststelle",
        "Am längsten wartende Zustellungen",
        "Offene Zahlungen (älter als ein Tag)",
    ]
    assert all(lines != ["Keine."] for _, lines in mailed), mailed
    assert mailed[2][1][0].startswith(f"{fee}: 35,00 € bei epay21 (ekom21), offen seit ")

    # The day goes on: one failed case is replayed and arrives with the waiting one, the
    # other is cancelled, the fee is paid (its deliveries are released).
    with store.read() as session:
        failed = list(
            session.scalars(
                select(Delivery.id)
                .where(Delivery.status == DeliveryStatus.FAILED)
                .order_by(Delivery.submission_id)
            )
        )
        payment_id = session.scalars(select(Payment.id)).one()
    operations.replay_delivery(store, failed[0], OLGA, "Stelle wieder erreichbar")
    operations.cancel_delivery(store, failed[1], OLGA, "Doppelt eingereicht")
    assert len(attempt(store, ok=True)) == 2
    paid = apply(store, settings.config, payment_id, Confirmed("PAYED", 3500), "test")
    assert paid.verdict == "applied"
    assert first in operator.get(f"/admin/antraege/{first}").get_data(as_text=True)

    shift_back(store, 3)
    then = (mailed_at - dt.timedelta(days=3)).astimezone(LOCAL_TZ).date()
    page = operator.get(f"/admin/bericht?tag={then.isoformat()}").get_data(as_text=True)
    # What the mail said, with its times three days earlier as everything else.
    assert page_sections(page) == moved(mailed, 3)
    assert f"Tagesbericht vom {_german(then)}" in page
    assert "So ging der Bericht per E-Mail an 1 Empfänger." in page
    # The same function, asked for that moment, says the same (one implementation).
    past = as_tuples(digest.build(store, settings.config, mailed_at - dt.timedelta(days=3)))
    assert past == moved(mailed, 3)

    today = operator.get("/admin/bericht").get_data(as_text=True)
    now = dict(page_sections(today))
    assert now["Fehlgeschlagene Zustellungen je Dienststelle"] == ["Keine."]
    assert now["Offene Zahlungen (älter als ein Tag)"] == ["Keine."]
    # A day after it without a mail shows the end of that day.
    later = then + dt.timedelta(days=1)
    quiet = operator.get(f"/admin/bericht?tag={later.isoformat()}").get_data(as_text=True)
    assert "Stand: Ende des Tages. An diesem Tag wurde kein Bericht per E-Mail verschickt." in quiet
    assert dict(page_sections(quiet))["Fehlgeschlagene Zustellungen je Dienststelle"] == ["Keine."]


def test_todays_report_after_the_mail_shows_the_mail_and_offers_now(
    operator: FlaskClient, store: Store, settings: Settings
) -> None:
    """Once today's mail went out the page shows it as mailed, and links to the present."""
    post(operator)
    attempt(store, ok=False)
    assert digest.send_once(settings, store, utcnow()) is True
    with store.read() as session:
        failed = session.scalars(select(Delivery.id)).one()
    operations.replay_delivery(store, failed, OLGA, "wieder da")
    mailed = operator.get("/admin/bericht").get_data(as_text=True)
    assert "So ging der Bericht per E-Mail an 1 Empfänger." in mailed
    assert dict(page_sections(mailed))["Fehlgeschlagene Zustellungen je Dienststelle"][
        0
    ].startswith("Steueramt Usingen: 1 fehlgeschlagen")
    assert 'href="/admin/bericht?stand=jetzt"' in mailed
    live = operator.get("/admin/bericht?stand=jetzt").get_data(as_text=True)
    assert "Stand: jetzt" in live
    sections = dict(page_sections(live))
    assert sections["Fehlgeschlagene Zustellungen je Dienststelle"] == ["Keine."]
    assert sections["Am längsten wartende Zustellungen"][0].endswith("0 Versuch(e)")


@pytest.mark.parametrize(
    ("day", "status", "text"),
    [
        ("kaputt", 400, "Kein gültiger Tag."),
        ("2026-1-01", 400, "Der Tag hat die Form JJJJ-MM-TT."),
        ("2020-01-01", 404, "Für diesen Tag gibt es keinen Bericht."),
        ("2999-01-01", 404, "Berichte gibt es für heute und die 14 Tage davor."),
    ],
)
def test_a_day_not_offered_is_a_german_error_and_changes_nothing(
    viewer: FlaskClient, store: Store, day: str, status: int, text: str
) -> None:
    """A malformed day is a 400, one outside the 15 days a 404; both German pages."""
    post(viewer)
    before = {k: v for k, v in snapshot(store).items() if k != "admin_sessions"}
    response = viewer.get(f"/admin/bericht?tag={day}")
    assert response.status_code == status
    assert response.mimetype == "text/html"
    assert text in response.get_data(as_text=True)
    after = {k: v for k, v in snapshot(store).items() if k != "admin_sessions"}
    assert after == before
