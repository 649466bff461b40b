"""Answers of offices and of FIT-Connect are read in chunks up to a limit, from a real socket."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from integrations.channels.base import AnswerTooLarge, DeliveryError, read_bounded
from integrations.channels.fit_connect import MAX_ANSWER_BYTES, _read_json


class _Sized(BaseHTTPRequestHandler):
    """GET /<n> answers n bytes of a JSON string (n >= 2)."""

    def do_GET(self) -> None:
        size = int(self.path.strip("/"))
        body = b'"' + b"x" * (size - 2) + b'"'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A loopback server that answers as many bytes as the path asks for."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Sized)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _get(url: str) -> requests.Response:
    return requests.get(url, stream=True, timeout=5)


def test_an_answer_up_to_the_limit_is_read_whole_and_one_byte_more_is_refused(
    server: str,
) -> None:
    assert len(read_bounded(_get(f"{server}/100000"), 100_000)) == 100_000
    with pytest.raises(AnswerTooLarge):
        read_bounded(_get(f"{server}/100001"), 100_000)


def test_fit_connect_says_an_answer_is_too_large_or_not_an_object(server: str) -> None:
    with pytest.raises(DeliveryError, match="Antwort zu groß"):
        _read_json(_get(f"{server}/{MAX_ANSWER_BYTES + 1}"))
    with pytest.raises(DeliveryError, match="Antwort ist kein JSON-Objekt"):
        _read_json(_get(f"{server}/10"))
