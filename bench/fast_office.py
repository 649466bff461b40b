"""A minimal back office for benchmarks: answers every case at once and notes when it arrived.

    python -m bench.fast_office --port 8091 [--signing-secret whsec_...]

One asyncio process, HTTP/1.1 keep-alive, no framework: `POST /cases/<office>` answers
`201 {"case_number": "FO-<n>"}` as soon as the body is in, and records the delivery id
(`webhook-id`, else `Idempotency-Key`), the envelope's `reference` and the arrival time
(`time.time()`, the same clock as every other process on the machine). It does not parse or
keep the document; with `--signing-secret` it checks the Standard Webhooks signature and
counts bad ones (it still answers 201, so a benchmark never turns into a retry storm).

Control endpoints for the benchmark:

- `GET /_stats`: counts (requests, unique ids, duplicates, bad signatures, per office) and the
  first and last arrival time;
- `GET /_arrivals`: every arrival as `[delivery_id, reference, office, time]`, in order;
- `POST /_reset`: forget everything.

It runs in a process of its own so that it does not share a GIL with what is measured; the
DemoBackOffice (threads, JSON parsing, a ledger of every document) is the realistic office,
this one is the fastest thing that still speaks HTTP/1.1 properly.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import re
import signal
import time
from dataclasses import dataclass, field
from typing import Any

REFERENCE = re.compile(rb'"reference":"([^"]{1,64})"')
MAX_HEADER = 64 * 1024
MAX_BODY = 64 * 1024 * 1024


@dataclass
class Ledger:
    """What arrived: one row per request, and which ids were seen."""

    arrivals: list[tuple[str, str, str, float]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    duplicates: int = 0
    bad_signatures: int = 0
    by_office: dict[str, int] = field(default_factory=dict)
    connections: int = 0

    def note(self, delivery_id: str, reference: str, office: str, at: float) -> bool:
        """Record an arrival; True when the id is new."""
        self.arrivals.append((delivery_id, reference, office, at))
        self.by_office[office] = self.by_office.get(office, 0) + 1
        if delivery_id in self.seen:
            self.duplicates += 1
            return False
        self.seen.add(delivery_id)
        return True

    def stats(self) -> dict[str, Any]:
        """The counts the benchmark reads."""
        return {
            "requests": len(self.arrivals),
            "unique": len(self.seen),
            "duplicates": self.duplicates,
            "bad_signatures": self.bad_signatures,
            "by_office": dict(self.by_office),
            "connections": self.connections,
            "first": self.arrivals[0][3] if self.arrivals else None,
            "last": self.arrivals[-1][3] if self.arrivals else None,
        }

    def reset(self) -> None:
        """Forget everything."""
        self.arrivals.clear()
        self.seen.clear()
        self.duplicates = 0
        self.bad_signatures = 0
        self.by_office.clear()
        self.connections = 0


def signature_ok(key: bytes, headers: dict[bytes, bytes], body: bytes) -> bool:
    """Whether the `webhook-signature` header holds a v1 HMAC-SHA256 of id.timestamp.body."""
    msg_id = headers.get(b"webhook-id", b"")
    timestamp = headers.get(b"webhook-timestamp", b"")
    given = headers.get(b"webhook-signature", b"")
    if not (msg_id and timestamp and given):
        return False
    digest = hmac.new(key, msg_id + b"." + timestamp + b"." + body, hashlib.sha256).digest()
    expected = b"v1," + base64.b64encode(digest)
    return any(hmac.compare_digest(expected, s) for s in given.split(b" "))


class OfficeProtocol(asyncio.Protocol):
    """One keep-alive connection: parse requests from the buffer, answer each at once."""

    def __init__(self, ledger: Ledger, key: bytes | None) -> None:
        """Share the ledger (one event loop, no locks needed)."""
        self.ledger = ledger
        self.key = key
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Count the connection (keep-alive should make it one per worker)."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.ledger.connections += 1

    def data_received(self, data: bytes) -> None:
        """Answer every complete request in the buffer."""
        self.buffer += data
        while self.transport is not None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEADER:
                    self._close(431, b"header too large")
                return
            head = bytes(self.buffer[:end]).split(b"\r\n")
            headers: dict[bytes, bytes] = {}
            for line in head[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            length_text = headers.get(b"content-length", b"0")
            if not length_text.isdigit() or int(length_text) > MAX_BODY:
                self._close(400, b"bad content-length")
                return
            length = int(length_text)
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            parts = head[0].split(b" ")
            if len(parts) != 3:
                self._close(400, b"bad request line")
                return
            keep_alive = headers.get(b"connection", b"").lower() != b"close"
            status, answer = self.handle(parts[0], parts[1], headers, body)
            self._answer(status, answer, keep_alive)
            if not keep_alive:
                return

    def handle(
        self, method: bytes, path: bytes, headers: dict[bytes, bytes], body: bytes
    ) -> tuple[int, bytes]:
        """The answer to one request: (status, JSON body)."""
        ledger = self.ledger
        if method == b"POST" and path.startswith(b"/cases/"):
            at = time.time()
            delivery_id = (
                headers.get(b"webhook-id") or headers.get(b"idempotency-key") or b""
            ).decode("latin-1")
            found = REFERENCE.search(body)
            reference = found.group(1).decode() if found else ""
            office = path.removeprefix(b"/cases/").decode("latin-1")
            if self.key is not None and not signature_ok(self.key, headers, body):
                ledger.bad_signatures += 1
            new = ledger.note(delivery_id, reference, office, at)
            number = len(ledger.seen)
            return 201 if new else 200, b'{"case_number":"FO-%d"}' % number
        if method == b"GET" and path == b"/_stats":
            return 200, json.dumps(ledger.stats()).encode()
        if method == b"GET" and path == b"/_arrivals":
            return 200, json.dumps(ledger.arrivals).encode()
        if method == b"POST" and path == b"/_reset":
            ledger.reset()
            return 200, b'{"reset":true}'
        if method == b"GET" and path == b"/healthz":
            return 200, b'{"status":"ok"}'
        return 404, b'{"title":"Not Found"}'

    def _answer(self, status: int, body: bytes, keep_alive: bool) -> None:
        assert self.transport is not None
        phrase = {200: b"OK", 201: b"Created", 404: b"Not Found"}.get(status, b"Error")
        self.transport.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s"
            % (
                status,
                phrase,
                len(body),
                b"" if keep_alive else b"Connection: close\r\n",
                body,
            )
        )
        if not keep_alive:
            self.transport.close()
            self.transport = None

    def _close(self, status: int, text: bytes) -> None:
        self._answer(status, b'{"title":"%s"}' % text, keep_alive=False)

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the transport."""
        self.transport = None


async def serve(host: str, port: int, key: bytes | None) -> None:
    """Serve until SIGTERM or SIGINT."""
    ledger = Ledger()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: OfficeProtocol(ledger, key), host, port, reuse_address=True, backlog=512
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"fast office listening on http://{host}:{port}", flush=True)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(prog="python -m bench.fast_office", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--signing-secret", default=None, help="whsec_...: count bad signatures")
    args = parser.parse_args(argv)
    key = (
        base64.b64decode(args.signing_secret.removeprefix("whsec_"))
        if args.signing_secret
        else None
    )
    asyncio.run(serve(args.host, args.port, key))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
