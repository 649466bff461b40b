"""End to end: one case, two offices on different schema versions, each gets its own version.

The dog registration runs on dog-registration@2 (a test-only version adding
`dog.tattoo_number`, tests/schema_versions.py); the tax office is pinned to version 1, the
public-order office takes version 2. A dangerous dog goes to both through a real worker.
"""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from demo_backoffice import DemoBackOffice
from domain.settings import Settings
from harness.waiting import wait_for
from infra.crypto import Vault
from schemas import SCHEMAS, ServiceSchema, ValidationOptions
from store.engine import Store
from store.models import DeliveryStatus, Submission
from tests.conftest import MakeToken, bearer
from tests.factories import PDF, dog
from tests.schema_versions import dog_v2_registered  # noqa: F401 - the fixture, found by name
from tests.worker.conftest import Processes, deliveries, submit

TAX = "usingen-steueramt"
PUBLIC_ORDER = "neu-anspach-ordnungsamt"
TATTOO = "T-4711"


@pytest.fixture
def environ(
    environ: dict[str, str],
    dog_v2_registered: ServiceSchema,  # noqa: F811 - the imported fixture, requested by name
) -> dict[str, str]:
    """The service on version 2; the tax office pinned to version 1."""
    path = Path(environ["BRIDGE_CONFIG"])
    text = path.read_text(encoding="utf-8")
    text = text.replace('schema = "dog-registration@1"', 'schema = "dog-registration@2"')
    text = text.replace(
        # The newline before: the commented FIT-Connect office's line reads "# task_area".
        '\ntask_area = "tax"\n',
        '\ntask_area = "tax"\nschema_versions = { dog-registration = 1 }\n',
    )
    assert text.count("schema_versions") == 1
    path.write_text(text, encoding="utf-8")
    return environ


def _valid_as(key: str, data: dict[str, Any]) -> None:
    """`data` pass the version's own schema, with keys it does not know refused."""
    SCHEMAS.get(key).validate(
        data, ValidationOptions(now=dt.datetime.now(dt.UTC), unknown="reject")
    )


def _versioned_worker(processes: Processes) -> None:
    """A real delivery worker that knows version 2 (it is not in the shipped registry)."""
    processes.python("worker-v2", ["tests.schema_versions", "worker", "work"])


def test_each_office_gets_the_case_in_its_own_version(
    client: FlaskClient,
    store: Store,
    backoffice: DemoBackOffice,
    processes: Processes,
    api_token: MakeToken,
    settings: Settings,
) -> None:
    """Pinned @1: the added field is left out and `schema` says @1; on @2: all of it; both
    valid against their version's schema. The case itself stays as it was received."""
    _versioned_worker(processes)
    upload = {"filename": "Kaufvertrag.pdf", "content_type": "application/pdf"}
    body = dog(
        {
            "dog.breed": "Rottweiler",
            "dog.tattoo_number": TATTOO,
            "attachments": [{**upload, "content_base64": base64.b64encode(PDF).decode()}],
        }
    )
    answer = submit(client, "dog-registration", body)
    assert sorted(d["office"] for d in answer["deliveries"]) == [PUBLIC_ORDER, TAX]
    wait_for(
        lambda: [d.status for d in deliveries(store)] == [DeliveryStatus.DELIVERED] * 2,
        what="both deliveries",
    )
    ids = {d["office"]: d["id"] for d in answer["deliveries"]}

    old = backoffice.document(TAX, ids[TAX])
    assert old["service"]["schema"] == "dog-registration@1"
    assert "tattoo_number" not in old["data"]["dog"]
    assert old["data"]["dog"]["breed"] == "Rottweiler"
    _valid_as("dog-registration@1", old["data"])
    with pytest.raises(Exception, match="tattoo_number"):
        _valid_as(
            "dog-registration@1", backoffice.document(PUBLIC_ORDER, ids[PUBLIC_ORDER])["data"]
        )

    new = backoffice.document(PUBLIC_ORDER, ids[PUBLIC_ORDER])
    assert new["service"]["schema"] == "dog-registration@2"
    assert new["data"]["dog"]["tattoo_number"] == TATTOO
    _valid_as("dog-registration@2", new["data"])
    # The converted case keeps its files: their field is in version 1 too.
    for document in (old, new):
        [sent] = document["attachments"]
        assert sent["field"] == "attachments.0"
        assert base64.b64decode(sent["content_base64"]) == PDF
    # Routing facts come from the case as received, the same for both.
    assert (
        old["flags"] == new["flags"] == {"dangerous_dog": True, "dangerous_breeds": ["Rottweiler"]}
    )

    # The case as received: version 2, with the tattoo number, in the API and in the store.
    status = client.get(answer["links"]["status"], headers=bearer(api_token("viewer"))).get_json()
    assert status["schema"] == "dog-registration@2"
    vault = Vault(settings.encryption_keys)
    with store.read() as session:
        [stored] = session.query(Submission).all()
        assert stored.schema == "dog-registration@2"
        assert stored.data is not None
        assert vault.decrypt_json(stored.data)["dog"]["tattoo_number"] == TATTOO


def test_intake_validates_against_the_newest_version(client: FlaskClient) -> None:
    """The service's schema (@2) decides what is accepted: its new field is checked too."""
    from tests.conftest import FORMCYCLE_SECRET

    response = client.post(
        "/webhooks/formcycle/dog-registration",
        json=dog({"dog.tattoo_number": "x" * 41}),
        headers={"X-Bridge-Secret": FORMCYCLE_SECRET},
    )
    assert response.status_code == 422
    assert "dog.tattoo_number" in response.get_data(as_text=True)
