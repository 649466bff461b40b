"""The plugin registry, and the built-in channels registered in it."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from integrations.channels import Channel, Envelope, Receipt, Registry, channels
from integrations.channels.base import ChannelOptions


def test_register_and_look_up() -> None:
    registry = Registry[str]()
    returned = registry.register("a-1")("first")
    registry.register("plain")("value")

    assert returned == "first"  # the decorator hands its argument back
    assert registry["plain"] == "value"
    assert registry.get("plain") == "value"
    assert list(registry) == ["a-1", "plain"]
    assert registry.get("missing") is None


def test_unknown_id_names_the_known_ones() -> None:
    registry = Registry[int]()
    registry.register("one")(1)
    with pytest.raises(KeyError, match="known: one"):
        registry["two"]


def test_duplicate_ids_are_rejected() -> None:
    registry = Registry[int]()
    registry.register("one")(1)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("one")


def test_duplicate_is_caught_when_two_decorators_race() -> None:
    registry = Registry[int]()
    first, second = registry.register("one"), registry.register("one")
    first(1)
    with pytest.raises(ValueError, match="already registered"):
        second(2)


@pytest.mark.parametrize("bad", ["", "Upper", "under_score", "a" * 33, "spa ce", "ü", 7])
def test_malformed_ids_are_rejected(bad: Any) -> None:
    with pytest.raises(ValueError, match="invalid plugin id"):
        Registry[int]().register(bad)


def test_a_fresh_registry_does_not_touch_the_global_one() -> None:
    registry = Registry[int]()
    registry.register("http-json")(1)  # the same id as a built-in channel: no clash
    assert channels["http-json"] is not None
    assert registry["http-json"] == 1


def test_builtin_channels_are_registered_with_their_names() -> None:
    assert set(channels) == {"email", "fit-connect", "http-json", "inbox", "xml"}
    for channel_id in channels:
        plugin = channels[channel_id]
        assert plugin.name == channel_id
        assert issubclass(plugin, Channel)
    assert channels["inbox"].pull is True
    assert not channels["http-json"].pull


def test_channel_registry_refuses_what_is_not_a_channel() -> None:
    with pytest.raises(TypeError, match="Channel subclass"):
        channels.register("not-a-channel")(object)  # type: ignore[arg-type]
    assert channels.get("not-a-channel") is None


def test_channel_registry_refuses_a_mismatched_name() -> None:
    class Options(ChannelOptions):
        pass

    class Named(Channel):
        name = "other"
        options_schema = Options

        def deliver(self, envelope: Envelope, http: requests.Session) -> Receipt:
            return Receipt()

    with pytest.raises(ValueError, match="registers as"):
        channels.register("named-test")(Named)
    assert channels.get("named-test") is None
