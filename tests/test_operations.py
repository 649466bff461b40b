"""Operator actions: key rotation, the dead-letter list, replay by office, attachment fetch links."""

from __future__ import annotations

import io

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update

from infra.crypto import DecryptionError, Vault, generate_key
from store.engine import Store
from store.models import Attachment, Delivery, Event, Submission
from tests.conftest import FORMCYCLE_SECRET, MakeToken, bearer, bridge_cli
from tests.factories import PDF, dog, flatten, traffic

HEADERS = {"X-Bridge-Secret": FORMCYCLE_SECRET}


def _post_construction(client: FlaskClient) -> dict[str, object]:
    data: dict[str, object] = dict(flatten(traffic(reason="construction")))
    data["site_plan"] = (io.BytesIO(PDF), "Lageplan Müller.pdf", "application/pdf")
    response = client.post(
        "/webhooks/formcycle/traffic-order",
        data=data,
        headers=HEADERS,
        content_type="multipart/form-data",
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    body: dict[str, object] = response.get_json()
    return body


def test_rotate_keys_reencrypts_everything(
    client: FlaskClient, store: Store, environ: dict[str, str]
) -> None:
    """After rotation only the new key is needed; before it the new key alone cannot read."""
    _post_construction(client)
    new_key, old_key = generate_key(), environ["BRIDGE_ENCRYPTION_KEYS"]
    new_only = Vault([new_key])
    with store.read() as session:
        before = session.scalars(select(Submission.data)).one()
    assert before is not None
    with pytest.raises(DecryptionError):
        new_only.decrypt(before)
    result = bridge_cli(
        {**environ, "BRIDGE_ENCRYPTION_KEYS": f"{new_key},{old_key}"}, "rotate-keys"
    )
    assert result.returncode == 0, result.stderr
    assert "re-encrypted 2 values" in result.stdout
    with store.read() as session:
        data = session.scalars(select(Submission.data)).one()
        attachment = session.scalars(select(Attachment)).one()
    assert data is not None
    assert attachment.content is not None
    assert new_only.decrypt_json(data)["reason"] == "construction"
    assert new_only.decrypt(attachment.content) == PDF
    assert new_only.decrypt(attachment.filename).decode() == "Lageplan Müller.pdf"


def test_attachment_fetch_link_needs_a_token_and_is_audited(
    client: FlaskClient, store: Store, api_token: MakeToken
) -> None:
    """The fetch link of a large attachment returns its bytes to a token holder, and says who."""
    answer = _post_construction(client)
    reference = answer["reference"]
    with store.read() as session:
        sha = session.scalars(select(Attachment.sha256)).one()
    url = f"/api/v1/submissions/{reference}/attachments/{sha}"
    assert client.get(url).status_code == 401
    auth = bearer(api_token("viewer", name="ops"))
    response = client.get(url, headers=auth)
    assert response.status_code == 200
    assert response.data == PDF
    assert response.mimetype == "application/pdf"
    assert response.headers["Cache-Control"] == "no-store"
    # The download name is neutral: the citizen's file name may carry personal data.
    assert "Müller" not in response.headers["Content-Disposition"]
    assert client.get(url.replace(sha, "0" * 64), headers=auth).status_code == 404
    with store.read() as session:
        fetched = session.scalars(select(Event).where(Event.kind == "attachment.fetched")).one()
    assert fetched.actor == "token:ops"
    assert fetched.detail == {"sha256": sha, "field": "site_plan"}


def test_failed_list_and_replay_by_office(
    client: FlaskClient, store: Store, environ: dict[str, str]
) -> None:
    """`failed` shows the dead letters; `replay --office` resets only that office's ones."""
    for _ in range(2):
        assert (
            client.post(
                "/webhooks/formcycle/dog-registration", json=dog(), headers=HEADERS
            ).status_code
            == 202
        )
    traffic_answer = client.post(
        "/webhooks/formcycle/traffic-order", json=traffic(), headers=HEADERS
    ).get_json()
    with store.session() as session:
        session.execute(update(Delivery).values(status="failed", attempts=8, last_error="HTTP 503"))
        session.execute(update(Submission).values(status="failed"))
    listed = bridge_cli(environ, "failed")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count("last error: HTTP 503") == 3
    assert traffic_answer["reference"] in listed.stdout
    result = bridge_cli(environ, "replay", "--office", "usingen-steueramt", "--by", "erika")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("replayed ") == 2
    with store.read() as session:
        rows = {d.office_id + str(i): (d.status, d.attempts) for i, d in enumerate(
            session.scalars(select(Delivery).order_by(Delivery.office_id))
        )}  # fmt: skip
        statuses = set(session.scalars(select(Submission.status)))
        replays = session.scalars(select(Event).where(Event.kind == "delivery.replayed")).all()
    assert sorted(rows.values()) == [("failed", 8), ("pending", 0), ("pending", 0)]
    assert statuses == {"failed", "routed"}
    assert {e.actor for e in replays} == {"cli:erika"}
    assert len(replays) == 2
