"""A simulated E-Payment provider (XBezahldienste REST and legacy pmPayment) for tests and the demo.

A real HTTP server on loopback speaking the providers' protocols, with a German pay page and
test controls under `/_control/`; `serve_in_thread()` starts one for a test.
"""

from __future__ import annotations

from demo_payments.config import SimulatorConfig
from demo_payments.server import DemoPayments, create_app, serve_in_thread

__all__ = ["DemoPayments", "SimulatorConfig", "create_app", "serve_in_thread"]
