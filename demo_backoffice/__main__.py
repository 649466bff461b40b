"""`python -m demo_backoffice --port 8090 --smtp-port 8025`: run the demo back office."""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

from demo_backoffice.server import DemoBackOffice


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, start the servers and wait for Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m demo_backoffice",
        description="Demo-Zustellpunkt: nimmt Anträge per HTTP (JSON/XML) und E-Mail entgegen.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8090, help="HTTP port (default 8090)")
    parser.add_argument("--smtp-port", type=int, default=8025, help="SMTP port (default 8025)")
    parser.add_argument(
        "--signing-secret",
        default=None,
        help="whsec_... secret: verify Standard Webhooks signatures and refuse bad ones",
    )
    parser.add_argument("--verbose", action="store_true", help="log every HTTP request")
    args = parser.parse_args(argv)
    demo = DemoBackOffice(
        host=args.host,
        port=args.port,
        smtp_port=args.smtp_port,
        signing_secret=args.signing_secret or None,
        quiet=not args.verbose,
    )
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # honcho and systemd stop processes with SIGTERM; end as cleanly as on Ctrl-C.
    signal.signal(signal.SIGTERM, _stop)
    demo.start()
    print(
        f"Demo-Zustellpunkt läuft: {demo.url}/ (Übersicht), "
        f"Fälle an {demo.url}/cases/<zustellpunkt>, SMTP {demo.host}:{demo.smtp_port}",
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
