"""The bridge's version (semantic versioning), one constant; pyproject.toml carries the same."""

from __future__ import annotations

#: MAJOR.MINOR.PATCH: a new MAJOR breaks an operator's set-up (settings, contract, a restore of
#: older backups), a new MINOR adds (migrations included), a PATCH only mends.
VERSION = "0.2.0"


def parse(version: str) -> tuple[int, int, int]:
    """`"1.2.3"` as (1, 2, 3); raises ValueError for anything but three dot-separated numbers."""
    parts = version.split(".")
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in parts):
        raise ValueError(f"{version!r} is not a version like 1.2.3")
    major, minor, patch = (int(p) for p in parts)
    return major, minor, patch


def newer_than_this(version: str) -> bool:
    """True when `version` is a later release than the running code."""
    return parse(version) > parse(VERSION)
