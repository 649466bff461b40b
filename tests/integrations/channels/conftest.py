"""Fixtures: a real demo back office on free loopback ports, an HTTP session, channel builders."""

from __future__ import annotations

import base64
import os
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from demo_backoffice import DemoBackOffice
from integrations.channels import Channel, channels

OFFICE = "usingen-steueramt"
SECRET_ENV = "TEST_OFFICE_SIGNING"
SIGNING_SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()

ChannelFactory = Callable[..., Channel]


@pytest.fixture
def backoffice() -> Iterator[DemoBackOffice]:
    """A running demo back office that verifies signatures with SIGNING_SECRET."""
    demo = DemoBackOffice(signing_secret=SIGNING_SECRET, hang_s=30.0)
    demo.start()
    yield demo
    demo.stop()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """The worker's HTTP session (one per test, so connections are reused within it)."""
    with requests.Session() as session:
        yield session


@pytest.fixture
def secrets() -> dict[str, str]:
    """The secrets a channel may name (as the worker's settings would hold them)."""
    return {SECRET_ENV: SIGNING_SECRET, "TEST_INBOX_TOKEN": "inbox-token-0123456789abcdef"}


@pytest.fixture
def make_channel(secrets: dict[str, str]) -> ChannelFactory:
    """Build a registered channel for OFFICE from options (as the worker builds an office's)."""

    def build(name: str, with_secrets: dict[str, str] | None = None, **options: Any) -> Channel:
        return channels[name](OFFICE, options, secrets if with_secrets is None else with_secrets)

    return build


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
