"""`python -m demo_fitconnect --port 8092`: run the FIT-Connect stand-in with the demo destinations."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path
from types import FrameType

from demo_fitconnect.server import DEFAULT_SCOPE, FitConnectStandIn

# The demo's published credential (like demo_payments' demo password): never a real one.
DEMO_CLIENT_ID = "bridge-demo"
DEMO_CLIENT_SECRET = "demo-fitconnect-geheim"  # noqa: S105  # published demo credential

# Fixed ids so config/routing.toml's commented example can name them.
DEMO_DESTINATIONS = (
    {
        "destination_id": "6f1c2d3e-4b5a-4c6d-8e7f-90a1b2c3d4e5",
        "name": "Steueramt Usingen (FIT-Connect)",
        "leika": "99102013104000",
        "ars": ["064340011011", "064340007007"],
        "schema_uri": "urn:formcycle-bridge:schema:dog-registration@1",
    },
    {
        "destination_id": "7a2b3c4d-5e6f-4a7b-9c8d-0e1f2a3b4c5d",
        "name": "Ordnungsamt Neu-Anspach (FIT-Connect)",
        "leika": "99108011153000",
        "ars": ["064340011011", "064340007007"],
        "schema_uri": "urn:formcycle-bridge:schema:traffic-order@1",
    },
)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, start the stand-in and wait for Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m demo_fitconnect",
        description="FIT-Connect-Stand-in: Token-Endpunkt, Submission API v2, Routing API.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8092, help="HTTP port (default 8092)")
    parser.add_argument("--client-id", default=DEMO_CLIENT_ID, help="the OAuth2 client id")
    parser.add_argument(
        "--client-secret", default=DEMO_CLIENT_SECRET, help="the client's secret (demo default)"
    )
    parser.add_argument(
        "--token-lifetime", type=float, default=1800.0, help="token lifetime in seconds"
    )
    parser.add_argument("--scope", default=DEFAULT_SCOPE, help="the scope tokens carry")
    parser.add_argument(
        "--ca-file",
        type=Path,
        default=None,
        help="write the demo CA certificate (the keys' trust anchor) to this PEM file",
    )
    parser.add_argument("--verbose", action="store_true", help="log every HTTP request")
    args = parser.parse_args(argv)
    standin = FitConnectStandIn(
        host=args.host,
        port=args.port,
        clients={args.client_id: args.client_secret},
        token_lifetime_s=args.token_lifetime,
        scope=args.scope,
        quiet=not args.verbose,
    )
    for dest in DEMO_DESTINATIONS:
        standin.add_destination(**dest)  # type: ignore[arg-type]  # the table's values are str or list
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # honcho and systemd stop processes with SIGTERM; end as cleanly as on Ctrl-C.
    signal.signal(signal.SIGTERM, _stop)
    if args.ca_file is not None:
        # The channel's trust_anchor_file: the keys' x5c chains lead to this CA, made anew
        # at every start like the keys.
        args.ca_file.write_text(standin.ca_pem, encoding="ascii")
    standin.start()
    print(
        f"FIT-Connect-Stand-in läuft: Token {standin.token_url}, "
        f"Submission API {standin.submission_api_url}, Routing API {standin.routing_api_url}",
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        standin.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
