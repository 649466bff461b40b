"""A capture back office: records every delivery id it receives and can be told to misbehave.

    python -m bench.chaos.office --port 8091 --control-port 8092

`POST /cases/<office>` answers `201 {"case_number": ...}` and records the delivery id
(`webhook-id`, else `Idempotency-Key`), the first reference found in the body, the office, the
answer given and the arrival time. The control port (a second listener, so that it stays up
while the case port refuses connections) takes:

- `POST /mode/<mode>`: `ok`, `500`, `429` (with `Retry-After: 1`), `302` (a redirect),
  `timeout` (reads the request, answers nothing for `--hang-s` and closes) or `refuse`
  (the case listener is closed and every open connection dropped; `ok` opens it again);
- `GET /records`: every request as `[delivery_id, reference, office, answer, time]`.

One asyncio process, HTTP/1.1 keep-alive, no framework (as bench/fast_office.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import time
from dataclasses import dataclass, field

REFERENCE = re.compile(rb"\b[A-Z]{2,4}-\d{4}-\d{6}\b")
MODES = ("ok", "500", "429", "302", "timeout", "refuse")
MAX_BODY = 64 * 1024 * 1024


@dataclass
class Office:
    """The office's state: its mode, what arrived and the connections it holds open."""

    port: int
    hang_s: float
    mode: str = "ok"
    records: list[tuple[str, str, str, str, float]] = field(default_factory=list)
    server: asyncio.Server | None = None
    open: set[asyncio.StreamWriter] = field(default_factory=set)
    cases: int = 0

    async def listen(self) -> None:
        """Open the case listener (again)."""
        if self.server is None:
            self.server = await asyncio.start_server(
                self.serve_cases, "127.0.0.1", self.port, reuse_address=True
            )

    async def set_mode(self, mode: str) -> None:
        """Switch the answer; `refuse` closes the case port and drops every connection."""
        self.mode = mode
        if mode == "refuse":
            if self.server is not None:
                self.server.close()
                self.server = None
            for writer in list(self.open):
                writer.transport.abort()
        else:
            await self.listen()

    async def serve_cases(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer the requests on one connection according to the mode at arrival."""
        self.open.add(writer)
        try:
            while True:
                request = await read_request(reader)
                if request is None:
                    return
                path, headers, body = request
                mode = self.mode
                delivery_id = headers.get("webhook-id") or headers.get("idempotency-key", "")
                found = REFERENCE.search(body)
                reference = found.group().decode() if found else ""
                office = path.rsplit("/", 1)[-1]
                self.records.append((delivery_id, reference, office, mode, time.time()))
                if mode == "timeout":
                    await asyncio.sleep(self.hang_s)
                    return
                if mode == "refuse":
                    return
                writer.write(self.answer(mode))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError, ValueError):
            return  # a dropped connection (also the ones `refuse` aborts) ends the conversation
        finally:
            self.open.discard(writer)
            writer.close()

    def answer(self, mode: str) -> bytes:
        """The raw HTTP answer for a case in `mode`."""
        if mode == "500":
            return response(500, b'{"error": "chaos"}')
        if mode == "429":
            return response(429, b'{"error": "slow down"}', "Retry-After: 1\r\n")
        if mode == "302":
            return response(302, b"", "Location: http://127.0.0.1:9/moved\r\n")
        self.cases += 1
        return response(201, json.dumps({"case_number": f"CH-{self.cases}"}).encode())

    async def serve_control(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """The harness's switch and the records."""
        try:
            while True:
                request = await read_request(reader)
                if request is None:
                    return
                path = request[0]
                if path == "/records":
                    writer.write(response(200, json.dumps(self.records).encode()))
                elif path.startswith("/mode/") and path[6:] in MODES:
                    await self.set_mode(path[6:])
                    writer.write(response(200, json.dumps({"mode": self.mode}).encode()))
                else:
                    writer.write(response(404, b"{}"))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            writer.close()


def response(status: int, body: bytes, extra: str = "") -> bytes:
    """An HTTP/1.1 keep-alive answer."""
    head = (
        f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


async def read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes] | None:
    """One request (path, lower-cased headers, body), or None when the client closed."""
    head = await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b""
    if not head:
        return None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) < 2:
        raise ValueError("bad request line")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    if length > MAX_BODY:
        raise ValueError("body too large")
    body = await reader.readexactly(length) if length else b""
    return parts[1], headers, body


async def main(port: int, control_port: int, hang_s: float) -> None:
    """Serve until SIGTERM."""
    office = Office(port, hang_s)
    await office.listen()
    control = await asyncio.start_server(
        office.serve_control, "127.0.0.1", control_port, reuse_address=True
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    async with control:
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--hang-s", type=float, default=5.0)
    args = parser.parse_args()
    asyncio.run(main(args.port, args.control_port, args.hang_s))
