"""The administration's settings: read from the environment, refused when out of range."""

from __future__ import annotations

import pytest

from domain.settings import Settings, SettingsError
from tests.conftest import base_environ


def test_admin_settings_are_read_and_checked() -> None:
    """Recipients are split and trimmed; a rate of 0 or an hour of 24 is refused, named."""
    env = base_environ("sqlite:///unused.db", "redis://127.0.0.1:6379/0")
    settings = Settings.from_env(
        {
            **env,
            "BRIDGE_DIGEST_RECIPIENTS": " a@x.test , b@y.test ,",
            "BRIDGE_REPLAY_RATE_PER_OFFICE": "2.5",
        }
    )
    assert settings.digest_recipients == ("a@x.test", "b@y.test")
    assert settings.replay_rate_per_office == 2.5
    assert Settings.from_env(env).replay_rate_per_office == 5.0
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            {**env, "BRIDGE_REPLAY_RATE_PER_OFFICE": "0", "BRIDGE_DIGEST_HOUR": "24",
             "BRIDGE_SMTP_PORT": "0"}
        )  # fmt: skip
    text = str(caught.value)
    for name in ("BRIDGE_REPLAY_RATE_PER_OFFICE", "BRIDGE_DIGEST_HOUR", "BRIDGE_SMTP_PORT"):
        assert name in text
