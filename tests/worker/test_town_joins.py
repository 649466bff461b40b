"""The opening clause: a further town joins by configuration only, never by code."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from demo_backoffice import DemoBackOffice
from domain.settings import Settings, SettingsError
from harness.waiting import wait_for
from store.engine import Store
from store.models import DeliveryStatus
from tests.factories import dog
from tests.worker.conftest import Processes, deliveries, submit

WEHRHEIM = """
[municipalities.wehrheim]
name = "Wehrheim"
ags = "06434012"
ars = "064340012012"
postal_codes = ["61273"]
reference_prefix = "WH"
"""


def join_wehrheim(text: str, responsibilities: bool = True) -> str:
    """The configuration with Wehrheim as a member, served by the existing joint offices."""
    text += WEHRHEIM
    if responsibilities:
        text = (
            text.replace(
                'neu-anspach = "usingen-steueramt"\n',
                'neu-anspach = "usingen-steueramt"\nwehrheim = "usingen-steueramt"\n',
            )
            .replace(
                'neu-anspach = "neu-anspach-ordnungsamt"\n',
                'neu-anspach = "neu-anspach-ordnungsamt"\nwehrheim = "neu-anspach-ordnungsamt"\n',
            )
            .replace(
                # The joint treasury gets Wehrheim's payment notices too.
                'neu-anspach = "usingen-stadtkasse"\n',
                'neu-anspach = "usingen-stadtkasse"\nwehrheim = "usingen-stadtkasse"\n',
            )
        )
    return text


@pytest.fixture
def environ(environ: dict[str, str]) -> dict[str, str]:
    """The test environment with Wehrheim added to the routing file."""
    path = Path(environ["BRIDGE_CONFIG"])
    path.write_text(join_wehrheim(path.read_text(encoding="utf-8")), encoding="utf-8")
    return environ


def test_joining_without_responsibilities_is_refused_with_clear_messages(
    environ: dict[str, str], tmp_path: Path
) -> None:
    """A town added without offices for every task area is a start-up error naming the gaps."""
    path = tmp_path / "incomplete.toml"
    shipped = Path(environ["BRIDGE_CONFIG"]).read_text(encoding="utf-8")
    without = shipped.replace('wehrheim = "usingen-steueramt"\n', "").replace(
        'wehrheim = "neu-anspach-ordnungsamt"\n', ""
    )
    path.write_text(without, encoding="utf-8")
    with pytest.raises(SettingsError) as info:
        Settings.from_env({**environ, "BRIDGE_CONFIG": str(path)})
    problems = info.value.problems
    assert any("responsibilities.tax: no office is responsible for Wehrheim" in p for p in problems)
    assert any(
        "responsibilities.public-order: no office is responsible for Wehrheim" in p
        for p in problems
    )


def test_wehrheim_joins_by_configuration(
    client: FlaskClient, store: Store, backoffice: DemoBackOffice, processes: Processes
) -> None:
    """Wehrheim's first dog registration is routed to the joint tax office and delivered."""
    processes.worker()
    body = dog({"keeper.address.postal_code": "61273", "keeper.address.town": "Wehrheim"})
    answer = submit(client, "dog-registration", body)
    assert answer["reference"].startswith("WH-")
    assert answer["municipality"] == {"name": "Wehrheim", "ags": "06434012"}
    wait_for(
        lambda: [d.status for d in deliveries(store)] == [DeliveryStatus.DELIVERED],
        what="Wehrheim's delivery",
    )
    [case] = backoffice.cases("usingen-steueramt")
    assert case["reference"] == answer["reference"]
