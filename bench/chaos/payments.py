"""The payment chaos run: fee-bearing cases paid through a provider that misbehaves.

    python -m bench.chaos.payments [--store sqlite|postgres|both] [--cases 32] [--seed N]

Real processes as in the delivery chaos run (a private Redis, a gunicorn host, an RQ worker,
the sweeper, which runs the reconciliation, and a capture office for the public-order office
and the cash office) and the provider simulator (`demo_payments`, XBezahldienste with
`409 PAYMENT_EXISTS` on a repeated requestId, its notifications a second late so that the
citizen's return comes first). The shipped routing file: the traffic order's 35 EUR fee is
paid before the case goes to the office.

Each citizen submits a traffic order and pays it under one fault (`SCENARIOS`), four at a
time; the faults of the simulator are global, so a fault may also hit a neighbour's call,
which the invariants must survive as well (outages one at a time, `GAP_S` apart):

- `plain`: click, pay, return (the notification comes a second later: reordered);
- `double_click`: five clicks at once (each clicks again while it gets 503), then pay;
- `create_lost`: the provider stores the create and the answer is lost (502);
- `provider_down`: the provider answers 503 for a few seconds while the citizen clicks; the
  citizen clicks again every half second until the pay page comes;
- `callback_lost`: notifications are dropped and the citizen closes the browser after paying:
  only the reconciliation can find the payment;
- `callback_duplicated`: the provider's notification arrives three more times;
- `callback_reordered`: a stale notification (claiming INITIAL, then CANCELED) after the
  payment, and the return before the notification;
- `down_at_callback`: the provider is down while it notifies us and the citizen returns.

The invariants (bench/chaos/payment_checks.py): every transaction the provider has as paid is
paid in our store and gives exactly one payment notice, delivered once; every paid case is
delivered once; a double click makes one transaction; no citizen waits longer for the pay page
than the fault lasted plus the reconciliation's longest step, and no payment is confirmed
later than that step (plus a sweep) after it was made.
"""

from __future__ import annotations

import html
import json
import random
import re
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests
from requests.adapters import HTTPAdapter
from sqlalchemy import text

from bench.chaos.payment_checks import Citizen, check, table
from bench.chaos.redis_nodes import RedisSetup
from bench.chaos.report import store_runs
from bench.chaos.run import base_env, bridge_env, http_ok
from bench.chaos.stores import RunStore, StoreRun
from bench.common import ROOT
from bench.samples import EXAMPLES, IDEMPOTENCY_FIELD
from demo_payments import DemoPayments, SimulatorConfig
from demo_payments.config import DEMO_BASIC_PASSWORD
from harness.ports import free_port
from harness.processes import Managed
from store.models import format_reference

SCENARIOS = (
    "plain",
    "double_click",
    "create_lost",
    "provider_down",
    "callback_lost",
    "callback_duplicated",
    "callback_reordered",
    "down_at_callback",
)
ORDER_OFFICE = "neu-anspach-ordnungsamt"
CASH_OFFICE = "usingen-stadtkasse"
PROVIDER = "epay21-demo"
#: The reconciliation's schedule in this run (BRIDGE_PAYMENT_CHECK_SCHEDULE), in seconds.
SCHEDULE_S = (1.0, 2.0, 4.0)
SWEEP_S = 1.0  # as in payment_checks
DOWN_S = 3.0  # how long the provider is down in the two outage scenarios
GAP_S = max(SCHEDULE_S) + SWEEP_S + 1.0  # at least this long between two outages
THREADS = 4
DRAIN_S = 90.0


def routing(run_dir: Path, office_url: str, provider_url: str) -> Path:
    """config/routing.toml with the offices at the capture office, the provider at the
    simulator (a 2 s timeout) and the delivery timeouts short."""
    text_ = (ROOT / "config" / "routing.toml").read_text(encoding="utf-8")
    text_ = text_.replace("http://127.0.0.1:8091/xbezahldienste", provider_url)
    text_ = text_.replace("send_notify_url = true }", "send_notify_url = true, timeout_s = 2 }")
    text_ = text_.replace("http://127.0.0.1:8090", office_url)
    path = run_dir / "routing.toml"
    path.write_text(text_, encoding="utf-8")
    return path


def traffic_order() -> dict[str, Any]:
    """The README's traffic order (Neu-Anspach), without an idempotency key."""
    body: dict[str, Any] = json.loads((EXAMPLES / "traffic-order.json").read_text("utf-8"))
    body.pop(IDEMPOTENCY_FIELD, None)
    return body


_FORM = re.compile(r'<form method="post" action="([^"]+)">')
_HIDDEN = re.compile(r'<input type="hidden" name="(token|csrf_token)" value="([^"]*)">')


@dataclass
class PayForm:
    """The pay page as the citizen's browser holds it: its cookie, the button's target and form."""

    cookies: dict[str, str]
    target: str
    fields: dict[str, str]


def open_pay_page(browser: requests.Session, link: str) -> PayForm | None:
    """Open the signed pay link (a GET that changes nothing); the form behind "Jetzt bezahlen",
    or None when the page has no button (paid, withdrawn, refused, rate-limited)."""
    page = browser.get(link, allow_redirects=False, timeout=30)
    action = _FORM.search(page.text) if page.status_code == 200 else None
    if action is None:
        return None
    fields = {name: html.unescape(value) for name, value in _HIDDEN.findall(page.text)}
    target = urljoin(link, html.unescape(action.group(1)))
    return PayForm(dict(browser.cookies), target, fields)


@dataclass
class Faults:
    """The simulator's global faults, switched by the citizens' scenarios (and recorded)."""

    demo: DemoPayments
    lock: threading.Lock = field(default_factory=threading.Lock)
    windows: list[tuple[str, float, float]] = field(default_factory=list)
    next_down_at: float = 0.0

    def control(self, action: str) -> None:
        """One `/_control/` call of the simulator."""
        requests.post(f"{self.demo.url}/_control/{action}", timeout=10).raise_for_status()

    def down_for(self, seconds: float, name: str) -> None:
        """The provider answers 503 for `seconds` (from a background thread).

        One outage at a time, each at least `GAP_S` after the last one ended (as the delivery
        chaos run injects one fault after another): back-to-back outages would measure how
        long the provider was down, not how soon the bridge recovers.
        """
        while True:
            with self.lock:
                if time.time() >= self.next_down_at:
                    self.next_down_at = float("inf")
                    break
            time.sleep(0.1)
        start = time.time()
        self.control("down")

        def up() -> None:
            time.sleep(seconds)
            self.control("up")
            with self.lock:
                self.windows.append((name, start, time.time()))
                self.next_down_at = time.time() + GAP_S

        threading.Thread(target=up, daemon=True).start()


class _SourceAdapter(HTTPAdapter):
    """Connections from one loopback address (the pay routes limit calls per address)."""

    def __init__(self, address: str) -> None:
        self._address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """urllib3 takes the source address as a pool option."""
        kwargs["source_address"] = (self._address, 0)
        super().init_poolmanager(*args, **kwargs)


def from_address(address: str) -> requests.Session:
    """A session whose connections come from `address` (any 127.x.y.z reaches loopback)."""
    session = requests.Session()
    session.mount("http://", _SourceAdapter(address))
    return session


class Citizens:
    """The citizens of the run: each submits, clicks and pays under its scenario, each from
    its own loopback address (as citizens come from their own), the provider from another."""

    def __init__(self, bridge_url: str, secret: str, faults: Faults) -> None:
        """Nothing sent yet."""
        self.bridge_url, self.secret, self.faults = bridge_url, secret, faults
        self.body = traffic_order()
        self.provider = from_address("127.0.200.1")

    @staticmethod
    def http(citizen: Citizen) -> requests.Session:
        """The citizen's browser: a session from its own loopback address."""
        return from_address(f"127.0.{1 + citizen.index // 200}.{2 + citizen.index % 200}")

    def submit(self, citizen: Citizen) -> None:
        """Post the traffic order (retried while the answer is 503)."""
        for _ in range(20):
            response = self.provider.post(
                f"{self.bridge_url}/webhooks/formcycle/traffic-order",
                json=self.body,
                headers={"X-Bridge-Secret": self.secret},
                timeout=30,
            )
            if response.status_code != 503:
                break
            time.sleep(0.5)
        citizen.codes.append(response.status_code)
        answer = response.json()
        citizen.reference = answer["reference"]
        citizen.pay_link = answer["payment"]["url"]

    def click(self, citizen: Citizen, until: float) -> str | None:
        """Open the pay link, then press "Jetzt bezahlen" until it sends to the provider's pay
        page (or `until`); the page's URL."""
        form = self.open_page(citizen, until)
        return None if form is None else self.press(citizen, form, until, pause=0.5)

    def open_page(self, citizen: Citizen, until: float) -> PayForm | None:
        """The pay page's form (opened again while it has none, until `until`)."""
        while True:
            form = open_pay_page(self.http(citizen), citizen.pay_link)
            if form is not None or time.time() > until:
                return form
            time.sleep(0.5)

    def press(self, citizen: Citizen, form: PayForm, until: float, pause: float) -> str | None:
        """Press the button (again every `pause` s while the answer is not the redirect)."""
        browser = self.http(citizen)
        browser.cookies.update(form.cookies)
        while True:
            response = browser.post(
                form.target, data=form.fields, allow_redirects=False, timeout=30
            )
            citizen.codes.append(response.status_code)
            if response.status_code == 303:
                citizen.pay_page_at = time.time()
                return str(response.headers["Location"])
            if time.time() > until:
                return None
            time.sleep(pause)

    def pay(self, citizen: Citizen, page: str, come_back: bool = True) -> None:
        """Press "Bezahlen"; follow the browser back to our return page unless it is closed."""
        for _ in range(40):  # the pay page may be down too: the citizen tries again
            response = self.http(citizen).post(
                page, data={"action": "pay", "method": "GIROPAY"}, allow_redirects=False, timeout=30
            )
            if response.status_code != 503:
                break
            time.sleep(0.5)
        citizen.paid_at = time.time()
        citizen.transaction = page.rsplit("/", 1)[1]
        if come_back and response.status_code == 303:
            back = self.http(citizen).get(response.headers["Location"], timeout=30)
            citizen.codes.append(back.status_code)

    def notify(self, citizen: Citizen, status: str, times: int = 1) -> None:
        """Post a provider notification naming the citizen's transaction (as the provider)."""
        for _ in range(times):
            response = self.provider.post(
                f"{self.bridge_url}/webhooks/payments/{PROVIDER}",
                json={
                    "paymentInformation": {"transactionId": citizen.transaction, "status": status}
                },
                timeout=30,
            )
            citizen.callback_codes.append(response.status_code)

    def run(self, citizen: Citizen) -> None:
        """One citizen's whole visit under its scenario."""
        citizen.started = time.time()
        self.submit(citizen)
        scenario = citizen.scenario
        if scenario == "create_lost":
            self.faults.control("lose-create-answers?count=1")
        if scenario == "provider_down":
            self.faults.down_for(DOWN_S, scenario)  # waits for its turn (one outage at a time)
        citizen.first_click = time.time()
        if scenario == "double_click":
            self._double_click(citizen)
            return
        page = self.click(citizen, time.time() + DOWN_S + SCHEDULE_S[-1] + 10)
        if page is None:
            return
        if scenario == "callback_lost":
            self.faults.control("drop-notifications")
            self.pay(citizen, page, come_back=False)
            self.faults.control("send-notifications")
        elif scenario == "down_at_callback":
            self.faults.down_for(DOWN_S, scenario)
            # Paid while the provider's API is down: its notification cannot be confirmed.
            requests.post(
                f"{self.faults.demo.url}/_control/pay/{page.rsplit('/', 1)[1]}", timeout=10
            )
            citizen.paid_at = time.time()
            citizen.transaction = page.rsplit("/", 1)[1]
        else:
            self.pay(citizen, page)
        if scenario == "callback_duplicated":
            self.notify(citizen, "PAYED", times=3)
        if scenario == "callback_reordered":
            self.notify(citizen, "INITIAL")
            self.notify(citizen, "CANCELED")

    def _double_click(self, citizen: Citizen) -> None:
        """Five presses of the page's button at once (each pressed again every second while
        it gets no redirect); every one must be sent to the same pay page."""
        until = time.time() + DOWN_S + SCHEDULE_S[-1] + 10
        form = self.open_page(citizen, until)
        start = threading.Barrier(5)
        pages: list[str | None] = []

        def one() -> None:
            start.wait()
            pages.append(None if form is None else self.press(citizen, form, until, pause=1.0))

        clicks = [threading.Thread(target=one) for _ in range(5)]
        for c in clicks:
            c.start()
        for c in clicks:
            c.join()
        citizen.distinct_pages = len(set(pages))
        first = next((p for p in pages if p), None)
        if first is not None:
            self.pay(citizen, first)


class PaymentRun(StoreRun):
    """One store's payment chaos run."""

    prefix = "paychaos"

    def _run(self) -> dict[str, Any]:
        demo = DemoPayments(config=SimulatorConfig(notify_delay_s=1.0)).start()
        try:
            return self._execute(demo)
        finally:
            demo.stop()

    def _processes(self, demo: DemoPayments) -> tuple[str, str]:
        """Start Redis, the capture office, the web host, a worker and the sweeper."""
        env = base_env()
        redis = RedisSetup.single(self.sup, self.dir, env)
        self.store = RunStore.create(self.kind, self.dir, self.postgres_url)
        office_port, control_port = free_port(), free_port()
        office = self.sup.add(
            Managed(
                "office",
                [sys.executable, "-m", "bench.chaos.office", "--port", str(office_port),
                 "--control-port", str(control_port), "--hang-s", "4"],
                env, self.dir / "office.log", ROOT,
                ready=lambda: http_ok(f"http://127.0.0.1:{control_port}/records"),
            )
        )  # fmt: skip
        office.wait_ready()
        config = routing(self.dir, f"http://127.0.0.1:{office_port}", demo.xbezahldienste_url)
        port = free_port()
        benv = bridge_env(self.store, redis.url, config, self.secret) | {
            "BRIDGE_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "BRIDGE_SECRET_EPAY21_PASSWORD": DEMO_BASIC_PASSWORD,
            "BRIDGE_PAYMENT_CHECK_SCHEDULE": ",".join(f"{s:g}s" for s in SCHEDULE_S),
            "BRIDGE_SWEEP_INTERVAL_S": f"{SWEEP_S:g}",
        }
        web = self.sup.add(
            Managed(
                "web",
                [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"),
                 "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "8",
                 "--access-logfile", "/dev/null", "bridge:create_app()"],
                benv, self.dir / "web.log", ROOT,
                ready=lambda: http_ok(f"http://127.0.0.1:{port}/healthz"), port=port,
            )
        )  # fmt: skip
        for name, command in (("worker", "work"), ("sweeper", "sweep")):
            self.sup.add(
                Managed(
                    name,
                    [sys.executable, "-m", "worker", command],
                    benv,
                    self.dir / f"{name}.log",
                    ROOT,
                )
            )
        web.wait_ready(90)
        self.sup.watch()
        return f"http://127.0.0.1:{port}", f"http://127.0.0.1:{control_port}"

    def _execute(self, demo: DemoPayments) -> dict[str, Any]:
        bridge_url, office_control = self._processes(demo)
        rng = random.Random(self.seed)
        plan = [SCENARIOS[n % len(SCENARIOS)] for n in range(self.cases)]
        rng.shuffle(plan)
        citizens = [Citizen(n, scenario) for n, scenario in enumerate(plan)]
        faults = Faults(demo)
        crowd = Citizens(bridge_url, self.secret, faults)
        work = list(citizens)
        lock = threading.Lock()

        def worker() -> None:
            while True:
                with lock:
                    if not work:
                        return
                    citizen = work.pop()
                try:
                    crowd.run(citizen)
                except Exception as exc:  # recorded: the run then fails with the reason
                    citizen.error = f"{type(exc).__name__}: {exc}"[:300]

        threads = [threading.Thread(target=worker) for _ in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        settled = self._drain(demo)
        time.sleep(2)
        records = requests.get(f"{office_control}/records", timeout=30).json()
        ledger = requests.get(f"{demo.url}/_control/transactions", timeout=30).json()
        verdict = check(
            citizens,
            ledger,
            self._rows(),
            records,
            settled,
            self.sup.dead(),
            SCHEDULE_S,
            faults.windows,
        )
        return {
            "store": self.kind,
            "passed": not verdict,
            "violations": verdict,
            "table": table(citizens, self._rows(), records, SCHEDULE_S, faults.windows),
            "citizens": [asdict(c) for c in citizens],
            "fault_windows": faults.windows,
        }

    def _drain(self, demo: DemoPayments) -> bool:
        """Wait until every transaction the provider has as paid is paid with us and no
        delivery is pending (True), or DRAIN_S ran out (False)."""
        deadline = time.monotonic() + DRAIN_S
        while time.monotonic() < deadline:
            ledger = requests.get(f"{demo.url}/_control/transactions", timeout=30).json()
            paid = {t["txid"] for t in ledger["transactions"] if t["status"] == "PAYED"}
            rows = self._rows()
            ours = {r["transaction_id"] for r in rows["payments"] if r["status"] == "PAYED"}
            pending = [d for d in rows["deliveries"] if d["status"] != "delivered"]
            if paid <= ours and not [d for d in pending if d["status"] == "pending"]:
                return True
            time.sleep(1)
        return False

    def _rows(self) -> dict[str, list[dict[str, Any]]]:
        """The payments, deliveries and payment events as the store has them."""
        assert self.store is not None
        engine = self.store.engine()
        queries = {
            "payments": "SELECT p.id, p.status, p.transaction_id, p.updated_at, "
            "s.id AS number, s.reference_prefix AS prefix, s.reference_year AS year "
            "FROM payments p JOIN submissions s ON s.id = p.submission_id",
            "deliveries": "SELECT d.id, d.kind, d.status, d.office_id, d.payment_id, "
            "d.submission_id FROM deliveries d",
            "events": "SELECT kind, detail FROM events WHERE kind LIKE 'payment.%'",
        }
        try:
            with engine.connect() as conn:
                rows = {
                    name: [dict(r._mapping) for r in conn.execute(text(q))]
                    for name, q in queries.items()
                }
        finally:
            engine.dispose()
        for row in rows["payments"]:
            row["reference"] = format_reference(row["prefix"], row["year"], row["number"])
        return rows


def main(argv: list[str] | None = None) -> int:
    """Run the payment chaos on each store; print the table; exit 1 when an invariant failed."""
    return store_runs(
        argv,
        "python -m bench.chaos.payments",
        "Payment chaos",
        32,
        lambda store, cases, seed, postgres: PaymentRun(store, cases, seed, postgres).execute(),
    )


if __name__ == "__main__":
    sys.exit(main())
