"""A citizen in Chromium goes from a Formcycle form to the provider's pay page: the form's
HTTP-Request action as docs/formcycle.md sets it up ("Return as response page", Accept:
text/html) shows the bridge's 202 page under Formcycle's address, and its pay link leads on."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import parse_qsl

import requests
from flask import Flask, Response, request

from bridge import create_app
from demo_payments import DemoPayments
from domain.settings import Settings
from harness.ports import free_port
from tests.bridge.admin.browser import axe_source, chromium, serious_violations, served

# The pay link tests' provider simulator and its routing file.
from tests.bridge.payments.test_pay_link import (  # noqa: F401 - fixtures are found by name
    SQLITE_ONLY,
    creates,
    environ,
    simulator,
)
from tests.conftest import FORMCYCLE_SECRET, ROOT

pytestmark = SQLITE_ONLY
EXAMPLE = ROOT / "examples" / "formcycle" / "traffic-order.form"


def formcycle(bridge: str) -> Flask:
    """A stand-in for Formcycle on its own address: the citizen's form (the guide's traffic
    order, default element names), and on submit the guide's HTTP-Request action: POST
    urlencoded with the process id, the secret and Accept: text/html, the bridge's answer
    returned as the response page."""
    fields = [
        (k, v) for k, v in parse_qsl(EXAMPLE.read_text(encoding="utf-8")) if k != "process_id"
    ]
    stand_in = Flask("formcycle_stand_in")

    @stand_in.get("/form")
    def form() -> str:
        inputs = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in fields
        )
        return (
            '<!doctype html><html lang="de"><head><title>Halteverbot beantragen</title></head>'
            f'<body><form method="post">{inputs}<button type="submit">Absenden</button></form>'
            "</body></html>"
        )

    @stand_in.post("/form")
    def submit() -> Response:
        answer = requests.post(
            f"{bridge}/webhooks/formcycle/traffic-order",
            data=[*request.form.items(multi=True), ("process_id", "FC-BROWSER-0001")],
            headers={"X-Bridge-Secret": FORMCYCLE_SECRET, "Accept": "text/html"},
            timeout=10,
        )
        return Response(
            answer.content, answer.status_code, content_type=answer.headers["Content-Type"]
        )

    return stand_in


def test_the_response_page_leads_the_citizen_to_pay(
    environ: dict[str, str],  # noqa: F811 - the fixture imported above
    simulator: DemoPayments,  # noqa: F811 - the fixture imported above
) -> None:
    """Submit the form: the German 202 page with the fee, under Formcycle's address; its link
    "Jetzt online bezahlen" opens the bridge's pay page (BRIDGE_PUBLIC_URL), whose button
    creates one transaction and lands on the provider."""
    port = free_port()
    bridge_url = f"http://127.0.0.1:{port}"
    app = create_app(Settings.from_env({**environ, "BRIDGE_PUBLIC_URL": bridge_url}))
    source = axe_source()
    try:
        with (
            served(app, port),
            served(formcycle(bridge_url)) as formcycle_url,
            chromium() as browser,
        ):
            page: Any = browser.new_page()
            page.goto(f"{formcycle_url}/form")
            page.get_by_role("button", name="Absenden").click()
            page.wait_for_load_state()
            assert page.url == f"{formcycle_url}/form"
            assert page.locator("h1").inner_text() == "Vielen Dank, Ihr Antrag ist eingegangen."
            assert "Gebühr von 35,00 €" in page.locator("#payment").inner_text()
            assert serious_violations(page, source) == []
            page.get_by_role("link", name="Jetzt online bezahlen").click()
            page.wait_for_url(f"{bridge_url}/pay/US-*")
            assert page.locator("h1").inner_text() == "Gebühr bezahlen"
            assert page.locator("#amount").inner_text() == "35,00 €"
            assert creates(simulator) == 0
            page.get_by_role("button", name="Jetzt bezahlen").click()
            page.wait_for_url(f"{simulator.url}/**")
            assert creates(simulator) == 1
    finally:
        app.extensions["bridge"].store.dispose()
