"""The real-browser harness: the bridge on a real WSGI server, Debian's Chromium, axe-core.

Playwright drives `/usr/bin/chromium` (never a downloaded browser). A missing Chromium or
Playwright fails the test with the command that installs it: CI must not skip these tests.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

CHROMIUM = Path("/usr/bin/chromium")
# Impacts axe-core ranks; the page must have none of these.
FORBIDDEN_IMPACTS = ("serious", "critical")


def axe_source() -> str:
    """axe-core's browser script, as pinned by the axe-playwright-python package (ADR 11)."""
    # Only the bundled file is used, not the package's Python wrapper (which has no types).
    spec = importlib.util.find_spec("axe_playwright_python")
    if spec is None or spec.origin is None:
        pytest.fail("axe-playwright-python is missing: run scripts/setup (it is in the dev group)")
    path = Path(spec.origin).parent / "axe.min.js"
    return path.read_text(encoding="utf-8")


@contextmanager
def served(app: Flask, port: int = 0) -> Iterator[str]:
    """Serve `app` on a loopback port (a free one unless given) in a thread (a real HTTP
    server); yields its URL."""
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Debian Chromium driven by Playwright; fails (never skips) when missing."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install it with `apt-get install -y chromium` "
            "(.ci/run does); the admin page's browser tests must not be skipped"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is missing: run scripts/setup (it is in the dev group)")
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield browser
        finally:
            browser.close()


def serious_violations(page: Any, source: str) -> list[str]:
    """Run axe-core in `page`; one line per serious or critical violation (empty when clean)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=source)
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(n["target"]) for n in v["nodes"][:3])
        for v in result["violations"]
        if v.get("impact") in FORBIDDEN_IMPACTS
    ]
