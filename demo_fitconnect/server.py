"""`FitConnectStandIn`: the stand-in as one real HTTP server on loopback, with a test API."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from demo_fitconnect.api import create_app
from demo_fitconnect.crypto import CertificateAuthority, KeyPair
from demo_fitconnect.state import PROBLEMS, Outage, State, problem

DEFAULT_SCOPE = "send:region:DE"


class QuietHandler(WSGIRequestHandler):
    """A request handler that does not log every request (tests would drown in lines)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log nothing."""


class FitConnectStandIn:
    """Token endpoint, Submission API v2, Routing API and simulated destinations on loopback.

    Port 0 picks a free port; the URLs are known after `start()`. Every fault is also
    reachable over HTTP under `/_control/` (see demo_fitconnect.api).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        clients: dict[str, str] | None = None,
        token_lifetime_s: float = 1800.0,
        scope: str = DEFAULT_SCOPE,
        submission_path: str = "/submission-api/v2",
        routing_path: str = "/routing-api/v1",
        destination_path: str = "/destination-api/v2",
        quiet: bool = True,
    ) -> None:
        """Configure and make the service's keys; nothing listens before `start()`."""
        self.host = host
        self._port = port
        self.quiet = quiet
        self.submission_path = submission_path.rstrip("/")
        self.routing_path = routing_path.rstrip("/")
        self.destination_path = destination_path.rstrip("/")
        self.ca = CertificateAuthority.create()
        self.service_key = KeyPair.create("sign", self.ca, "submission-api")
        self.routing_key = KeyPair.create("sign", self.ca, "routing-api")
        self.state = State(clients or {}, token_lifetime_s, scope, self.ca)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FitConnectStandIn:
        """Listen (a background thread serves); returns self."""
        if self._server is not None:
            raise RuntimeError("already started")
        app = create_app(
            self.state,
            self.service_key,
            self.routing_key,
            self.submission_path,
            self.routing_path,
            self.destination_path,
        )
        self._server = make_server(
            self.host,
            self._port,
            app,
            threaded=True,
            request_handler=QuietHandler if self.quiet else None,
        )
        app.config.update(
            ISSUER=self.submission_api_url,
            SUBMISSION_HOST=f"{self.host}:{self.port}",
            ROUTING_ISSUER=self.routing_api_url,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="demo-fitconnect",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> FitConnectStandIn:
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

    # --- where things are ----------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The port (after `start()`)."""
        if self._server is None:
            raise RuntimeError("not started")
        return int(self._server.server_port)

    @property
    def base_url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:8092."""
        return f"http://{self.host}:{self.port}"

    url = base_url

    @property
    def token_url(self) -> str:
        """The OAuth2 token endpoint (`token_url`)."""
        return f"{self.base_url}/token"

    @property
    def submission_api_url(self) -> str:
        """The Submission API's base (`submission_api_url`); also the `iss` of its SETs."""
        return f"{self.base_url}{self.submission_path}"

    @property
    def destination_api_url(self) -> str:
        """The same destination endpoints under a base of their own (v2 splits them off)."""
        return f"{self.base_url}{self.destination_path}"

    @property
    def routing_api_url(self) -> str:
        """The Routing API's base (`routing_api_url`)."""
        return f"{self.base_url}{self.routing_path}"

    @property
    def service_jwks_url(self) -> str:
        """Where the keys of the service's own SETs are published (also under the API's base)."""
        return f"{self.base_url}/.well-known/jwks.json"

    @property
    def routing_jwks_url(self) -> str:
        """Where the key of the routes' destinationSignature is published."""
        return f"{self.routing_api_url}/.well-known/jwks.json"

    @property
    def submission_host(self) -> str:
        """What a route's signature names as `submissionHost` (host:port)."""
        return f"{self.host}:{self.port}"

    @property
    def ca_pem(self) -> str:
        """The demo CA's certificate: the trust anchor of every key's x5c chain."""
        return self.ca.pem

    # --- set-up --------------------------------------------------------------------------------
    def add_client(self, client_id: str, secret: str) -> None:
        """Allow another OAuth2 client."""
        with self.state.lock:
            self.state.clients[client_id] = secret

    def add_destination(
        self,
        leika: str | list[str],
        ars: str | list[str],
        schema_uri: str | list[str],
        name: str = "Demo-Zustellpunkt",
        destination_id: str | None = None,
    ) -> str:
        """A new active destination for these LeiKa keys, regions (ARS) and data schemas; its id.

        As many schemas as LeiKa keys pair up (one schema a service); else each service takes
        every schema.
        """
        dest = self.state.add_destination(
            name,
            [leika] if isinstance(leika, str) else list(leika),
            [ars] if isinstance(ars, str) else list(ars),
            [schema_uri] if isinstance(schema_uri, str) else list(schema_uri),
            destination_id,
        )
        return dest.destination_id

    def set_destination_status(self, destination_id: str, status: str) -> None:
        """E.g. "inactive": new submissions to it are refused with destination-state-invalid."""
        with self.state.lock:
            self.state.destinations[destination_id].status = status

    def encryption_kid(self, destination_id: str) -> str:
        """The destination's current encryption key id."""
        with self.state.lock:
            return self.state.destinations[destination_id].encryption.kid

    def signing_kid(self, destination_id: str) -> str:
        """The id of the key the destination signs its SETs with."""
        with self.state.lock:
            return self.state.destinations[destination_id].signing.kid

    # --- what happened -------------------------------------------------------------------------
    def received(self, destination_id: str) -> list[dict[str, Any]]:
        """What the destination decrypted and decided, in arrival order.

        Each: submission_id, case_id, metadata (dict), data (bytes), attachments
        ({id: bytes}), hashes_ok, decision ("accept"/"reject"), problems, kid (the
        encryption key the metadata was sealed for), at (epoch seconds of the decision).
        """
        with self.state.lock:
            return [r.summary() for r in self.state.received if r.destination_id == destination_id]

    def events(self, case_id: str) -> list[str]:
        """Every SET of the case's log, lag or not."""
        with self.state.lock:
            return [e.token for e in self.state.cases.get(case_id, [])]

    def submission_status(self, submission_id: str) -> str:
        """incomplete, submitted, accepted or rejected."""
        with self.state.lock:
            return self.state.submissions[submission_id].status

    def submissions(self, destination_id: str | None = None) -> list[dict[str, Any]]:
        """Every submission created (of one destination or all): ids and status."""
        with self.state.lock:
            return [
                {
                    "submission_id": s.submission_id,
                    "case_id": s.case_id,
                    "destination_id": s.destination_id,
                    "status": s.status,
                    "announced": list(s.announced),
                    "uploaded": sorted(s.attachments),
                }
                for s in self.state.submissions.values()
                if destination_id is None or s.destination_id == destination_id
            ]

    def requests(self) -> list[tuple[str, str]]:
        """Every Submission API request as (method, path), in arrival order."""
        with self.state.lock:
            return list(self.state.requests)

    # --- faults --------------------------------------------------------------------------------
    def token_down(self, count: int | None = None, status: int = 503) -> None:
        """The token endpoint answers `status` (the next `count` requests; None: until lifted)."""
        self.state.set_outage("token", Outage(True, count, status))

    def token_up(self) -> None:
        """The token endpoint answers again."""
        self.state.set_outage("token", Outage())

    def fail_submission_api(self, count: int | None = None, status: int = 503) -> None:
        """The Submission API answers `status` to the next `count` calls (None: until lifted)."""
        self.state.set_outage("submission", Outage(True, count, status))

    def submission_api_up(self) -> None:
        """The Submission API answers again."""
        self.state.set_outage("submission", Outage())

    def reject_next(
        self,
        destination_id: str | None = None,
        problem_type: str = "technical-error",
        detail: str = "Abgelehnt (Test).",
        instance: str | None = None,
    ) -> None:
        """The next decision (of this destination, or of any) is a reject with this problem.

        `problem_type` is a suffix from the catalogue (see demo_fitconnect.state.PROBLEMS).
        """
        if problem_type not in PROBLEMS:
            raise ValueError(f"problem_type must be one of {sorted(PROBLEMS)}")
        with self.state.lock:
            self.state.forced_rejects.append(
                (destination_id, problem(problem_type, detail, instance))
            )

    def queued_rejects(self) -> int:
        """How many forced rejects still wait for a decision to turn."""
        with self.state.lock:
            return len(self.state.forced_rejects)

    def rotate_key(self, destination_id: str, keep_old: bool = False) -> str:
        """A new encryption key (new encryptionKid); the old kid is gone unless `keep_old`.

        A submission still encrypted for a forgotten key is rejected with encryption-issue.
        """
        return self.state.rotate(destination_id, keep_old)

    def lag_events(self, seconds: float = 0.0, polls: int = 0) -> None:
        """Events appended from now on show only after `seconds` and after `polls` polls."""
        with self.state.lock:
            self.state.lag_s = seconds
            self.state.lag_polls = polls

    def reset_faults(self) -> None:
        """Every fault off: outages, queued rejects, lag."""
        self.state.reset_faults()
