"""The http-json channel: the JSON envelope, POSTed with a Standard Webhooks signature."""

from __future__ import annotations

from marshmallow import fields, validate

from integrations.channels.base import Envelope, channels, envelope_json
from integrations.channels.webhook import WebhookChannel, WebhookOptions, render_json


class HttpJsonOptions(WebhookOptions):
    """Options of the http-json channel."""

    case_number_field = fields.String(
        load_default="case_number", validate=validate.Length(min=1, max=64)
    )


@channels.register("http-json")
class HttpJsonChannel(WebhookChannel):
    """POST `envelope_json` as `application/json` to the office's URL."""

    options_schema = HttpJsonOptions
    content_type = "application/json"

    def render(self, envelope: Envelope) -> bytes:
        """The JSON envelope; attachments above `inline_limit_bytes` go as hash + fetch link."""
        return render_json(envelope_json(envelope, self.options["inline_limit_bytes"]))

    def case_number_field(self) -> str:
        """The configured key of the case number in the office's JSON answer."""
        return str(self.options["case_number_field"])
