"""Idempotency: a repeat gets the original answer, other content under its key a 409, also concurrently."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from bridge import create_app
from domain.intake.forms import RawSubmission
from domain.intake.pipeline import Intake
from domain.problems import Problem
from domain.settings import Settings
from store.engine import Store
from store.models import utcnow
from tests.conftest import snapshot
from tests.factories import PDF, as_json, dog, flatten, traffic
from tests.webhook_support import (
    FORM,
    JSON,
    PROBLEM_BASE,
    FilePart,
    assert_problem,
    form_body,
    multipart_body,
    post,
    secret_headers,
    signature_headers,
)

DOG = "dog-registration"
TRAFFIC = "traffic-order"
CONFLICT_DE = "Diese Vorgangskennung wurde bereits für einen anderen Antrag verwendet."
CONFLICT_DETAIL = (
    "Unter dieser Kennung ist ein Antrag mit anderem Inhalt eingegangen; es wurde nichts "
    "gespeichert. Ein neuer Antrag braucht eine neue Kennung."
)


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


def test_same_key_with_other_content_is_a_conflict(client: FlaskClient, store: Store) -> None:
    """A resend with edited content under the same key is a 409 (German) and stores nothing."""
    first = post(client, DOG, form_body(dog(), [("process_id", "fc-edit")]))
    after_first = snapshot(store)
    edited = dog({"dog.name": "Rex", "dog.breed": "Rottweiler"})
    second = post(client, DOG, form_body(edited, [("process_id", "fc-edit")]))
    assert_problem(second, 409, "idempotency-conflict", title=CONFLICT_DE, detail=CONFLICT_DETAIL)
    assert snapshot(store) == after_first
    # The original is untouched: its exact resend is still answered with it.
    again = post(client, DOG, form_body(dog(), [("process_id", "fc-edit")]))
    assert _reference(again) == _reference(first)
    assert again.headers["Idempotent-Replayed"] == "true"


def test_conflict_in_english(client: FlaskClient, store: Store) -> None:
    """The 409 comes in English on request."""
    _reference(post(client, DOG, form_body(dog(), [("process_id", "fc-en")])))
    after_first = snapshot(store)
    headers = {**secret_headers(), "Accept-Language": "en"}
    body = form_body(dog({"dog.name": "Rex"}), [("process_id", "fc-en")])
    answer = post(client, DOG, body, FORM, headers)
    assert_problem(
        answer,
        409,
        "idempotency-conflict",
        title="This submission id was already used for a different submission.",
        lang="en",
    )
    assert snapshot(store) == after_first


def test_other_file_under_the_same_key_is_a_conflict(client: FlaskClient, store: Store) -> None:
    """The fingerprint covers the files: the same fields with another file are other content."""

    def body(content: bytes) -> tuple[bytes, str]:
        return multipart_body(
            [*flatten(dog()), ("process_id", "fc-file")],
            [FilePart("attachments", "vertrag.pdf", "application/pdf", content)],
        )

    first = post(client, DOG, *body(PDF))
    after_first = snapshot(store)
    assert_problem(post(client, DOG, *body(PDF + b"% anders\n")), 409, "idempotency-conflict")
    assert snapshot(store) == after_first
    assert _reference(post(client, DOG, *body(PDF))) == _reference(first)
    assert snapshot(store) == after_first


def test_keys_are_scoped_per_service(client: FlaskClient, store: Store) -> None:
    """The same process id for a dog registration and a traffic order names two submissions."""
    dog_answer = post(client, DOG, form_body(dog(), [("process_id", "fc-shared")]))
    traffic_answer = post(client, TRAFFIC, form_body(traffic(), [("process_id", "fc-shared")]))
    assert "Idempotent-Replayed" not in traffic_answer.headers
    assert _reference(traffic_answer) != _reference(dog_answer)
    assert traffic_answer.get_json()["service"] == TRAFFIC
    assert [d["office"] for d in traffic_answer.get_json()["deliveries"]] == [
        "neu-anspach-ordnungsamt"
    ]
    assert _rows(store)["submissions"] == 2
    # Within each service the key still names one submission.
    again = post(client, TRAFFIC, form_body(traffic(), [("process_id", "fc-shared")]))
    assert _reference(again) == _reference(traffic_answer)
    assert _rows(store)["submissions"] == 2


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
    """The same submission from 20 threads at once: one row, the same reference for everyone."""
    n = 20
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


def test_different_contents_under_one_key_concurrently(app: Flask, store: Store) -> None:
    """12 different bodies with one key at once: one is accepted, the other 11 get a 409."""
    n = 12
    results = _together(
        app,
        n,
        lambda client, i: post(
            client, DOG, form_body(dog({"dog.name": f"Hund {i}"}), [("process_id", "fc-one")])
        ),
    )
    assert all(isinstance(r, tuple) for r in results), results
    statuses = sorted(status for status, _ in results)
    assert statuses == [202] + [409] * (n - 1), results
    assert {answer["type"] for status, answer in results if status == 409} == {
        PROBLEM_BASE + "idempotency-conflict"
    }
    rows = _rows(store)
    assert (rows["submissions"], rows["deliveries"], rows["events"]) == (1, 1, 2)


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
    client: FlaskClient, store: Store, environ: dict[str, str]
) -> None:
    """A resend of a stored submission that today's limits refuse still gets the original 202.

    The operator lowered the file size limit between Formcycle's first try and its retry: the
    same body is now too large (413), yet it is the submission already accepted.
    """
    body, content_type = multipart_body(
        [*flatten(dog()), ("process_id", "fc-late")],
        [FilePart("attachments", "vertrag.pdf", "application/pdf", PDF + b"0" * 4096)],
    )
    first = post(client, DOG, body, content_type)
    after_first = snapshot(store)
    stricter = create_app(Settings.from_env({**environ, "BRIDGE_MAX_FILE_BYTES": "2048"}))
    try:
        later = stricter.test_client()
        second = post(later, DOG, body, content_type)
        assert _reference(second) == _reference(first)
        assert second.headers["Idempotent-Replayed"] == "true"
        # Other content under that key is a conflict, not the limit's 413 and not a replay.
        other, other_type = multipart_body(
            [*flatten(dog({"dog.name": "Rex"})), ("process_id", "fc-late")],
            [FilePart("attachments", "vertrag.pdf", "application/pdf", PDF + b"0" * 4096)],
        )
        assert_problem(post(later, DOG, other, other_type), 409, "idempotency-conflict")
        fresh, fresh_type = multipart_body(
            [*flatten(dog()), ("process_id", "fc-new")],
            [FilePart("attachments", "vertrag.pdf", "application/pdf", PDF + b"0" * 4096)],
        )
        assert post(later, DOG, fresh, fresh_type).status_code == 413
    finally:
        stricter.extensions["bridge"].store.dispose()
    assert snapshot(store) == after_first


def test_repeat_after_the_lead_time_ran_out(app: Flask, store: Store) -> None:
    """A traffic order resent after its start came too close still gets its original answer."""
    intake: Intake = app.extensions["bridge"].intake
    service = intake.config.services[TRAFFIC]
    sender = intake.config.senders["formcycle"]
    raw = RawSubmission(fields=[*flatten(traffic()), ("process_id", "fc-lead")])
    first = intake.submit(service, sender, raw)
    assert first.created
    after_first = snapshot(store)
    later = utcnow() + dt.timedelta(days=30)  # the zone's start has passed by then
    again = intake.submit(service, sender, raw, now=later)
    assert (again.created, again.submission.reference) == (False, first.submission.reference)
    other = RawSubmission(fields=[*flatten(traffic()), ("process_id", "fc-lead-2")])
    with pytest.raises(Problem) as refused:
        intake.submit(service, sender, other, now=later)
    assert refused.value.status == 422
    assert snapshot(store) == after_first
