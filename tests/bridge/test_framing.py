"""No page of the service may be framed: clickjacking the citizen's pay link or the admin login."""

from __future__ import annotations

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.factories import dog
from tests.webhook_support import FORM, form_body, secret_headers, webhook_path


def _assert_unframeable(response: TestResponse) -> None:
    assert response.mimetype == "text/html"
    assert response.headers["X-Frame-Options"] == "DENY"
    policy = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in [part.strip() for part in policy.split(";")]


def test_the_confirmation_page_cannot_be_framed(client: FlaskClient) -> None:
    """The 202 page Formcycle shows the citizen."""
    response = client.post(
        webhook_path("dog-registration"),
        data=form_body(dog()),
        headers={**secret_headers(), "Content-Type": FORM, "Accept": "text/html"},
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    _assert_unframeable(response)


def test_the_pay_pages_cannot_be_framed(client: FlaskClient) -> None:
    """The pay link's page, here for a reference that does not exist."""
    response = client.get("/pay/NA-2026-999999")
    _assert_unframeable(response)
    returned = client.get("/pay/NA-2026-999999/return")
    _assert_unframeable(returned)


def test_the_admin_login_keeps_its_policy_and_cannot_be_framed(client: FlaskClient) -> None:
    """The admin page's own CSP stays whole (one header, its other directives kept)."""
    response = client.get("/admin/login")
    assert response.status_code == 200
    _assert_unframeable(response)
    assert len(response.headers.getlist("Content-Security-Policy")) == 1
    assert "default-src" in response.headers["Content-Security-Policy"]
