"""`python -m demo_payments --port 8091`: run the provider simulator."""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

from demo_payments.config import SimulatorConfig
from demo_payments.server import DemoPayments


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, start the simulator and wait for Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m demo_payments",
        description="Demo-Bezahldienst: simuliert XBezahldienste und pmPayment (Paypage).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8091, help="HTTP port (default 8091)")
    parser.add_argument(
        "--auth",
        choices=["basic", "oauth2", "any", "none"],
        default="any",
        help="what the XBezahldienste API accepts (default: Basic or OAuth2)",
    )
    parser.add_argument(
        "--token-expires-in", type=float, default=300.0, help="OAuth2 token lifetime in seconds"
    )
    parser.add_argument("--public-url", default=None, help="base URL announced in pay page links")
    parser.add_argument("--verbose", action="store_true", help="log every HTTP request")
    args = parser.parse_args(argv)
    config = SimulatorConfig(
        auth=args.auth, token_expires_in=args.token_expires_in, public_url=args.public_url
    )
    demo = DemoPayments(host=args.host, port=args.port, config=config, quiet=not args.verbose)
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # honcho and systemd stop processes with SIGTERM; end as cleanly as on Ctrl-C.
    signal.signal(signal.SIGTERM, _stop)
    demo.start()
    print(
        f"Demo-Bezahldienst läuft: XBezahldienste {demo.xbezahldienste_url}, "
        f"pmPayment {demo.url}/payment/secure, Steuerung {demo.url}/_control/",
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        demo.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
