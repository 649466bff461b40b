"""A loopback office that keeps the exact request, and the docs' Python snippets run as printed."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import requests

from integrations.channels import Channel
from tests.conftest import ROOT

from .factories import envelope

Verify = Callable[[str, dict[str, str], bytes], bool]


class CaptureOffice(ThreadingHTTPServer):
    """Keeps the headers (lower-case names) and exact body of the last POST; answers 202."""

    daemon_threads = True

    def __init__(self) -> None:
        """Listen on a free loopback port."""
        super().__init__(("127.0.0.1", 0), _CaptureHandler)
        self.headers: dict[str, str] = {}
        self.body = b""

    @property
    def url(self) -> str:
        """Where to POST."""
        return f"http://127.0.0.1:{self.server_address[1]}/cases/office"


class _CaptureHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        office = cast(CaptureOffice, self.server)
        office.body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        office.headers = {k.lower(): v for k, v in self.headers.items()}
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


def captured_delivery(
    build: Callable[[str], Channel], http: requests.Session
) -> tuple[dict[str, str], bytes]:
    """Deliver an envelope through the channel `build(url)` makes; the headers and body sent."""
    office = CaptureOffice()
    thread = threading.Thread(target=office.serve_forever, daemon=True)
    thread.start()
    try:
        build(office.url).deliver(envelope(), http)
    finally:
        office.shutdown()
        office.server_close()
    return office.headers, office.body


def doc_function(page: str, block_start: str, name: str) -> Any:
    """Function `name` of the ```python block of docs/`page` that begins with `block_start`,
    executed exactly as printed."""
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    start = text.index("```python\n" + block_start)
    code = text[start + len("```python\n") : text.index("```\n", start + 10)]
    namespace: dict[str, Any] = {"__name__": f"docs.{Path(page).stem}"}
    exec(code, namespace)  # noqa: S102 - the page's own snippet, under test
    return namespace[name]
