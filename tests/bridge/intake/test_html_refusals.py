"""Refusals a citizen may see (Accept: text/html): a short German page, each problem by its
field's German label, nothing the sender typed; API clients keep problem+json (issue 18 item 5)."""

from __future__ import annotations

import html
import re

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from store.engine import Store
from tests.bridge.intake.test_reject import CASES, CHIP, DOG, Bad
from tests.conftest import snapshot
from tests.factories import dog
from tests.webhook_support import (
    FORM,
    assert_problem,
    form_body,
    post,
    post_chunked,
    secret_headers,
)

#: What a browser sends (Formcycle passes the citizen's Accept on with "return as response page").
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
HOSTILE = "<script>alert('x')</script>"
HEADING = "<h1>Ihr Antrag wurde nicht angenommen</h1>"
DETAIL_OF_415 = "Erhalten:"


def _send(client: FlaskClient, case: Bad, accept: str | None) -> TestResponse:
    body, content_type = case.body()
    headers = secret_headers() if case.auth is None else case.auth(body)
    if accept is not None:
        headers = {**headers, "Accept": accept}
    if case.chunked:
        assert content_type is not None
        return post_chunked(client, case.service, body, content_type, headers)
    return post(client, case.service, body, content_type, headers)


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_every_refusal_is_a_german_page_for_a_browser(
    client: FlaskClient, store: Store, case: Bad
) -> None:
    """Same status, HTML in German, every failing field once by its label and never by its
    key, no JSON, no markup from the input, and the store unchanged."""
    before = snapshot(store)
    response = _send(client, case, BROWSER)
    assert response.status_code == case.status
    assert response.mimetype == "text/html"
    assert response.headers["Content-Language"] == "de"
    page = response.get_data(as_text=True)
    assert HEADING in page
    assert "Es wurde nichts gespeichert." in page
    assert '"type"' not in page
    assert "<script" not in page
    assert DETAIL_OF_415 not in page  # a detail that repeats a header is not shown
    errors = case.errors() if callable(case.errors) else case.errors
    listed = re.findall(r"<li><strong>([^<]*)</strong>: ([^<]*)</li>", page)
    assert len(listed) == len(errors)
    for key, _ in errors:
        if "." in key or "_" in key:
            assert key not in page, key
    assert snapshot(store) == before


def test_a_422_names_fields_by_label_and_echoes_nothing(client: FlaskClient, store: Store) -> None:
    """A hostile name beside a bad chip number: the page names "Hund › Transpondernummer (Chip)" with
    the German message and shows neither value; without Accept the JSON is as before."""
    before = snapshot(store)
    body = form_body(dog({"dog.name": HOSTILE, "dog.microchip_number": f"123{HOSTILE}"}))
    page_answer = post(client, DOG, body, FORM, {**secret_headers(), "Accept": BROWSER})
    assert page_answer.status_code == 422
    page = page_answer.get_data(as_text=True)
    assert f"<li><strong>Hund › Transpondernummer (Chip)</strong>: {html.escape(CHIP)}</li>" in page
    assert "Die Angaben sind unvollständig oder fehlerhaft." in page
    assert "korrigieren Sie die genannten Angaben" in page
    for shown in (HOSTILE, html.escape(HOSTILE), "alert", "123"):
        assert shown not in page
    for accept in (None, "application/json", "*/*"):
        headers = secret_headers() if accept is None else {**secret_headers(), "Accept": accept}
        answer = post(client, DOG, body, FORM, headers)
        assert_problem(answer, 422, "validation", errors=[("dog.microchip_number", CHIP)])
    assert snapshot(store) == before


def test_unknown_keys_are_not_echoed(client: FlaskClient, store: Store) -> None:
    """A key the schema does not know (a form refusing unknown fields, or a clash of a value
    with a group) is listed as "Weitere Angabe", never under the key that was sent."""
    before = snapshot(store)
    body = form_body(dog(), [(f"dog.name.{HOSTILE}", "x")])
    response = post(client, DOG, body, FORM, {**secret_headers(), "Accept": BROWSER})
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "<li><strong>Weitere Angabe</strong>: Diese Angabe ist im Formular" in page
    assert "script" not in page
    json_answer = post(client, DOG, body, FORM)
    assert json_answer.mimetype == "application/problem+json"
    assert snapshot(store) == before


def test_a_415_page_does_not_repeat_the_content_type(client: FlaskClient, store: Store) -> None:
    """The JSON problem names the media type it got; the page does not (it came from the
    sender), and says that the citizen can do nothing about it."""
    before = snapshot(store)
    body = form_body(dog())
    content_type = f"text/{HOSTILE}"
    page = post(client, DOG, body, content_type, {**secret_headers(), "Accept": BROWSER})
    assert page.status_code == 415
    text = page.get_data(as_text=True)
    assert "Dieses Datenformat wird nicht angenommen." in text
    assert "Das liegt nicht an Ihren Angaben." in text
    assert "script" not in text
    problem = post(client, DOG, body, content_type)
    assert problem.status_code == 415
    assert "script" in problem.get_json()["detail"]
    assert snapshot(store) == before


def test_a_409_conflict_is_a_german_page(client: FlaskClient, store: Store) -> None:
    """The same submission id with other content: 409 page, the original untouched."""
    assert post(client, DOG, form_body(dog(), [("process_id", "fc-html")])).status_code == 202
    before = snapshot(store)
    edited = form_body(dog({"dog.name": HOSTILE}), [("process_id", "fc-html")])
    response = post(client, DOG, edited, FORM, {**secret_headers(), "Accept": BROWSER})
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "Diese Vorgangskennung wurde bereits für einen anderen Antrag verwendet." in page
    assert "füllen Sie das Formular neu aus" in page
    assert "script" not in page
    assert snapshot(store) == before
