"""Idempotency: a repeated submission gets the original reference and creates nothing, also concurrently."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from domain.store import Store
from tests.conftest import snapshot
from tests.factories import as_json, dog
from tests.webhook_support import (
    FORM,
    JSON,
    form_body,
    post,
    secret_headers,
    signature_headers,
)

DOG = "dog-registration"


def _reference(response: TestResponse) -> str:
    assert response.status_code == 202, response.get_data(as_text=True)
    reference = response.get_json()["reference"]
    assert isinstance(reference, str)
    return reference


def _rows(store: Store) -> dict[str, int]:
    return {table: len(rows) for table, rows in snapshot(store).items()}


def test_same_process_id_twice_gives_the_same_reference(client: FlaskClient, store: Store) -> None:
    """Formcycle's process id makes a repeat return the original answer and store nothing new."""
    body = form_body(dog(), [("process_id", "fc-4711")])
    first = post(client, DOG, body)
    after_first = snapshot(store)
    second = post(client, DOG, body)
    assert _reference(first) == _reference(second)
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.headers["Location"] == first.headers["Location"]
    assert second.get_json()["deliveries"] == first.get_json()["deliveries"]
    assert snapshot(store) == after_first
    assert _rows(store)["submissions"] == 1


def test_repeat_returns_the_original_even_if_the_body_changed(
    client: FlaskClient, store: Store
) -> None:
    """The key decides: a resend with edited content still answers with the first submission."""
    first = post(client, DOG, form_body(dog(), [("process_id", "fc-edit")]))
    after_first = snapshot(store)
    edited = dog({"dog.name": "Rex", "dog.breed": "Rottweiler"})
    second = post(client, DOG, form_body(edited, [("process_id", "fc-edit")]))
    assert _reference(second) == _reference(first)
    assert len(second.get_json()["deliveries"]) == 1
    assert snapshot(store) == after_first


def test_form_and_json_of_the_same_process_are_one_submission(
    client: FlaskClient, store: Store
) -> None:
    """The process id in a JSON body is the same key as in a form post."""
    first = post(client, DOG, form_body(dog(), [("process_id", "fc-both")]))
    second = post(client, DOG, as_json({**dog(), "process_id": "fc-both"}), JSON)
    assert _reference(first) == _reference(second)
    assert _rows(store)["submissions"] == 1


def test_idempotency_key_header(client: FlaskClient, store: Store) -> None:
    """Without a process id the Idempotency-Key header is the key."""
    headers = {**secret_headers(), "Idempotency-Key": "idem-0001"}
    first = post(client, DOG, form_body(dog()), FORM, headers)
    second = post(client, DOG, form_body(dog()), FORM, headers)
    other = post(client, DOG, form_body(dog()), FORM, {**headers, "Idempotency-Key": "idem-0002"})
    assert _reference(first) == _reference(second)
    assert _reference(other) != _reference(first)
    assert _rows(store)["submissions"] == 2


def test_webhook_id_is_the_idempotency_key(client: FlaskClient, store: Store) -> None:
    """A signed message sent again (new timestamp, new signature) is the same submission."""
    body = form_body(dog())
    now = int(time.time())
    first = post(client, DOG, body, FORM, signature_headers(body, "msg_2xQ7", now - 100))
    after_first = snapshot(store)
    again = post(client, DOG, body, FORM, signature_headers(body, "msg_2xQ7", now))
    assert _reference(again) == _reference(first)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert snapshot(store) == after_first
    other = post(client, DOG, body, FORM, signature_headers(body, "msg_other", now))
    assert _reference(other) != _reference(first)
    assert _rows(store)["submissions"] == 2


def test_repeat_as_html_shows_the_original_reference(client: FlaskClient, store: Store) -> None:
    """A citizen's double click gets the confirmation page with the first reference."""
    body = form_body(dog(), [("process_id", "fc-html")])
    reference = _reference(post(client, DOG, body))
    page = post(client, DOG, body, FORM, {**secret_headers(), "Accept": "text/html"})
    assert page.status_code == 202
    assert f'<strong id="reference">{reference}</strong>' in page.get_data(as_text=True)
    assert _rows(store)["submissions"] == 1


def _together(app: Flask, n: int, send: Callable[[FlaskClient, int], TestResponse]) -> list[Any]:
    """Run `send` from n threads released at the same moment; results in thread order."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        client = app.test_client()
        barrier.wait(timeout=30)
        try:
            response = send(client, i)
            results[i] = (response.status_code, response.get_json())
        except Exception as exc:  # reported below, with the thread's number
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return results


@pytest.mark.parametrize("key", ["process-id", "webhook-id"])
def test_same_submission_concurrently_is_stored_once(app: Flask, store: Store, key: str) -> None:
    """The same submission from 8 threads at once: one row, the same reference for everyone."""
    n = 8
    if key == "process-id":
        body = form_body(dog(), [("process_id", "fc-race")])
        headers = secret_headers()
    else:
        body = form_body(dog())
        headers = signature_headers(body, "msg_race")
    results = _together(app, n, lambda client, _i: post(client, DOG, body, FORM, headers))
    assert all(isinstance(r, tuple) for r in results), results
    assert [status for status, _ in results] == [202] * n, results
    references = {answer["reference"] for _, answer in results}
    assert len(references) == 1
    rows = _rows(store)
    assert rows["submissions"] == 1
    assert rows["deliveries"] == 1
    assert rows["events"] == 2
    delivery_ids = {answer["deliveries"][0]["id"] for _, answer in results}
    assert len(delivery_ids) == 1


def test_different_submissions_concurrently_get_distinct_references(
    app: Flask, store: Store
) -> None:
    """12 different submissions at once: 12 rows, 12 different references."""
    n = 12
    results = _together(
        app,
        n,
        lambda client, i: post(client, DOG, form_body(dog(), [("process_id", f"fc-many-{i}")])),
    )
    assert all(isinstance(r, tuple) for r in results), results
    assert [status for status, _ in results] == [202] * n, results
    references = [answer["reference"] for _, answer in results]
    assert len(set(references)) == n
    assert _rows(store)["submissions"] == n
    # The sequence is shared by all towns: numbers are unique across prefixes too.
    numbers = [int(r.rsplit("-", 1)[1]) for r in references]
    assert len(set(numbers)) == n


def test_repeat_is_answered_even_if_today_it_would_be_refused(
    client: FlaskClient, store: Store
) -> None:
    """A resend of a stored submission that today's rules refuse still gets the original 202.

    (Say the traffic order's lead time ran out between the first try and Formcycle's retry.)
    """
    first = post(client, DOG, form_body(dog(), [("process_id", "fc-late")]))
    after_first = snapshot(store)
    refused_now = dog({"dog.microchip_number": "12"})
    second = post(client, DOG, form_body(refused_now, [("process_id", "fc-late")]))
    assert _reference(second) == _reference(first)
    assert second.headers["Idempotent-Replayed"] == "true"
    assert snapshot(store) == after_first
    fresh = post(client, DOG, form_body(refused_now, [("process_id", "fc-new")]))
    assert fresh.status_code == 422
    assert snapshot(store) == after_first
