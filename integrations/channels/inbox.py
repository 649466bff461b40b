"""The inbox channel: nothing is pushed; the office fetches its cases through the pull API."""

from __future__ import annotations

import hmac
from typing import Any

import requests
from marshmallow import fields, validate

from integrations.channels.base import (
    Channel,
    ChannelOptions,
    Envelope,
    EnvName,
    PermanentDeliveryError,
    Receipt,
    channels,
    envelope_json,
)


class InboxOptions(ChannelOptions):
    """Options of the inbox channel."""

    token_env = EnvName(required=True)
    #: Attachments above this size are listed with hash + fetch link in the pulled document.
    inline_limit_bytes = fields.Integer(
        load_default=1024 * 1024, validate=validate.Range(min=0, max=1024**3)
    )


@channels.register("inbox")
class InboxChannel(Channel):
    """A pull inbox (e.g. for an RPA robot): the office polls the bridge with its bearer token."""

    options_schema = InboxOptions
    pull = True

    def deliver(self, envelope: Envelope, http: requests.Session) -> Receipt:
        """Never called for a pull channel; refuses, so a misrouted job cannot pretend success."""
        raise PermanentDeliveryError(
            "Dieser Zustellpunkt holt Anträge selbst ab (Postfach); es wird nichts gesendet."
        )

    def document(self, envelope: Envelope) -> dict[str, Any]:
        """The JSON envelope the pull API hands out: the same document http-json would POST."""
        self.check_options()
        return envelope_json(envelope, self.options["inline_limit_bytes"])

    def authorize(self, presented: str | None) -> bool:
        """Whether a presented bearer token is this office's token (compared in constant time)."""
        if not presented or self.option_problems:
            return False
        expected = self._secrets.get(str(self.options["token_env"]), "")
        if not expected:
            return False
        return hmac.compare_digest(presented.encode(), expected.encode())
