"""Channel options: each channel's schema fills defaults and reports every problem clearly."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from integrations.channels import PermanentDeliveryError, validate_options

from .conftest import ChannelFactory
from .factories import envelope


def test_http_json_defaults() -> None:
    loaded, problems = validate_options("http-json", {"url": "https://steueramt.example.test/in"})

    assert problems == []
    assert loaded == {
        "url": "https://steueramt.example.test/in",
        "health_url": None,
        "signing_secret_env": None,
        "connect_timeout_s": 5.0,
        "read_timeout_s": 30.0,
        "inline_limit_bytes": 1024 * 1024,
        "case_number_field": "case_number",
    }


def test_xml_and_email_and_inbox_accept_good_options() -> None:
    assert validate_options("xml", {"url": "http://127.0.0.1:8090/cases/x"})[1] == []
    email_options = {
        "host": "mail.example.test",
        "sender": "antraege@bridge.example.test",
        "to": "steueramt@usingen.example.test",
        "username_env": "SMTP_USER",
        "password_env": "SMTP_PASSWORD",
        "starttls": True,
        "port": 587,
    }
    loaded, problems = validate_options("email", email_options)
    assert problems == []
    assert loaded["timeout_s"] == 30.0
    assert loaded["tls"] == "starttls"
    assert validate_options("email", {**email_options, "starttls": None})[0]["tls"] == "starttls"
    assert validate_options("inbox", {"token_env": "INBOX_TOKEN"})[1] == []


@pytest.mark.parametrize(
    ("channel", "options", "expected"),
    [
        ("http-json", {}, "url: Missing data for required field."),
        ("http-json", {"url": "ftp://example.test/x"}, "url: Not a valid URL."),
        ("http-json", {"url": "not a url"}, "url: Not a valid URL."),
        (
            "http-json",
            {"url": "http://x.test", "signing_secret_env": "whsec_abc"},
            "signing_secret_env: must name an environment variable (A-Z, 0-9, _)",
        ),
        (
            "http-json",
            {"url": "http://x.test", "read_timeout_s": -1},
            "read_timeout_s: Must be greater than or equal to 0.01 and less than or equal to 600.",
        ),
        ("http-json", {"url": "http://x.test", "secret": "x"}, "secret: Unknown field."),
        (
            "xml",
            {"url": "http://x.test", "case_number_field": "x"},
            "case_number_field: Unknown field.",
        ),
        (
            "email",
            {"host": "m", "sender": "nobody", "to": "a@b.test"},
            "sender: Not a valid email address.",
        ),
        (
            "email",
            {"sender": "a@b.test", "to": "c@d.test"},
            "host: Missing data for required field.",
        ),
        (
            "email",
            {"host": "m", "sender": "a@b.test", "to": "c@d.test", "port": 0},
            "port: Must be greater than or equal to 1 and less than or equal to 65535.",
        ),
        ("inbox", {}, "token_env: Missing data for required field."),
        (
            "carrier-pigeon",
            {},
            "channel: unknown channel 'carrier-pigeon' (known: email, fit-connect, http-json, inbox, xml)",
        ),
    ],
)
def test_bad_options_are_reported(channel: str, options: dict[str, Any], expected: str) -> None:
    loaded, problems = validate_options(channel, options)

    assert loaded == {}
    assert expected in problems


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"username_env": "SMTP_USER"}, "password_env: username_env and password_env must be"),
        (
            {"username_env": "SMTP_USER", "password_env": "SMTP_PASSWORD", "tls": "insecure"},
            'username_env: needs tls = "starttls" or "implicit"',
        ),
        # A file that set the old flag to false asked for plain SMTP; that now takes its name.
        (
            {"starttls": False},
            'starttls: starttls = false no longer means plain SMTP: set tls = "insecure"',
        ),
        ({"starttls": True, "tls": "insecure"}, "starttls: contradicts tls = 'insecure'"),
        ({"tls": "clear"}, "tls: Must be one of: starttls, implicit, insecure."),
        ({"ca_file": "/nonexistent/ca.pem"}, "ca_file: no such file"),
    ],
)
def test_email_credentials_come_in_pairs_and_need_tls(extra: dict[str, str], expected: str) -> None:
    options = {"host": "m.test", "sender": "a@b.test", "to": "c@d.test", **extra}
    _, problems = validate_options("email", options)

    assert any(p.startswith(expected) for p in problems), problems


def test_every_problem_is_reported_at_once() -> None:
    _, problems = validate_options("email", {"port": "x", "starttls": "vielleicht"})

    keys = sorted(p.split(":", 1)[0] for p in problems)
    assert keys == ["host", "port", "sender", "starttls", "to"]


def test_a_channel_with_bad_options_fails_permanently_when_delivering(
    make_channel: ChannelFactory, http: requests.Session
) -> None:
    channel = make_channel("http-json", url="ftp://example.test/x")

    assert channel.option_problems == ["url: Not a valid URL."]
    with pytest.raises(PermanentDeliveryError, match="url: Not a valid URL"):
        channel.deliver(envelope(), http)


def test_a_missing_secret_fails_permanently_when_delivering(
    make_channel: ChannelFactory, http: requests.Session
) -> None:
    channel = make_channel(
        "http-json", url="http://127.0.0.1:9/x", signing_secret_env="NOT_CONFIGURED"
    )
    with pytest.raises(PermanentDeliveryError, match="NOT_CONFIGURED"):
        channel.deliver(envelope(), http)


@pytest.mark.parametrize("secret", ["plainsecret", "whsec_", "whsec_not*base64"])
def test_a_malformed_signing_secret_fails_permanently(
    secret: str, make_channel: ChannelFactory, http: requests.Session
) -> None:
    channel = make_channel(
        "http-json",
        with_secrets={"SIGNING": secret},
        url="http://127.0.0.1:9/x",
        signing_secret_env="SIGNING",
    )
    with pytest.raises(PermanentDeliveryError, match="Signaturschlüssel"):
        channel.deliver(envelope(), http)
