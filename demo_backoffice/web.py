"""The demo back office's HTTP side: case intake, listings, a German overview page, test hooks."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import threading
import time
from dataclasses import asdict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

from demo_backoffice.contract import RECORDER, check_json, record_xml
from demo_backoffice.documents import (
    DocumentError,
    SchemaMismatch,
    read_json,
    read_xml,
    verify_signature,
)
from demo_backoffice.ledger import Case, Fault, Ledger, make_fault, now_iso

OFFICE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
MAX_BODY = 64 * 1024 * 1024
FORMAT_DE = {"json": "JSON", "xml": "XML", "email": "E-Mail"}
LOCAL_TZ = ZoneInfo("Europe/Berlin")


class DemoHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server carrying the shared state its handlers need."""

    daemon_threads = True
    # Sockets of a restarted demo must bind at once (TIME_WAIT from the last run).
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        ledger: Ledger,
        signing_secret: str | None,
        hang_s: float,
        stopping: threading.Event,
        quiet: bool = True,
    ) -> None:
        """Bind to `address` (port 0: any free port)."""
        super().__init__(address, DemoHandler)
        self.ledger = ledger
        self.signing_secret = signing_secret
        self.hang_s = hang_s
        self.stopping = stopping
        self.quiet = quiet

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet about clients that went away (timeouts in tests do that on purpose)."""
        if not self.quiet:
            super().handle_error(request, client_address)


class DemoHandler(BaseHTTPRequestHandler):
    """One connection; HTTP/1.1 keep-alive, every answer with a Content-Length."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two sends; without this each answer waits ~40 ms for the
    # client's delayed ACK (bench/delivery measured 23 posts/s instead of ~800).
    disable_nagle_algorithm = True
    server_version = "DemoBackOffice/1"
    # Idle keep-alive connections are closed after this long, so threads do not pile up.
    timeout = 30

    @property
    def demo(self) -> DemoHTTPServer:
        """The server with the shared state."""
        return cast(DemoHTTPServer, self.server)

    def log_message(self, format: str, *args: Any) -> None:
        """Log requests only when not quiet (never bodies)."""
        if not self.demo.quiet:
            super().log_message(format, *args)

    # --- answers ----------------------------------------------------------------------------

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(value, ensure_ascii=False).encode("utf-8")
        self._send(status, body, "application/json", headers)

    def _problem(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        try:
            title = HTTPStatus(status).phrase
        except ValueError:
            title = "Fehler"
        body = json.dumps(
            {"type": "about:blank", "title": title, "status": status, "detail": detail},
            ensure_ascii=False,
        ).encode("utf-8")
        self._send(status, body, "application/problem+json", headers)

    def _read_body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self.close_connection = True
            self._problem(411, "Content-Length fehlt.")
            return None
        if int(length) > MAX_BODY:
            self.close_connection = True
            self._problem(413, "Der Inhalt ist zu groß.")
            return None
        return self.rfile.read(int(length))

    # --- routing ----------------------------------------------------------------------------

    def _peer(self) -> tuple[str, int]:
        host, port = self.client_address[:2]
        return str(host), int(port)

    def _parts(self) -> list[str]:
        path = urlsplit(self.path).path
        return [unquote(p) for p in path.split("/") if p]

    def do_GET(self) -> None:
        """Listings, the overview page and test hooks."""
        self.demo.ledger.log_request("GET", urlsplit(self.path).path, self._peer())
        parts = self._parts()
        ledger = self.demo.ledger
        if not parts:
            page = overview_page(ledger.cases()).encode("utf-8")
            self._send(200, page, "text/html; charset=utf-8")
        elif parts == ["healthz"]:
            self._json(200, {"status": "ok"})
        elif parts == ["cases"]:
            self._json(200, [c.summary() for c in ledger.cases()])
        elif len(parts) == 2 and parts[0] == "cases":
            self._json(200, [c.summary() for c in ledger.cases(parts[1])])
        elif len(parts) == 3 and parts[0] == "cases":
            case = ledger.find(parts[1], parts[2])
            if case is None:
                self._problem(404, "Diesen Fall gibt es nicht.")
            else:
                self._json(200, {**case.summary(), "document": case.document})
        elif len(parts) == 2 and parts[0] == "_received":
            self._json(200, ledger.received_ids(parts[1]))
        elif parts == ["_faults"]:
            self._json(200, ledger.faults())
        elif parts == ["_violations"]:
            # Of the whole process: the tests and the chaos run read what broke the contract.
            self._json(200, [asdict(v) for v in RECORDER.peek()])
        else:
            self._problem(404, "Unbekannte Adresse.")

    def do_HEAD(self) -> None:
        """Like GET without a body."""
        self.do_GET()

    def do_POST(self) -> None:
        """Case intake and the test hooks."""
        self.demo.ledger.log_request("POST", urlsplit(self.path).path, self._peer())
        body = self._read_body()
        if body is None:
            return
        parts = self._parts()
        if len(parts) == 2 and parts[0] == "cases" and OFFICE.match(parts[1]):
            self._intake(parts[1], body)
        elif parts == ["_faults"]:
            self._set_fault(body)
        elif parts == ["_reset"]:
            self.demo.ledger.reset()
            self._json(200, {"reset": True})
        else:
            self._problem(404, "Unbekannte Adresse.")

    def _set_fault(self, body: bytes) -> None:
        try:
            spec = json.loads(body or b"{}")
            if not isinstance(spec, dict):
                raise ValueError("the body must be a JSON object")
            office = spec.get("office")
            if office is not None and not (isinstance(office, str) and OFFICE.match(office)):
                raise ValueError("office must be an office id or null")
            unknown = set(spec) - {"office", "mode", "count", "retry_after", "status"}
            if unknown:
                raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}")
            fault = make_fault(
                str(spec.get("mode", "")),
                count=spec.get("count"),
                retry_after=spec.get("retry_after"),
                status=spec.get("status"),
            )
        except ValueError as exc:
            self._problem(400, str(exc))
            return
        self.demo.ledger.set_fault(office, fault)
        self._json(200, {"office": office, **fault.as_dict()})

    # --- intake -----------------------------------------------------------------------------

    def _intake(self, office: str, body: bytes) -> None:
        ledger = self.demo.ledger
        delivery_id = self.headers.get("webhook-id") or self.headers.get("Idempotency-Key") or ""
        ledger.arrived(office, delivery_id)
        fault = ledger.take_fault(office)
        if fault is not None and self._inject(office, fault):
            return
        signature_valid: bool | None = None
        if self.demo.signing_secret is not None:
            signature_valid = verify_signature(
                self.demo.signing_secret,
                {k.lower(): v for k, v in self.headers.items()},
                body,
                time.time(),
            )
            if not signature_valid:
                self._problem(401, "Die Signatur fehlt oder ist ungültig.")
                return
        if not delivery_id:
            self._problem(400, "webhook-id (oder Idempotency-Key) fehlt.")
            return
        content_type = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        try:
            if content_type in ("application/json", "text/json"):
                fmt, reading = "json", read_json(body)
                # Filed all the same: the suite fails on the record, with the place that broke.
                check_json(office, delivery_id, reading.document)
            elif content_type in ("application/xml", "text/xml"):
                fmt, reading = "xml", read_xml(body)
            else:
                self._problem(415, "Erwartet wird application/json oder application/xml.")
                return
        except SchemaMismatch as exc:
            record_xml(office, delivery_id, str(exc))
            self._problem(400, str(exc))
            return
        except DocumentError as exc:
            self._problem(400, str(exc))
            return
        case, new = ledger.file(
            Case(
                office=office,
                delivery_id=delivery_id,
                format=fmt,
                reference=reading.reference,
                service=reading.service,
                case_number="",
                received_at=now_iso(),
                signature_valid=signature_valid,
                attachments=reading.attachments,
                document=reading.document,
            )
        )
        answer = {"case_number": case.case_number, "duplicate": not new}
        location = {"Location": f"/cases/{office}/{case.delivery_id}"}
        self._json(201 if new else 200, answer, location)

    def _inject(self, office: str, fault: Fault) -> bool:
        """Apply a fault; True when the request has been dealt with by it."""
        if fault.mode == "refuse":
            # No answer at all: the client sees the connection close.
            self.close_connection = True
            return True
        if fault.mode == "hang":
            # Longer than any client timeout; a stopping server lets go at once.
            self.demo.stopping.wait(self.demo.hang_s)
            self.close_connection = True
            return True
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = fault.retry_after
        status = 429 if fault.mode == "429" else (fault.status or 500)
        if 300 <= status < 400:
            headers["Location"] = f"/_moved/{office}"
        self._problem(status, "Simulierter Fehler des Demo-Zustellpunkts.", headers)
        return True


def local_time(iso: str) -> str:
    """An RFC 3339 UTC time as clerks in Hesse read it, e.g. 02.03.2026, 10:30:05."""
    try:
        moment = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return moment.astimezone(LOCAL_TZ).strftime("%d.%m.%Y, %H:%M:%S")


def overview_page(cases: list[Case]) -> str:
    """The German overview: received cases per office (reference, service, time, format only)."""
    offices: dict[str, list[Case]] = {}
    for case in cases:
        offices.setdefault(case.office, []).append(case)
    sections = []
    for office, items in sorted(offices.items()):
        rows = "\n".join(
            "<tr>"
            f"<td>{html.escape(c.case_number)}</td>"
            f"<td>{html.escape(c.reference)}</td>"
            f"<td>{html.escape(c.service)}</td>"
            f"<td>{html.escape(local_time(c.received_at))}</td>"
            f"<td>{FORMAT_DE.get(c.format, html.escape(c.format))}</td>"
            f"<td>{c.duplicate_count}</td>"
            "</tr>"
            for c in items
        )
        sections.append(
            f"<h2>{html.escape(office)} ({len(items)})</h2>\n<table>\n"
            "<tr><th>Aktenzeichen</th><th>Referenz</th><th>Leistung</th><th>Eingang</th>"
            "<th>Format</th><th>Wiederholungen</th></tr>\n"
            f"{rows}\n</table>"
        )
    content = "\n".join(sections) or "<p>Noch keine Anträge eingegangen.</p>"
    return f"""<!doctype html>
<html lang="de">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="5">
<title>Demo-Zustellpunkt</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; margin-bottom: 2em; }}
th, td {{ border: 1px solid #999; padding: .3em .6em; text-align: left; }}
</style>
</head>
<body>
<h1>Demo-Zustellpunkt: eingegangene Anträge</h1>
<p>Nur zur Vorführung. Die Seite zeigt je Zustellpunkt Referenz, Leistung, Eingang und Format;
die Angaben der Antragstellenden stehen hier nicht.</p>
{content}
</body>
</html>
"""
