"""The citizen's pages in a real Chromium: the pay page, its button, and the refusal pages,
with no serious accessibility violation (axe-core), as in the admin page's browser tests."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from demo_payments import DemoPayments
from tests.bridge.admin.browser import axe_source, chromium, serious_violations, served

# The pay link tests' provider simulator and its routing file.
from tests.bridge.payments.test_pay_link import (  # noqa: F401 - fixtures are found by name
    SQLITE_ONLY,
    creates,
    environ,
    local,
    simulator,
)
from tests.factories import dog, traffic
from tests.webhook_support import FORM, form_body, post, secret_headers
from tests.worker.conftest import submit

pytestmark = SQLITE_ONLY


def test_the_pay_page_in_chromium_pays_through_its_button(
    app: Flask,
    client: FlaskClient,
    simulator: DemoPayments,  # noqa: F811 - the fixture imported above
) -> None:
    """Open the link: German page, the fee as "35,00 €", a real button; nothing created until
    it is pressed; pressing it lands on the provider's pay page with one transaction."""
    answer = submit(client, "traffic-order", traffic())
    source = axe_source()
    violations: dict[str, list[str]] = {}
    with served(app) as base, chromium() as browser:
        page: Any = browser.new_page()
        page.goto(base + local(answer["payment"]["url"]))
        assert page.title() == f"Gebühr bezahlen – {answer['reference']}"
        assert page.locator("h1").inner_text() == "Gebühr bezahlen"
        assert page.locator("#amount").inner_text() == "35,00 €"
        assert page.get_attribute("html", "lang") == "de"
        violations["pay page"] = serious_violations(page, source)
        assert creates(simulator) == 0
        page.get_by_role("button", name="Jetzt bezahlen").click()
        page.wait_for_url(f"{simulator.url}/**")
        assert creates(simulator) == 1
        page.goto(f"{base}/pay/{answer['reference']}")
        assert page.locator("h1").inner_text() == "Dieser Link ist nicht mehr gültig"
        violations["old link"] = serious_violations(page, source)
        refused = post(
            client,
            "dog-registration",
            form_body(dog({"dog.microchip_number": "1"})),
            FORM,
            {**secret_headers(), "Accept": "text/html"},
        )
        assert refused.status_code == 422
        page.set_content(refused.get_data(as_text=True))
        assert page.locator("h1").inner_text() == "Ihr Antrag wurde nicht angenommen"
        violations["refusal"] = serious_violations(page, source)
    assert violations == {"pay page": [], "old link": [], "refusal": []}
