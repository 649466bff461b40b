"""End to end: a traffic order paid through the simulated provider, with real processes.

The bridge runs as a real HTTP server (the simulator must reach its callback URL), the worker
and the sweeper (reconciliation) as real processes, the provider simulator and the demo back
office as real servers on loopback. The shipped routing file is used as it is, pointed at them.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select
from werkzeug.serving import BaseWSGIServer, make_server

from bridge import create_app
from demo_backoffice import DemoBackOffice
from demo_payments import DemoPayments, SimulatorConfig
from domain.accounts.accounts import Role
from domain.accounts.api_tokens import create_token
from domain.settings import Settings
from harness.waiting import wait_for
from infra.safexml import parse_xml
from store.engine import Store
from store.models import Delivery, DeliveryKind, Event, Payment, PaymentCallback, Submission
from tests.conftest import FORMCYCLE_SECRET, OFFICE_SIGNING_SECRET, TEST_ADMIN
from tests.factories import traffic
from tests.payment_support import press_pay
from tests.worker.conftest import FAST, SHIPPED_CONFIG, Processes, replace_office

ORDER_OFFICE = "neu-anspach-ordnungsamt"
CASH_OFFICE = "usingen-stadtkasse"
PROVIDER = "epay21-demo"
#: The store logic these flows rely on runs on both stores in test_payment_state.py (the
#: concurrent forward-only UPDATE on PostgreSQL); the slower flows here run on SQLite only.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


class LiveBridge:
    """The app on a real loopback server; the app is set once settings know the URL."""

    def __init__(self) -> None:
        """Listen on a free port at once (the URL goes into the settings)."""
        self.app: Any = None
        self.token = ""  # a viewer's API token for the status API
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        return self.app(environ, start_response)

    def start(self, app: Any) -> None:
        """Serve `app`."""
        self.app = app
        self.thread.start()

    def stop(self) -> None:
        """Shut the server down; one that never served (its test was skipped) is only closed,
        since `shutdown` waits for a serving loop that would never end."""
        if self.thread.is_alive():
            self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def simulator(request: pytest.FixtureRequest) -> Iterator[DemoPayments]:
    """The provider simulator (XBezahldienste, Basic auth as epay21); it notifies at once, or
    after the delay in seconds a test gives as the fixture's parameter."""
    delay = float(getattr(request, "param", 0.0))
    demo = DemoPayments(config=SimulatorConfig(notify_delay_s=delay)).start()
    yield demo
    demo.stop()


@pytest.fixture
def backoffice() -> Iterator[DemoBackOffice]:
    """The demo back office, checking our signatures."""
    office = DemoBackOffice(signing_secret=OFFICE_SIGNING_SECRET, hang_s=5).start()
    yield office
    office.stop()


@pytest.fixture
def live() -> Iterator[LiveBridge]:
    """The bridge's own server (started by the `bridge` fixture)."""
    server = LiveBridge()
    yield server
    server.stop()


@pytest.fixture(params=["http-json"])
def channel(request: pytest.FixtureRequest) -> str:
    """The public-order office's channel (tests about the documents parametrise it)."""
    return str(request.param)


@pytest.fixture
def environ(
    environ: dict[str, str],
    tmp_path: Path,
    backoffice: DemoBackOffice,
    simulator: DemoPayments,
    live: LiveBridge,
    channel: str,
) -> dict[str, str]:
    """The shipped routing file pointed at the back office and the simulator; fast schedules."""
    text = SHIPPED_CONFIG.replace("http://127.0.0.1:8090", backoffice.url)
    text = text.replace("http://127.0.0.1:8091/xbezahldienste", simulator.xbezahldienste_url)
    text = text.replace(
        'password_env = "BRIDGE_SECRET_EPAY21_PASSWORD"',
        'password_env = "BRIDGE_SECRET_EPAY21_PASSWORD", timeout_s = 2',
    )
    if channel != "http-json":
        options = {
            "xml": f'channel = "xml"\noptions = {{ url = "{backoffice.case_url(ORDER_OFFICE)}", '
            'signing_secret_env = "BRIDGE_SECRET_OFFICE_SIGNING", read_timeout_s = 2 }',
            "email": f'channel = "email"\noptions = {{ host = "127.0.0.1", '
            f'port = {backoffice.smtp_port}, tls = "insecure", sender = "bruecke@usinger-land.test", '
            f'to = "{ORDER_OFFICE}@backoffice.test", timeout_s = 5 }}',
        }[channel]
        text = replace_office(
            text,
            ORDER_OFFICE,
            f'[offices.{ORDER_OFFICE}]\nname = "Ordnungsamt Neu-Anspach"\n'
            f'municipality = "neu-anspach"\ntask_area = "public-order"\n{options}\n',
        )
    path = tmp_path / "routing.toml"
    path.write_text(text, encoding="utf-8")
    environ.update(
        FAST,
        BRIDGE_CONFIG=str(path),
        BRIDGE_PUBLIC_URL=live.url,
        BRIDGE_PAYMENT_CHECK_SCHEDULE="0.3s",
    )
    return environ


@pytest.fixture
def bridge(settings: Settings, live: LiveBridge) -> Iterator[Store]:
    """Start the bridge on its live server; yields its store."""
    app = create_app(settings)
    store = app.extensions["bridge"].store
    _, live.token = create_token(
        store, "e2e-viewer", Role.VIEWER, expires_at=None, actor=TEST_ADMIN
    )
    live.start(app)
    yield store
    app.extensions["bridge"].store.dispose()


@pytest.fixture
def processes(environ: dict[str, str], tmp_path: Path) -> Iterator[Processes]:
    """Worker and sweeper processes (started by the tests)."""
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    procs = Processes(environ, log_dir)
    yield procs
    procs.stop_all()
    print(procs.logs())


def submit(live: LiveBridge) -> dict[str, Any]:
    """Post a traffic order to the live bridge; the 202 answer."""
    response = requests.post(
        f"{live.url}/webhooks/formcycle/traffic-order",
        json=traffic(),
        headers={"X-Bridge-Secret": FORMCYCLE_SECRET},
        timeout=10,
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def follow_pay_link(answer: dict[str, Any]) -> requests.Response:
    """What the citizen's browser gets for opening the pay link and pressing "Jetzt bezahlen"
    (no redirect followed)."""
    return press_pay(answer["payment"]["url"])


def pay_on_page(pay_page: str, action: str = "pay") -> requests.Response:
    """Press "Bezahlen" (or "Abbrechen") on the simulator's pay page; follows to our return."""
    return requests.post(pay_page, data={"action": action, "method": "GIROPAY"}, timeout=10)


def status(live: LiveBridge, reference: str) -> dict[str, Any]:
    """The status API's view of a submission."""
    response = requests.get(
        f"{live.url}/api/v1/submissions/{reference}",
        headers={"Authorization": f"Bearer {live.token}"},
        timeout=10,
    )
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def transaction_of(simulator: DemoPayments, store: Store) -> str:
    """The provider transaction id of the only open payment."""
    with store.read() as session:
        txid = session.scalars(
            select(Payment.transaction_id).where(Payment.status == "INITIAL")
        ).one()
    assert txid is not None
    return txid


def snapshot(store: Store) -> tuple[object, ...]:
    """Everything a refused callback must leave as it was (the journal aside)."""
    with store.read() as session:
        return (
            sorted(
                (p.id, p.status, p.transaction_reference, p.paid_at)
                for p in session.scalars(select(Payment))
            ),
            sorted((d.id, d.status) for d in session.scalars(select(Delivery))),
            session.scalar(select(func.count()).select_from(Event)),
            sorted((s.id, s.status) for s in session.scalars(select(Submission))),
        )


def all_delivered(store: Store, count: int) -> bool:
    """Whether `count` deliveries exist and every one is delivered (recorded, not just sent)."""
    with store.read() as session:
        found = session.scalars(select(Delivery.status)).all()
    return len(found) == count and all(s == "delivered" for s in found)


def journal(store: Store) -> list[PaymentCallback]:
    """The callback journal, oldest first."""
    with store.read() as session:
        return list(session.scalars(select(PaymentCallback).order_by(PaymentCallback.id)))


def notices(store: Store) -> list[Delivery]:
    """Every payment-notice delivery."""
    with store.read() as session:
        return list(
            session.scalars(select(Delivery).where(Delivery.kind == DeliveryKind.PAYMENT_NOTICE))
        )


@pytest.mark.parametrize("channel", ["http-json", "xml", "email"], indirect=True)
def test_paid_via_callback_releases_the_case_and_notifies_the_cash_office(
    live: LiveBridge,
    bridge: Store,
    simulator: DemoPayments,
    backoffice: DemoBackOffice,
    processes: Processes,
    channel: str,
) -> None:
    """Pay link -> provider -> callback: the office's document says paid with Kassenzeichen,
    the cash office gets exactly one notice, a duplicate and a late CANCELED change nothing."""
    processes.worker()
    answer = submit(live)
    reference = answer["reference"]
    assert answer["status"] == "awaiting_payment"
    assert answer["payment"]["status"] == "INITIAL"
    assert answer["deliveries"][0]["status"] == "held"
    redirect = follow_pay_link(answer)
    assert redirect.status_code == 303
    pay_page = redirect.headers["Location"]
    assert pay_page.startswith(simulator.url)
    returned = pay_on_page(pay_page)
    # The simulator notified us before sending the browser back; the return page confirms.
    assert returned.status_code == 200
    assert "Die Gebühr ist bezahlt" in returned.text
    assert "Kassenzeichen: KZ-" in returned.text
    wait_for(lambda: backoffice.cases(ORDER_OFFICE), what="the released case")
    wait_for(lambda: backoffice.cases(CASH_OFFICE), what="the payment notice")
    [case] = backoffice.cases(ORDER_OFFICE)
    delivery_id = case["delivery_id"]
    document = backoffice.document(ORDER_OFFICE, delivery_id)
    kassenzeichen = status(live, reference)["payment"]["transaction_reference"]
    assert re.fullmatch(r"KZ-\d{4}-\d{6}", kassenzeichen)
    if channel == "http-json":
        assert document["payment"]["status"] == "PAYED"
        assert document["payment"]["transaction_reference"] == kassenzeichen
        assert document["payment"]["amount"] == "35.00"
    elif channel == "xml":
        root = parse_xml(document.encode())
        ns = {"bc": "urn:formcycle-bridge:case:1"}
        assert root.findtext("bc:metadata/bc:payment/bc:status", None, ns) == "PAYED"
        assert (
            root.findtext("bc:metadata/bc:payment/bc:transactionReference", None, ns)
            == kassenzeichen
        )
    else:
        assert f"bezahlt (35,00 EUR), Kassenzeichen {kassenzeichen}" in document["text"]
    [notice] = backoffice.cases(CASH_OFFICE)
    notice_doc = backoffice.document(CASH_OFFICE, notice["delivery_id"])
    assert notice_doc["type"] == "payment.received"
    assert notice_doc["reference"] == reference
    assert notice_doc["payment"]["transaction_reference"] == kassenzeichen
    assert notice_doc["data"] == {"payment": notice_doc["payment"]}
    # A duplicate of the applied notification, and a late CANCELED claim: 200, nothing twice.
    wait_for(lambda: all_delivered(bridge, 2), what="both deliveries recorded")
    before = snapshot(bridge)
    payment_id = status(live, reference)["payment"]["attempts"][0]["id"]
    txid = status(live, reference)["payment"]["attempts"][0]["transaction_id"]
    url = f"{live.url}/webhooks/payments/{PROVIDER}?payment={payment_id}"
    for claimed in ("PAYED", "CANCELED"):
        again = requests.post(
            url,
            json={"paymentInformation": {"transactionId": txid, "status": claimed}},
            timeout=10,
        )
        assert again.status_code == 200
        assert again.json()["result"] == "duplicate"
    assert snapshot(bridge) == before
    assert len(notices(bridge)) == 1
    assert len(backoffice.received_ids(CASH_OFFICE)) == 1
    # The notification applied it; the citizen's return and both repeats found it done.
    assert [(j.kind, j.verdict) for j in journal(bridge)] == [
        ("notify", "applied"),
        ("return", "duplicate"),
        ("notify", "duplicate"),
        ("notify", "duplicate"),
    ]


@SQLITE_ONLY
def test_lost_callback_is_found_by_reconciliation(
    live: LiveBridge,
    bridge: Store,
    simulator: DemoPayments,
    backoffice: DemoBackOffice,
    processes: Processes,
) -> None:
    """The provider's notification never arrives: the sweeper's reconciliation finds the payment."""
    requests.post(f"{simulator.url}/_control/drop-notifications", timeout=5)
    processes.worker()
    answer = submit(live)
    assert follow_pay_link(answer).status_code == 303
    txid = transaction_of(simulator, bridge)
    assert requests.post(f"{simulator.url}/_control/pay/{txid}", timeout=5).status_code == 200
    assert journal(bridge) == []
    processes.sweeper()
    wait_for(lambda: backoffice.cases(ORDER_OFFICE), what="the case released by reconciliation")
    wait_for(lambda: backoffice.cases(CASH_OFFICE), what="the notice")
    body = status(live, answer["reference"])
    assert body["payment"]["status"] == "PAYED"
    assert any(
        e["kind"] == "payment.paid" and e["actor"] == "reconciliation" for e in body["history"]
    )
    assert len(notices(bridge)) == 1


def test_forged_and_mismatched_callbacks_change_nothing(
    live: LiveBridge, bridge: Store, simulator: DemoPayments
) -> None:
    """A PAYED claim the provider does not confirm, a wrong amount, an unknown payment or
    provider: problem+json, journalled with the verdict (an unknown provider not at all),
    nothing else changed."""
    answer = submit(live)
    assert follow_pay_link(answer).status_code == 303
    txid = transaction_of(simulator, bridge)
    with bridge.read() as session:
        payment_id = session.scalars(select(Payment.id)).one()
    before = snapshot(bridge)
    hook = f"{live.url}/webhooks/payments/{PROVIDER}"
    forged = requests.post(
        f"{hook}?payment={payment_id}",
        json={"paymentInformation": {"transactionId": txid, "status": "PAYED"}},
        headers={"Accept-Language": "en"},
        timeout=10,
    )
    assert forged.status_code == 422
    assert forged.headers["Content-Type"] == "application/problem+json"
    assert forged.json()["title"] == "The payment is not confirmed."
    other = requests.post(
        f"{hook}?payment={payment_id}",
        json={"paymentInformation": {"transactionId": "someone-elses", "status": "PAYED"}},
        timeout=10,
    )
    assert other.status_code == 409
    unknown = requests.post(f"{hook}?payment={'0' * 32}", json={}, timeout=10)
    assert unknown.status_code == 404
    assert unknown.json()["title"] == "Unbekannte Zahlung."
    nobody = requests.post(f"{live.url}/webhooks/payments/paypal-ish", json={}, timeout=10)
    assert nobody.status_code == 404
    # The provider reports 3.50 EUR paid for the 35.00 EUR fee.
    requests.post(f"{simulator.url}/_control/set-amount/{txid}?amount=3.50", timeout=5)
    paid = requests.post(f"{simulator.url}/_control/pay/{txid}", timeout=5)
    assert paid.status_code == 200
    assert snapshot(bridge) == before
    verdicts = [(j.verdict, j.payment_id) for j in journal(bridge)]
    assert verdicts == [
        ("not_confirmed", payment_id),
        ("transaction_mismatch", payment_id),
        ("unknown_payment", None),
        ("amount_mismatch", payment_id),
    ]
    secret = FORMCYCLE_SECRET
    assert all(secret not in str(j.headers) for j in journal(bridge))


@SQLITE_ONLY
def test_provider_down_at_intake_and_first_pay_then_up(
    live: LiveBridge,
    bridge: Store,
    simulator: DemoPayments,
    backoffice: DemoBackOffice,
    processes: Processes,
) -> None:
    """Down: the case is accepted, the pay page says (German, 503, Retry-After) what to do, the
    sweeper creates the transaction once the provider is back, and the link then works."""
    requests.post(f"{simulator.url}/_control/down", timeout=5)
    answer = submit(live)
    down = follow_pay_link(answer)
    assert down.status_code == 503
    assert down.headers["Retry-After"] == "120"
    assert "in einigen Minuten noch einmal" in down.text
    assert "Ihr Antrag ist sicher gespeichert" in down.text
    with bridge.read() as session:
        payment = session.scalars(select(Payment)).one()
    assert payment.transaction_id is None
    assert payment.last_error is not None
    assert payment.attempts == 1
    requests.post(f"{simulator.url}/_control/up", timeout=5)
    processes.sweeper()

    def created() -> bool:
        with bridge.read() as session:
            return session.scalars(select(Payment.transaction_id)).one() is not None

    wait_for(created, what="the transaction created by reconciliation")
    again = follow_pay_link(answer)
    assert again.status_code == 303
    creates = requests.get(f"{simulator.url}/_control/transactions", timeout=5).json()
    assert creates["count"] == 1


@SQLITE_ONLY
def test_cancelled_then_paid_with_a_new_transaction(
    live: LiveBridge,
    bridge: Store,
    simulator: DemoPayments,
    backoffice: DemoBackOffice,
    processes: Processes,
) -> None:
    """Abbrechen: the case stays held, the link starts a new transaction; only it counts."""
    processes.worker()
    answer = submit(live)
    first = follow_pay_link(answer).headers["Location"]
    cancelled = pay_on_page(first, "cancel")
    assert "Die Zahlung wurde nicht abgeschlossen" in cancelled.text
    body = status(live, answer["reference"])
    assert body["payment"]["status"] == "CANCELED"
    assert body["status"] == "awaiting_payment"
    assert [d["status"] for d in body["deliveries"]] == ["held"]
    second = follow_pay_link(answer).headers["Location"]
    assert second != first
    assert "Die Gebühr ist bezahlt" in pay_on_page(second).text
    wait_for(lambda: backoffice.cases(ORDER_OFFICE), what="the released case")
    body = status(live, answer["reference"])
    assert [a["status"] for a in body["payment"]["attempts"]] == ["CANCELED", "PAYED"]
    assert body["payment"]["status"] == "PAYED"
    assert body["payment"]["amount"] == "35.00"
    wait_for(lambda: backoffice.cases(CASH_OFFICE), what="the notice")
    assert len(notices(bridge)) == 1
    # Paid: the link says so and creates nothing more.
    done = follow_pay_link(answer)
    assert done.status_code == 200
    assert "Die Gebühr ist bezahlt" in done.text


@SQLITE_ONLY
def test_expired_payment_keeps_the_case_held_and_the_link_starts_anew(
    live: LiveBridge, bridge: Store, simulator: DemoPayments, processes: Processes
) -> None:
    """Past its deadline an open payment is `expired` (reconciliation); the link starts anew."""
    answer = submit(live)
    assert follow_pay_link(answer).status_code == 303
    with bridge.session() as session:
        payment = session.scalars(select(Payment)).one()
        payment.expires_at = payment.created_at.replace(year=payment.created_at.year - 1)
    processes.sweeper()

    def expired() -> bool:
        return bool(status(live, answer["reference"])["payment"]["status"] == "expired")

    wait_for(expired, what="the expiry")
    body = status(live, answer["reference"])
    assert [d["status"] for d in body["deliveries"]] == ["held"]
    assert follow_pay_link(answer).status_code == 303
    body = status(live, answer["reference"])
    assert [a["status"] for a in body["payment"]["attempts"]] == ["expired", "INITIAL"]


@SQLITE_ONLY
def test_transaction_of_formcycles_own_plugin_is_adopted(
    live: LiveBridge,
    bridge: Store,
    simulator: DemoPayments,
    backoffice: DemoBackOffice,
    settings: Settings,
    processes: Processes,
) -> None:
    """The form's own payment plugin created and the citizen paid the transaction: the
    submission names it, the bridge confirms it with the provider and releases the case."""
    from decimal import Decimal

    from integrations.payment_providers import PaymentOrder
    from worker.payment_flow import provider

    created = provider(settings, PROVIDER).create(
        PaymentOrder(
            payment_id="formcycle-plugin-0001",
            reference="fc-0001",
            amount=Decimal("35.00"),
            currency="EUR",
            purpose="Halteverbot",
            description="Halteverbot",
            municipality_ags="06434011",
            return_url="http://formcycle.test/return",
            notify_url="http://formcycle.test/notify",
        )
    )
    requests.post(f"{simulator.url}/_control/pay/{created.transaction_id}", timeout=5)
    processes.worker()
    processes.sweeper()
    body = traffic()
    body["payment"] = {"transaction_id": created.transaction_id, "provider": PROVIDER}
    response = requests.post(
        f"{live.url}/webhooks/formcycle/traffic-order",
        json=body,
        headers={"X-Bridge-Secret": FORMCYCLE_SECRET},
        timeout=10,
    )
    assert response.status_code == 202, response.text
    reference = response.json()["reference"]
    wait_for(lambda: backoffice.cases(ORDER_OFFICE), what="the case released after adoption")
    payment = status(live, reference)["payment"]
    assert payment["status"] == "PAYED"
    assert payment["attempts"][0]["transaction_id"] == created.transaction_id
    # The same transaction named by another application is refused, nothing stored.
    wait_for(lambda: all_delivered(bridge, 2), what="case and notice recorded")
    before = snapshot(bridge)
    body["process_id"] = "another-process"
    taken = requests.post(
        f"{live.url}/webhooks/formcycle/traffic-order",
        json=body,
        headers={"X-Bridge-Secret": FORMCYCLE_SECRET},
        timeout=10,
    )
    assert taken.status_code == 422
    assert [e["field"] for e in taken.json()["errors"]] == ["payment.transaction_id"]
    assert snapshot(bridge) == before


@SQLITE_ONLY
@pytest.mark.parametrize("simulator", [0.5], indirect=True)
def test_return_before_the_notification_applies_once(
    live: LiveBridge, bridge: Store, simulator: DemoPayments, backoffice: DemoBackOffice
) -> None:
    """Reordered: the citizen is back before the provider's notification; the return applies
    the confirmed payment, the late notification is a duplicate; one notice."""
    answer = submit(live)
    returned = pay_on_page(follow_pay_link(answer).headers["Location"])
    assert "Die Gebühr ist bezahlt" in returned.text
    expected = [("return", "applied"), ("notify", "duplicate")]
    wait_for(
        lambda: [(j.kind, j.verdict) for j in journal(bridge)] == expected,
        what="the late notification, found a duplicate",
    )
    assert len(notices(bridge)) == 1
    with bridge.read() as session:
        kinds = session.scalars(select(Event.kind).where(Event.kind.like("payment.%"))).all()
    assert kinds.count("payment.paid") == 1


@SQLITE_ONLY
def test_a_town_with_its_own_provider_pays_through_it(
    live: LiveBridge,
    simulator: DemoPayments,
    backoffice: DemoBackOffice,
    environ: dict[str, str],
    tmp_path: Path,
    processes: Processes,
) -> None:
    """Usingen pays through its own (legacy pmPayment paypage) contract, overriding the
    fee's provider: the notify form is the trigger, the status call the truth."""
    from demo_payments.config import DEMO_PMPAYMENT_SALT

    path = Path(environ["BRIDGE_CONFIG"])
    text = path.read_text(encoding="utf-8").replace(
        'reference_prefix = "US"',
        'reference_prefix = "US"\npayment_provider = "usingen-pmpayment"',
    )
    text += (
        "\n[payment_providers.usingen-pmpayment]\n"
        'plugin = "pmpayment"\n'
        f'options = {{ base_url = "{simulator.url}", procedure = "halteverbot", '
        'salt_env = "BRIDGE_SECRET_USINGEN_PMPAYMENT" }\n'
    )
    path.write_text(text, encoding="utf-8")
    environ["BRIDGE_SECRET_USINGEN_PMPAYMENT"] = DEMO_PMPAYMENT_SALT
    processes.env["BRIDGE_SECRET_USINGEN_PMPAYMENT"] = DEMO_PMPAYMENT_SALT
    settings = Settings.from_env(environ)
    app = create_app(settings)
    store: Store = app.extensions["bridge"].store
    _, live.token = create_token(
        store, "e2e-viewer", Role.VIEWER, expires_at=None, actor=TEST_ADMIN
    )
    live.start(app)
    processes.worker()
    answer = submit(live)
    redirect = follow_pay_link(answer)
    assert redirect.status_code == 303
    assert "/payment/pay/06434011/" in redirect.headers["Location"]
    returned = pay_on_page(redirect.headers["Location"])
    assert "Die Gebühr ist bezahlt" in returned.text
    wait_for(lambda: backoffice.cases(ORDER_OFFICE), what="the released case")
    payment = status(live, answer["reference"])["payment"]
    assert payment["status"] == "PAYED"
    assert payment["attempts"][0]["provider"] == "usingen-pmpayment"
    assert next((j.provider, j.kind) for j in journal(store)) == ("usingen-pmpayment", "notify")
    store.dispose()
