"""The inbox (pull) channel: never pushed, hands out the JSON envelope, checks the token."""

from __future__ import annotations

import pytest
import requests

from integrations.channels import PermanentDeliveryError, envelope_json
from integrations.channels.inbox import InboxChannel

from .conftest import ChannelFactory
from .factories import attachment, envelope


def test_inbox_is_a_pull_channel_that_refuses_to_push(
    make_channel: ChannelFactory, http: requests.Session
) -> None:
    channel = make_channel("inbox", token_env="TEST_INBOX_TOKEN")

    assert channel.pull is True
    with pytest.raises(PermanentDeliveryError):
        channel.deliver(envelope(), http)


def test_inbox_document_is_the_json_envelope(make_channel: ChannelFactory) -> None:
    channel = make_channel("inbox", token_env="TEST_INBOX_TOKEN", inline_limit_bytes=10)
    assert isinstance(channel, InboxChannel)
    env = envelope(attachments=[attachment(b"F" * 50)])

    assert channel.document(env) == envelope_json(env, 10)
    assert channel.document(env)["attachments"][0]["content_base64"] is None


def test_inbox_token_is_checked(make_channel: ChannelFactory) -> None:
    channel = make_channel("inbox", token_env="TEST_INBOX_TOKEN")
    assert isinstance(channel, InboxChannel)

    assert channel.authorize("inbox-token-0123456789abcdef") is True
    assert channel.authorize("inbox-token-0123456789abcdeX") is False
    assert channel.authorize("") is False
    assert channel.authorize(None) is False


def test_inbox_without_its_secret_authorizes_nobody(make_channel: ChannelFactory) -> None:
    channel = make_channel("inbox", with_secrets={}, token_env="TEST_INBOX_TOKEN")
    assert isinstance(channel, InboxChannel)

    assert channel.authorize("") is False
    assert channel.authorize("anything") is False
