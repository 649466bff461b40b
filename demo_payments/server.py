"""`DemoPayments`: the simulator as one real HTTP server on loopback, and `serve_in_thread`.

One werkzeug server (threaded) serves the XBezahldienste API, the OAuth2 token endpoint, the
legacy pmPayment paypage and the `/_control/` test hooks. With an `ssl_context` it serves
HTTPS instead (a context that requires client certificates simulates ePayBL's mutual TLS).
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from types import TracebackType

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from demo_payments import control, pmpayment, xbezahldienste
from demo_payments.config import SimulatorConfig
from demo_payments.ledger import Ledger
from demo_payments.pages import message_page

MAX_BODY = 1024 * 1024


class QuietHandler(WSGIRequestHandler):
    """A request handler that does not log every request (tests would drown in lines)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log nothing."""


def _phrase(status: int) -> str:
    """The standard reason phrase of a status code."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def create_app(config: SimulatorConfig, ledger: Ledger) -> Flask:
    """The simulator's WSGI app."""
    app = Flask("demo_payments")
    app.config["SIMULATOR"] = config
    app.config["LEDGER"] = ledger
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.register_blueprint(xbezahldienste.bp)
    app.register_blueprint(pmpayment.bp)
    app.register_blueprint(control.bp)

    @app.before_request
    def outage() -> Response | None:
        """While "down", every provider request (not the controls) gets the outage status."""
        if request.path.startswith("/_control/"):
            return None
        if ledger.delay_s > 0:
            time.sleep(ledger.delay_s)
        if not ledger.take_down():
            return None
        status = ledger.down_status
        if request.path.startswith(("/xbezahldienste/pay/", "/payment/pay/")):
            page = message_page(
                "Bezahldienst nicht erreichbar",
                "Der Bezahldienst ist gerade nicht erreichbar. Bitte versuchen Sie es später.",
            )
            return Response(page, status=status, mimetype="text/html", headers={"Retry-After": "1"})
        response = xbezahldienste.problem(status, _phrase(status), "UNSPECIFIED")
        response.headers["Retry-After"] = "1"
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        """Routing errors as problem JSON (no HTML error pages from the API)."""
        code = exc.code or 500
        return xbezahldienste.problem(code, exc.name, "UNSPECIFIED")

    @app.get("/")
    def index() -> Response:
        """A pointer for people who open the simulator in a browser."""
        page = message_page(
            "Demo-Bezahldienst",
            "Simulator für XBezahldienste (/xbezahldienste/) und pmPayment (/payment/).",
        )
        return Response(page, mimetype="text/html")

    return app


class DemoPayments:
    """The provider simulator; port 0 picks a free port (`url` tells which after `start()`)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        config: SimulatorConfig | None = None,
        ssl_context: ssl.SSLContext | None = None,
        quiet: bool = True,
    ) -> None:
        """Configure; nothing listens before `start()`."""
        self.quiet = quiet
        self.host = host
        self._port = port
        self.config = config or SimulatorConfig()
        self.ssl_context = ssl_context
        self.ledger = Ledger()
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> DemoPayments:
        """Listen (a background thread serves); returns self."""
        if self._server is not None:
            raise RuntimeError("already started")
        app = create_app(self.config, self.ledger)
        self._server = make_server(
            self.host,
            self._port,
            app,
            threaded=True,
            ssl_context=self.ssl_context,
            request_handler=QuietHandler if self.quiet else None,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="demo-payments",
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

    def __enter__(self) -> DemoPayments:
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
        """The port (after `start()`)."""
        if self._server is None:
            raise RuntimeError("not started")
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        """The base URL, e.g. http://127.0.0.1:8091."""
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def xbezahldienste_url(self) -> str:
        """The `base_url` option of an xbezahldienste provider pointed at the simulator."""
        return f"{self.url}/xbezahldienste"

    @property
    def token_url(self) -> str:
        """The `token_url` option of an OAuth2 provider pointed at the simulator."""
        return f"{self.url}/oauth2/token"


def serve_in_thread(
    port: int = 0,
    host: str = "127.0.0.1",
    config: SimulatorConfig | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> tuple[str, Callable[[], None]]:
    """Start a simulator in a background thread: (base URL, stop function).

    For pytest fixtures: `url, stop = serve_in_thread(); yield url; stop()`. The
    XBezahldienste base URL is `url + "/xbezahldienste"`, the token URL `url + "/oauth2/token"`,
    pmPayment's `url` itself; the controls are under `url + "/_control/"`.
    """
    demo = DemoPayments(host=host, port=port, config=config, ssl_context=ssl_context).start()
    return demo.url, demo.stop
