"""Delivery channels as plugins: importing this package registers the built-in channels.

The plugin modules are imported here on purpose (explicit plugin loading): which office uses
which channel is configuration, which channels exist is code.
"""

from __future__ import annotations

from integrations.channels import email, fit_connect, http_json, inbox, xml
from integrations.channels.base import (
    Channel,
    DeliveryError,
    Envelope,
    EnvelopeAttachment,
    PermanentDeliveryError,
    Receipt,
    channels,
    envelope_json,
    validate_options,
)
from integrations.registry import Registry

__all__ = [
    "Channel",
    "DeliveryError",
    "Envelope",
    "EnvelopeAttachment",
    "PermanentDeliveryError",
    "Receipt",
    "Registry",
    "channels",
    "email",
    "envelope_json",
    "fit_connect",
    "http_json",
    "inbox",
    "validate_options",
    "xml",
]
