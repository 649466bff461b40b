"""A local FIT-Connect stand-in: token endpoint, Submission API v2, Routing API, destinations."""

from __future__ import annotations

from demo_fitconnect.server import FitConnectStandIn

__all__ = ["FitConnectStandIn"]
