"""`DemoBackOffice`: the HTTP and SMTP sides started together, with a test-friendly API."""

from __future__ import annotations

import json
import threading
from types import TracebackType
from typing import Any

from demo_backoffice.ledger import Ledger, make_fault
from demo_backoffice.mail import DemoSMTPController, MailHandler
from demo_backoffice.web import OFFICE, DemoHTTPServer


class DemoBackOffice:
    """A demo back office: `POST /cases/<office>` (JSON or XML) and SMTP mailboxes per office.

    Port 0 picks a free port; `url` and `smtp_port` tell which after `start()`.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        smtp_port: int = 0,
        signing_secret: str | None = None,
        hang_s: float = 60.0,
        quiet: bool = True,
    ) -> None:
        """Configure; nothing listens before `start()`."""
        self.host = host
        self._port = port
        self._smtp_port = smtp_port
        self.signing_secret = signing_secret
        self.hang_s = hang_s
        self.quiet = quiet
        self.ledger = Ledger()
        self._stopping = threading.Event()
        self._http: DemoHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self._smtp: DemoSMTPController | None = None

    def start(self) -> DemoBackOffice:
        """Listen on HTTP and SMTP (threads in the background); returns self."""
        if self._http is not None:
            raise RuntimeError("already started")
        self._stopping.clear()
        self._http = DemoHTTPServer(
            (self.host, self._port),
            self.ledger,
            self.signing_secret,
            self.hang_s,
            self._stopping,
            self.quiet,
        )
        self._http_thread = threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="demo-backoffice-http",
            daemon=True,
        )
        self._http_thread.start()
        handler = MailHandler(self.ledger, self.hang_s, self._stopping)
        self._smtp = DemoSMTPController(
            handler, hostname=self.host, port=self._smtp_port, server_hostname="backoffice.test"
        )
        try:
            self._smtp.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop both servers; requests held by a "hang" fault are let go."""
        self._stopping.set()
        if self._smtp is not None:
            self._smtp.stop(no_assert=True)
            self._smtp = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._http_thread is not None:
            self._http_thread.join(5)
            self._http_thread = None

    def __enter__(self) -> DemoBackOffice:
        """Start when entering a `with` block."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop when leaving the `with` block."""
        self.stop()

    @property
    def port(self) -> int:
        """The HTTP port (after `start()`)."""
        if self._http is None:
            raise RuntimeError("not started")
        return int(self._http.server_address[1])

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:8090."""
        return f"http://{self.host}:{self.port}"

    @property
    def smtp_port(self) -> int:
        """The SMTP port (after `start()`)."""
        if self._smtp is None:
            raise RuntimeError("not started")
        return int(self._smtp.port)

    def case_url(self, office: str) -> str:
        """Where the office takes cases: `<url>/cases/<office>`."""
        return f"{self.url}/cases/{office}"

    def cases(self, office: str | None = None) -> list[dict[str, Any]]:
        """Filed cases (summaries without documents), of one office or all, in arrival order."""
        return [c.summary() for c in self.ledger.cases(office)]

    def document(self, office: str, delivery_id: str) -> Any:
        """The document a case arrived with: JSON object, XML text, or the mail's parts."""
        case = self.ledger.find(office, delivery_id)
        return None if case is None else case.document

    def received_ids(self, office: str) -> list[str]:
        """Every delivery id that arrived for the office, in order, duplicates included."""
        return self.ledger.received_ids(office)

    def requests(self) -> list[tuple[str, str]]:
        """Every HTTP request as (method, path), in arrival order."""
        return self.ledger.requests()

    def connection_count(self) -> int:
        """How many distinct HTTP connections requests arrived on (keep-alive reuses one)."""
        return self.ledger.connection_count()

    def set_fault(
        self,
        office: str | None,
        mode: str,
        count: int | None = None,
        retry_after: float | str | None = None,
        status: int | None = None,
    ) -> None:
        """Inject a fault into the next `count` requests of an office (None: all offices).

        Modes: "ok" (clear), "refuse" (close without answering), "status" (answer `status`),
        "hang" (answer nothing for `hang_s`), "429" (Too Many Requests with Retry-After).
        Without `count` the fault stays until reset with mode "ok"; `set_fault(None, "ok")`
        clears every fault. SMTP deliveries see the same faults as SMTP replies.
        """
        if office is not None and not (isinstance(office, str) and OFFICE.match(office)):
            raise ValueError("office must be an office id or null")
        self.ledger.set_fault(office, make_fault(mode, count, retry_after, status))

    def reset(self) -> None:
        """Forget every case, arrival and fault."""
        self.ledger.reset()

    def describe(self) -> str:
        """One line for the console: where the demo listens."""
        return json.dumps({"http": self.url, "smtp": f"{self.host}:{self.smtp_port}"})
