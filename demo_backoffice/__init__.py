"""A demo back office (Zustellpunkt) for the README's demo and the tests: HTTP and SMTP intake."""

from __future__ import annotations

from demo_backoffice.server import DemoBackOffice

__all__ = ["DemoBackOffice"]
