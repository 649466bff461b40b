"""The shipped nginx site (deploy/nginx/bridge.conf) in front of the real app, end to end.

Debian's nginx runs the site as shipped, only its CHANGE lines rewritten for loopback ports and
a self-signed certificate made here, in front of gunicorn with the project's gunicorn.conf.py
and BRIDGE_PROXY_HOPS=1. Clients connect from their own loopback addresses (127.0.0.2,
127.0.0.3, ...), so nginx and the app see distinct clients as on a real network: public paths
work over TLS, the internal ones are refused publicly, one client's limit or lock-out is not
another's, and a forged X-Forwarded-For sent straight to the app is not believed.
"""

from __future__ import annotations

import http.client
import json
import os
import pwd
import re
import shutil
import socket
import ssl
import sys
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import select

from bridge.intake.fit_connect import MAX_CALLBACK_BYTES as FIT_CONNECT_CALLBACK_BYTES
from bridge.payments.routes import MAX_CALLBACK_BYTES, MAX_PAY_FORM_BYTES
from domain.accounts.accounts import Actor, create_account
from domain.accounts.logins import ACCOUNT_MAX_FAILURES
from domain.accounts.passwords import ScryptParams
from domain.settings import Settings
from harness.ports import free_port
from harness.processes import Processes
from harness.waiting import wait_for
from store.accounts import AdminSession
from store.engine import Store, make_engine
from store.migrations import upgrade
from store.models import PaymentCallback
from tests.conftest import FORMCYCLE_SECRET, ROOT, base_environ
from tests.factories import as_json, dog
from tests.tls_support import certificate

SITE = ROOT / "deploy" / "nginx" / "bridge.conf"
METRICS_TOKEN = "metrics-" + "fedcba9876543210" * 3
PASSWORD = "Stadtkasse-Usingen-2026!"
UNKNOWN_CASE = "/pay/NA-2026-000999"  # no such case: the pay limit counts before the lookup
PAY_LIMIT = 30  # pay-page requests a minute per address (bridge/payments/routes.py)
TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
SHA = "ab" * 32


def nginx_binary() -> str:
    """Debian's nginx; scripts/test installs it (apt-get install nginx)."""
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
    )
    if found is None:
        pytest.fail("nginx is not installed (sudo apt-get install -y nginx; scripts/test does it)")
    return found


@dataclass
class Ports:
    """Where everything listens on 127.0.0.1."""

    app: int
    http: int
    public: int
    internal: int


def render_site(ports: Ports, cert: Path, key: Path) -> str:
    """The shipped site with exactly its CHANGE lines rewritten for this test's loopback."""
    text = SITE.read_text(encoding="utf-8")
    replacements = {
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{ports.app};",
        "listen 80;": f"listen 127.0.0.1:{ports.http};",
        "listen [::]:80;": "",
        "listen 443 ssl;": f"listen 127.0.0.1:{ports.public} ssl;",
        "listen [::]:443 ssl;": "",
        "listen 10.0.0.5:8443 ssl;": f"listen 127.0.0.1:{ports.internal} ssl;",
        # The internal side lets in two of the test's clients; 127.0.0.4 stays outside.
        "allow 10.0.0.0/8;": "allow 127.0.0.2/31;",
        "/etc/ssl/bridge/bridge.crt": str(cert),
        "/etc/ssl/bridge/bridge.key": str(key),
    }
    for old, new in replacements.items():
        assert old in text, f"the site no longer has {old!r}: update this test and docs/proxy.md"
        text = text.replace(old, new)
    return text


def nginx_conf(folder: Path, site: Path) -> str:
    """A main nginx.conf around the site, everything under `folder`."""
    # Run as root, nginx's workers would switch to nobody, who cannot write into the test's
    # private folder (request bodies are buffered there).
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
    temp = " ".join(
        f"{kind}_temp_path {folder / kind};" for kind in ("proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"{user}\ndaemon off;\nworker_processes 1;\npid {folder / 'nginx.pid'};\n"
        f"error_log {folder / 'error.log'} info;\nevents {{ worker_connections 128; }}\n"
        f"http {{\n access_log {folder / 'access.log'};\n client_body_temp_path {folder / 'body'};\n"
        f" {temp}\n include {site};\n}}\n"
    )


Answer = tuple[int, http.client.HTTPMessage, bytes]


@dataclass
class Site:
    """nginx and the app running; clients for each side."""

    ports: Ports
    tls: ssl.SSLContext
    store: Store
    redis_url: str

    def call(
        self,
        port: int,
        method: str,
        path: str,
        source: str,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        tls: bool = True,
    ) -> Answer:
        """One request from the loopback address `source`; status, headers, body."""
        conn: http.client.HTTPConnection
        if tls:
            conn = http.client.HTTPSConnection(
                "127.0.0.1", port, source_address=(source, 0), context=self.tls, timeout=30
            )
        else:
            conn = http.client.HTTPConnection(
                "127.0.0.1", port, source_address=(source, 0), timeout=30
            )
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.msg, response.read()
        finally:
            conn.close()

    def public(
        self,
        method: str,
        path: str,
        source: str = "127.0.0.2",
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> Answer:
        """A request to the public side over TLS."""
        return self.call(self.ports.public, method, path, source, headers, body)

    def internal(
        self,
        method: str,
        path: str,
        source: str = "127.0.0.2",
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> Answer:
        """A request to the internal side over TLS."""
        return self.call(self.ports.internal, method, path, source, headers, body)

    def direct(
        self,
        method: str,
        path: str,
        source: str,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> Answer:
        """A request straight to the app (not through nginx), plain HTTP as gunicorn serves."""
        return self.call(self.ports.app, method, path, source, headers, body, tls=False)


def _serving(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _healthy(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/healthz")
        return conn.getresponse().status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, redis_server: str) -> Iterator[Site]:
    """gunicorn with the bridge (BRIDGE_PROXY_HOPS=1) behind nginx with the shipped site."""
    nginx = nginx_binary()
    folder = tmp_path_factory.mktemp("nginx")
    ports = Ports(app=free_port(), http=free_port(), public=free_port(), internal=free_port())
    database_url = f"sqlite:///{folder / 'bridge.db'}"
    engine = make_engine(database_url)
    upgrade(engine)
    redis_url = f"{redis_server}/14"
    Redis.from_url(redis_url).flushdb()
    env = base_environ(
        database_url,
        redis_url,
        BRIDGE_PROXY_HOPS="1",
        BRIDGE_METRICS_TOKEN=METRICS_TOKEN,
        BRIDGE_PUBLIC_URL=f"https://127.0.0.1:{ports.public}",
        BRIDGE_LOG_FORMAT="text",
    )
    # The bridge's own body limits, which the site's client_max_body_size matches.
    env.pop("BRIDGE_MAX_BODY_BYTES")
    env.pop("BRIDGE_MAX_FILE_BYTES")
    procs = Processes(folder, {**os.environ, **env})
    cert, key = certificate(folder)
    (folder / "bridge.conf").write_text(render_site(ports, cert, key), encoding="utf-8")
    conf = folder / "nginx.conf"
    conf.write_text(nginx_conf(folder, folder / "bridge.conf"), encoding="utf-8")
    try:
        procs.launch(
            "gunicorn",
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--config",
                str(ROOT / "gunicorn.conf.py"),
                "--bind",
                f"127.0.0.1:{ports.app}",
                "--workers",
                "1",
                "--control-socket",
                str(folder / "gunicorn.ctl"),
                "bridge:create_app()",
            ],
        )
        procs.launch(
            "nginx", [nginx, "-e", str(folder / "error.log"), "-p", str(folder), "-c", str(conf)]
        )
        wait_for(lambda: _healthy(ports.app), 60, "gunicorn")
        wait_for(lambda: _serving(ports.public) and _serving(ports.internal), 20, "nginx")
        tls = ssl.create_default_context(cafile=str(cert))
        yield Site(ports, tls, Store(engine), redis_url)
    except BaseException:
        print(
            procs.logs(),
            (folder / "error.log").read_text() if (folder / "error.log").exists() else "",
        )
        raise
    finally:
        procs.stop_all()
        engine.dispose()


@pytest.fixture
def fresh(site: Site) -> Site:
    """The site with Redis emptied: every test starts with no client's minute used."""
    Redis.from_url(site.redis_url).flushdb()
    return site


def _is_app_problem(headers: http.client.HTTPMessage) -> bool:
    return headers.get("Content-Type", "").startswith("application/problem+json")


def test_public_paths_work_through_tls(fresh: Site) -> None:
    """Over TLS on the public side: Formcycle's webhook is accepted (202 with a reference),
    the schema and /healthz answer, the pay link reaches the app (its German page for an
    unknown case), a provider's callback reaches the app and is journalled with the
    provider's own address, a signed fetch link reaches the app's signature check, and
    plain HTTP is sent to HTTPS."""
    status, _, body = fresh.public(
        "POST",
        "/webhooks/formcycle/dog-registration",
        headers={"Content-Type": "application/json", "X-Bridge-Secret": FORMCYCLE_SECRET},
        body=as_json(dog()),
    )
    assert status == 202, body
    assert re.fullmatch(r"NA-\d{4}-\d{6}", json.loads(body)["reference"])
    status, _, body = fresh.public("GET", "/schemas/dog-registration")
    assert status == 200
    assert json.loads(body)["type"] == "object"
    assert fresh.public("GET", "/healthz")[0] == 200
    status, headers, body = fresh.public("GET", UNKNOWN_CASE)
    assert status == 404
    assert headers["Content-Type"].startswith("text/html")
    assert "<title>Dieser Link ist nicht mehr gültig</title>" in body.decode()
    status, headers, _ = fresh.public(
        "POST",
        "/webhooks/payments/epay21-demo",
        source="127.0.0.3",
        headers={"Content-Type": "application/json", "X-Forwarded-For": "198.51.100.9"},
        body=b"{}",
    )
    assert (status, _is_app_problem(headers)) == (400, True)
    with fresh.store.read() as session:
        newest = session.scalars(
            select(PaymentCallback.remote_addr).order_by(PaymentCallback.id.desc())
        ).first()
    assert newest == "127.0.0.3"
    query = urllib.parse.urlencode({"delivery": "x", "expires": "1", "signature": "x"})
    status, headers, body = fresh.public(
        "GET", f"/api/v1/submissions/NA-2026-000001/attachments/{SHA}?{query}"
    )
    assert (status, _is_app_problem(headers)) == (403, True)
    assert json.loads(body)["detail"] == "Der Abruflink ist ungültig."
    status, headers, _ = fresh.call(fresh.ports.http, "GET", UNKNOWN_CASE, "127.0.0.2", tls=False)
    assert status == 308
    assert headers["Location"] == f"https://127.0.0.1{UNKNOWN_CASE}"


INTERNAL_PATHS = [
    "/admin/",
    "/admin/login",
    "/api/v1/me",
    "/api/v1/submissions?status=failed",
    "/api/v1/inbox/usingen/cases",
    f"/api/v1/submissions/NA-2026-000001/attachments/{SHA}",
    "/metrics",
    "/readyz",
    "/openapi.json",
]
DISGUISED_PATHS = [
    "/pay/../admin/",
    "/pay/..%2Fadmin/login",
    "/pay/%2e%2e/metrics",
    "/schemas/..%5Cmetrics",
    "/healthz/../metrics",
    "//admin/",
    "/PAY/../admin/",
]


@pytest.mark.parametrize("path", INTERNAL_PATHS + DISGUISED_PATHS)
def test_internal_paths_are_refused_on_the_public_side(fresh: Site, path: str) -> None:
    """The admin page, the API, /metrics, /readyz and the API description never reach the app
    from the public side, also not disguised as a public path; a bearer token does not help."""
    for headers in ({}, {"Authorization": f"Bearer {METRICS_TOKEN}"}):
        status, answer, _ = fresh.public("GET", path, headers=headers)
        assert status in (400, 404), (path, status)
        assert not _is_app_problem(answer)
        assert answer.get("Set-Cookie") is None


def test_public_paths_take_only_their_methods(fresh: Site) -> None:
    """A GET on a webhook or a PUT on a pay page is refused by nginx (403); the pay button's
    POST reaches the app, which answers a reference without a valid link with its German page."""
    assert fresh.public("GET", "/webhooks/formcycle/dog-registration")[0] == 403
    assert fresh.public("GET", "/webhooks/payments/epay21-demo")[0] == 403
    assert fresh.public("PUT", UNKNOWN_CASE, body=b"x")[0] == 403
    status, _, body = fresh.public("POST", UNKNOWN_CASE, body=b"token=x")
    assert status == 404
    assert "nicht mehr gültig" in body.decode()


def test_the_internal_side_serves_the_admin_page_the_api_and_metrics(fresh: Site) -> None:
    """On the internal listener the admin page and the API answer (the API wants its token),
    /metrics wants BRIDGE_METRICS_TOKEN, and an address outside its networks is refused."""
    status, _, body = fresh.internal("GET", "/admin/login")
    assert status == 200
    assert "Anmelden" in body.decode()
    status, headers, _ = fresh.internal("GET", "/api/v1/me")
    assert (status, _is_app_problem(headers)) == (401, True)
    assert fresh.internal("GET", "/metrics")[0] == 401
    status, _, body = fresh.internal(
        "GET", "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    assert status == 200
    assert b"bridge_redis_up" in body
    assert fresh.internal("GET", "/admin/login", source="127.0.0.4")[0] == 403


def test_one_clients_rate_limit_does_not_touch_another(fresh: Site) -> None:
    """A citizen at 127.0.0.2 uses up the pay page's minute (the 31st request is 429), even
    while claiming another address each time; a citizen at 127.0.0.3 is not limited."""
    statuses = [
        fresh.public("GET", UNKNOWN_CASE, headers={"X-Forwarded-For": f"203.0.113.{i}"})[0]
        for i in range(PAY_LIMIT + 1)
    ]
    assert statuses == [404] * PAY_LIMIT + [429]
    assert fresh.public("GET", UNKNOWN_CASE, source="127.0.0.3")[0] == 404


def _login(site: Site, source: str, password: str) -> Answer:
    status, headers, body = site.internal("GET", "/admin/login", source=source)
    assert status == 200
    cookie = headers["Set-Cookie"].split(";", 1)[0]
    token = TOKEN.search(body.decode())
    assert token is not None
    form = urllib.parse.urlencode(
        {"username": "olga", "password": password, "csrf_token": token.group(1)}
    ).encode()
    return site.internal(
        "POST",
        "/admin/login",
        source=source,
        headers={
            "Cookie": cookie,
            "Content-Type": "application/x-www-form-urlencoded",
            # What a browser sends: the admin page's origin as nginx serves it, which the app
            # knows as its own from X-Forwarded-Proto and X-Forwarded-Host.
            "Origin": f"https://127.0.0.1:{site.ports.internal}",
        },
        body=form,
    )


def test_one_clients_lockout_does_not_touch_another(fresh: Site) -> None:
    """Wrong passwords for olga from 127.0.0.2 lock that address out of her account (429,
    also with the right password); olga at 127.0.0.3 gets in, and her session records her
    address, not nginx's."""
    create_account(
        fresh.store,
        "olga",
        PASSWORD,
        "operator",
        actor=Actor("setup", "admin", via="cli"),
        kdf=ScryptParams(n=2**14),
    )
    for _ in range(ACCOUNT_MAX_FAILURES + 1):
        assert _login(fresh, "127.0.0.2", "falsch-falsch-falsch")[0] in (401, 429)
    assert _login(fresh, "127.0.0.2", PASSWORD)[0] == 429
    status, headers, _ = _login(fresh, "127.0.0.3", PASSWORD)
    assert status == 303
    assert "Secure" in headers["Set-Cookie"]  # the clerk came over TLS (X-Forwarded-Proto)
    with fresh.store.read() as session:
        assert list(session.scalars(select(AdminSession.remote_addr))) == ["127.0.0.3"]


def test_a_forged_forwarded_for_sent_straight_to_the_app_is_not_believed(fresh: Site) -> None:
    """A local process at 127.0.0.4 that bypasses nginx is not a trusted proxy: its claimed
    addresses are ignored, so its 31st pay-page request is 429, and its callback is
    journalled under its own address."""
    statuses = [
        fresh.direct(
            "GET", UNKNOWN_CASE, "127.0.0.4", headers={"X-Forwarded-For": f"203.0.113.{i}"}
        )[0]
        for i in range(PAY_LIMIT + 1)
    ]
    assert statuses == [404] * PAY_LIMIT + [429]
    status, _, _ = fresh.direct(
        "POST",
        "/webhooks/payments/epay21-demo",
        "127.0.0.4",
        headers={"Content-Type": "application/json", "X-Forwarded-For": "198.51.100.77"},
        body=b"{}",
    )
    assert status == 400
    with fresh.store.read() as session:
        newest = session.scalars(
            select(PaymentCallback.remote_addr).order_by(PaymentCallback.id.desc())
        ).first()
    assert newest == "127.0.0.4"


def _directive(text: str, name: str) -> list[str]:
    return re.findall(rf"^\s*{name}\s+([^;]+);", text, re.M)


def _bytes(size: str) -> int:
    units = {"k": 1024, "m": 1024 * 1024}
    return int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)


def test_the_sites_limits_match_the_bridges() -> None:
    """Both sides take bodies up to the bridge's BRIDGE_MAX_BODY_BYTES default (no larger body
    is buffered for nothing, no allowed one refused), callbacks up to what the bridge reads;
    nginx waits for the app longer than gunicorn lets a request run."""
    text = SITE.read_text(encoding="utf-8")
    sizes = [_bytes(v) for v in _directive(text, "client_max_body_size")]
    assert sizes == [
        Settings.max_body_bytes,
        MAX_CALLBACK_BYTES,
        FIT_CONNECT_CALLBACK_BYTES,
        MAX_PAY_FORM_BYTES,
        Settings.max_body_bytes,
    ]
    gunicorn_timeout = int(
        re.findall(r"^timeout = (\d+)", (ROOT / "gunicorn.conf.py").read_text(), re.M)[0]
    )
    reads = {int(v.rstrip("s")) for v in _directive(text, "proxy_read_timeout")}
    assert reads
    assert min(reads) > gunicorn_timeout
    assert set(_directive(text, "proxy_request_buffering")) == {"on"}
