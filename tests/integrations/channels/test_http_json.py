"""The http-json channel against a real demo back office: signing, dedupe, status handling."""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import time
from typing import Any

import pytest
import requests

from demo_backoffice import DemoBackOffice
from integrations.channels import Channel, DeliveryError, PermanentDeliveryError

from .conftest import OFFICE, SECRET_ENV, ChannelFactory
from .factories import attachment, envelope


def http_json(backoffice: DemoBackOffice, make_channel: ChannelFactory, **options: Any) -> Channel:
    """An http-json channel to the demo's OFFICE, signing with the shared test secret."""
    return make_channel(
        "http-json", url=backoffice.case_url(OFFICE), signing_secret_env=SECRET_ENV, **options
    )


def test_delivers_signed_case_and_records_case_number(
    backoffice: DemoBackOffice, make_channel: ChannelFactory, http: requests.Session
) -> None:
    env = envelope()
    receipt = http_json(backoffice, make_channel).deliver(env, http)

    assert receipt.status_code == 201
    assert receipt.case_number == "USINGEN-STEUERAMT-1"
    [case] = backoffice.cases(OFFICE)
    assert case["delivery_id"] == env.delivery_id
    assert case["reference"] == "US-2026-000123"
    assert case["service"] == "Hund anmelden"
    assert case["format"] == "json"
    assert case["signature_valid"] is True
    assert case["case_number"] == receipt.case_number
    document = backoffice.document(OFFICE, env.delivery_id)
    assert document["type"] == "case.created"
    assert document["service"]["leika"] == "99102013104000"
    assert document["municipality"]["ags"] == "06434011"
    assert document["office"]["id"] == OFFICE
    assert document["received_at"] == "2026-03-02T09:30:00Z"
    assert document["data"]["dog"]["breed"] == "Labrador Retriever"
    assert document["payment"] is None


def test_repeated_delivery_id_files_one_case_and_answers_the_same_number(
    backoffice: DemoBackOffice, make_channel: ChannelFactory, http: requests.Session
) -> None:
    channel = http_json(backoffice, make_channel)
    env = envelope()
    first = channel.deliver(env, http)
    # A retry is the same delivery: same id (webhook-id and Idempotency-Key), later attempt.
    second = channel.deliver(envelope(delivery_id=env.delivery_id, attempt=2), http)

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.case_number == first.case_number
    [case] = backoffice.cases(OFFICE)
    assert case["duplicate_count"] == 1
    assert backoffice.received_ids(OFFICE) == [env.delivery_id, env.delivery_id]


def test_one_session_reuses_one_connection_also_after_an_error(
    backoffice: DemoBackOffice, make_channel: ChannelFactory, http: requests.Session
) -> None:
    channel = http_json(backoffice, make_channel)
    channel.deliver(envelope(), http)
    backoffice.set_fault(OFFICE, "status", status=503, count=1)
    with pytest.raises(DeliveryError):
        channel.deliver(envelope(), http)
    channel.deliver(envelope(), http)

    assert len(backoffice.cases(OFFICE)) == 2
    assert backoffice.connection_count() == 1


def test_retry_after_a_failure_sends_the_same_delivery_id(
    backoffice: DemoBackOffice, make_channel: ChannelFactory, http: requests.Session
) -> None:
    channel = http_json(backoffice, make_channel)
    env = envelope()
    backoffice.set_fault(OFFICE, "status", status=500, count=1)
    with pytest.raises(DeliveryError):
        channel.deliver(env, http)
    receipt = channel.deliver(envelope(delivery_id=env.delivery_id, attempt=2), http)

    assert receipt.status_code == 201
    assert backoffice.received_ids(OFFICE) == [env.delivery_id, env.delivery_id]
    assert len(backoffice.cases(OFFICE)) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_server_errors_and_request_timeout_are_transient(
    status: int, backoffice: DemoBackOffice, make_channel: ChannelFactory, http: requests.Session
) -> None:
    backoffice.set_fault(OFFICE, "status", status=status)
    with pytest.raises(DeliveryError) as info:
        http_json(backoffice, make_channel).deliver(envelope(), http)

    assert not isinstance(info.value, PermanentDeliveryError)
    assert info.value.status_code == status
    assert info.value.message.startswith(f"HTTP {status} ")
    # The server's problem text (a response body) never becomes part of the stored message.
    assert "Simulierter" not in info.value.message
    assert backoffice.cases() == []


def test_503_with_retry_after_seconds(
    backoffice: DemoBackOffice, make_channel: ChannelFactory, http: requests.Session
) -> None:
    backoffice.set_fault(OFFICE, "status", status=503, retry_after=120)
    with pytest.raises(DeliveryError) as info:
        http_json(backoffice, make_channel).deliver(envelope(), http)

    assert info.value.retry_after == 120.0


def test_429_retry_after_seconds_is_parsed(
    backoffice: DemoBackOffice, make_channel: ChannelFactory, http: requests.Session
) -> None:
    backoffice.set_fault(OFFICE, "429", retry_after=7, count=1)
    with pytest.raises(DeliveryError) as info:
        http_json(backoffice, make_channel).deliver(envelope(), http)

    assert not isinstance(info.value, PermanentDeliveryError)
    assert info.value.status_code == 429
    assert info.value.retry_after == 7.0


def test_429_retry_after_http_date_is_parsed(
    backoffice: DemoBackOffice, make_channel: ChannelFactory, http: requests.Session
) -> None:
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=90)
    backoffice.set_fault(OFFICE, "429", retry_after=email.utils.format_datetime(when, usegmt=True))
    with pytest.raises(DeliveryError) as info:
        http_json(backoffice, make_channel).deliver(envelope(), http)

    assert info.value.retry_after is not None
    assert 80.0 <= info.value.retry_after <= 90.0


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 413, 422])
def test_other_client_errors_are_permanent(
    status: int, backoffice: DemoBackOffice, make_channel: ChannelFactory, http: requests.Session
) -> None:
    backoffice.set_fault(OFFICE, "status", status=status)
    with pytest.raises(PermanentDeliveryError) as info:
        http_json(backoffice, make_channel).deliver(envelope(), http)

    assert info.value.status_code == status
    assert info.value.retry_after is None


@pytest.mark.parametrize("channel_name", ["http-json", "xml"])
@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirect_fails_at_once_naming_the_location(
    status: int,
    channel_name: str,
    backoffice: DemoBackOffice,
    make_channel: ChannelFactory,
    http: requests.Session,
) -> None:
    """A moved endpoint is a configuration error: permanent, with the target for the operator."""
    backoffice.set_fault(OFFICE, "status", status=status)
    channel = make_channel(
        channel_name, url=backoffice.case_url(OFFICE), signing_secret_env=SECRET_ENV
    )
    with pytest.raises(PermanentDeliveryError) as info:
        channel.deliver(envelope(), http)

    assert info.value.status_code == status
    assert info.value.retry_after is None
    assert f"leitet um nach {backoffice.url}/_moved/{OFFICE};" in info.value.message
    paths = [path for _, path in backoffice.requests()]
    assert paths == [f"/cases/{OFFICE}"]  # nothing went to the Location (/_moved/...)


def test_connection_closed_without_answer_is_transient(
    backoffice: DemoBackOffice, make_channel: ChannelFactory, http: requests.Session
) -> None:
    backoffice.set_fault(OFFICE, "refuse")
    with pytest.raises(DeliveryError) as info:
        http_json(backoffice, make_channel).deliver(envelope(), http)

    assert not isinstance(info.value, PermanentDeliveryError)
    assert info.value.status_code is None
    assert backoffice.received_ids(OFFICE)  # it did arrive; the answer never came


def test_connection_refused_is_transient(
    closed_port: int, make_channel: ChannelFactory, http: requests.Session
) -> None:
    channel = make_channel(
        "http-json", url=f"http://127.0.0.1:{closed_port}/cases/x", connect_timeout_s=2
    )
    with pytest.raises(DeliveryError) as info:
        channel.deliver(envelope(), http)

    assert not isinstance(info.value, PermanentDeliveryError)
    assert "nicht erreichbar" in info.value.message


def test_hanging_office_times_out_as_transient_error(
    backoffice: DemoBackOffice, make_channel: ChannelFactory, http: requests.Session
) -> None:
    backoffice.set_fault(OFFICE, "hang", count=1)
    channel = http_json(backoffice, make_channel, read_timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(DeliveryError) as info:
        channel.deliver(envelope(), http)

    assert time.monotonic() - started < 5
    assert not isinstance(info.value, PermanentDeliveryError)
    assert "Zeitüberschreitung" in info.value.message
    # The fault was used up: the next attempt goes through on the same session.
    assert channel.deliver(envelope(), http).status_code == 201


def test_wrong_signing_secret_is_refused_by_the_office(
    backoffice: DemoBackOffice, make_channel: ChannelFactory, http: requests.Session
) -> None:
    wrong = "whsec_" + base64.b64encode(b"x" * 32).decode()
    # The office expects another secret than the one the channel signs with.
    channel = make_channel(
        "http-json",
        with_secrets={"WRONG": wrong},
        url=backoffice.case_url(OFFICE),
        signing_secret_env="WRONG",
    )
    with pytest.raises(PermanentDeliveryError) as info:
        channel.deliver(envelope(), http)

    assert info.value.status_code == 401
    assert backoffice.cases() == []


def test_unsigned_delivery_to_a_verifying_office_is_refused(
    backoffice: DemoBackOffice, make_channel: ChannelFactory, http: requests.Session
) -> None:
    channel = make_channel("http-json", url=backoffice.case_url(OFFICE))
    with pytest.raises(PermanentDeliveryError) as info:
        channel.deliver(envelope(), http)

    assert info.value.status_code == 401


def test_large_attachment_goes_as_hash_and_fetch_link(
    backoffice: DemoBackOffice, make_channel: ChannelFactory, http: requests.Session
) -> None:
    small = attachment(b"klein", filename="klein.txt", content_type="text/plain")
    large = attachment(b"A" * 4096, filename="lageplan.pdf")
    env = envelope(attachments=[small, large])
    http_json(backoffice, make_channel, inline_limit_bytes=1024).deliver(env, http)

    [case] = backoffice.cases(OFFICE)
    by_name = {a["filename"]: a for a in case["attachments"]}
    assert by_name["klein.txt"]["inline"] is True
    assert by_name["lageplan.pdf"]["inline"] is False
    assert by_name["lageplan.pdf"]["fetch_url"] == large.fetch_url
    assert by_name["lageplan.pdf"]["sha256"] == large.sha256
    document = backoffice.document(OFFICE, env.delivery_id)
    [_, sent] = document["attachments"]
    assert sent["content_base64"] is None
    assert sent["size"] == 4096


def test_case_number_field_is_configurable(
    backoffice: DemoBackOffice, make_channel: ChannelFactory, http: requests.Session
) -> None:
    channel = http_json(backoffice, make_channel, case_number_field="aktenzeichen")
    receipt = channel.deliver(envelope(), http)

    assert receipt.status_code == 201
    assert receipt.case_number is None  # the demo answers "case_number", not "aktenzeichen"
