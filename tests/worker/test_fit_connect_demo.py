"""The routing file's commented FIT-Connect office works as written against the demo stand-in.

`python -m demo_fitconnect` runs as scripts/run starts it (its demo client, its fixed demo
destinations, its CA written to a file); the commented office of config/routing.toml is
uncommented and named for the tax area, with only the port, the CA file's path and a short
poll interval changed. A dog registration then ends delivered, accepted by the destination.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask.testing import FlaskClient

from demo_fitconnect.__main__ import DEMO_CLIENT_SECRET, DEMO_DESTINATIONS
from harness.ports import free_port
from harness.waiting import wait_for
from store.engine import Store
from store.models import DeliveryStatus
from tests.conftest import ROOT
from tests.factories import dog
from tests.worker.conftest import Processes, deliveries, submit

OFFICE = "usingen-steueramt-fitconnect"


def uncomment_fit_connect_office(text: str) -> str:
    """The routing file with the commented FIT-Connect office uncommented and responsible for
    the tax area of both towns."""
    start = text.index("# [offices.usingen-steueramt-fitconnect]")
    end = text.index("\n# Without destination_id", start)
    block = "\n".join(line.removeprefix("# ") for line in text[start:end].splitlines())
    text = text[:start] + block + text[end:]
    return text.replace(
        '[responsibilities.tax]\nusingen = "usingen-steueramt"\nneu-anspach = "usingen-steueramt"',
        f'[responsibilities.tax]\nusingen = "{OFFICE}"\nneu-anspach = "{OFFICE}"',
    )


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`python -m demo_fitconnect` on a free port: (its URL, the CA file it wrote)."""
    port, ca_file = free_port(), tmp_path / "fitconnect-ca.pem"
    process = subprocess.Popen(
        [sys.executable, "-m", "demo_fitconnect", "--port", str(port), "--ca-file", str(ca_file)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert "FIT-Connect-Stand-in läuft" in process.stdout.readline()
    yield f"http://127.0.0.1:{port}", ca_file
    process.terminate()
    process.wait(10)


@pytest.fixture
def environ(environ: dict[str, str], demo: tuple[str, Path]) -> dict[str, str]:
    """The routing file with the example office, pointed at the demo's port and CA file."""
    url, ca_file = demo
    path = Path(environ["BRIDGE_CONFIG"])
    text = uncomment_fit_connect_office(path.read_text(encoding="utf-8"))
    assert 'token_url = "http://127.0.0.1:8092/token"' in text
    text = text.replace("http://127.0.0.1:8092/", f"{url}/")
    # The demo's poll interval would be the default 60 s; a test waits 1 s.
    text = text.replace(
        'trust_anchor_file = "var/fitconnect-ca.pem"',
        f'trust_anchor_file = "{ca_file}", poll_interval_s = 1',
    )
    path.write_text(text, encoding="utf-8")
    environ["BRIDGE_SECRET_FITCONNECT"] = DEMO_CLIENT_SECRET
    return environ


def test_the_example_office_delivers_to_the_demo_destination(
    client: FlaskClient, store: Store, processes: Processes, demo: tuple[str, Path]
) -> None:
    """Submitted, decrypted with equal hashes, accepted: the delivery ends delivered."""
    processes.worker()
    processes.sweeper()
    answer = submit(client, "dog-registration", dog())
    delivered = wait_for(
        lambda: (
            [
                d
                for d in deliveries(store)
                if d.office_id == OFFICE and d.status == DeliveryStatus.DELIVERED
            ]
            or None
        ),
        what="the demo destination's accept",
    )
    assert len(delivered) == 1
    destination = DEMO_DESTINATIONS[0]["destination_id"]
    [received] = requests.get(f"{demo[0]}/_control/received/{destination}", timeout=10).json()
    assert (received["decision"], received["hashes_ok"]) == ("accept", True)
    info = received["metadata"]["additionalReferenceInfo"]
    assert info["senderReference"] == answer["reference"]
