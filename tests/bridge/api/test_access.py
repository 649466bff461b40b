"""The API by role: 401 without a valid token, 403 below the role needed, the admin's token list."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from domain.accounts.api_tokens import revoke_token
from store.engine import Store
from store.models import Event, utcnow
from tests.conftest import TEST_ADMIN, MakeToken, bearer, snapshot
from tests.webhook_support import assert_problem

INVALID = "Das Zugangstoken ist ungültig, abgelaufen oder widerrufen."


def _used(client: FlaskClient, token: str) -> dict[str, str]:
    """The token's header, after one use (its last-use time is then fresh for a minute)."""
    headers = bearer(token)
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    return headers


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_below_admin_cannot_list_or_revoke_tokens(
    client: FlaskClient, store: Store, api_token: MakeToken, role: str
) -> None:
    """403 naming the role needed and the token's role; nothing changes."""
    headers = _used(client, api_token(role, name="schwach"))
    api_token("admin", name="stark")
    before = snapshot(store)
    for response in (
        client.get("/api/v1/tokens", headers=headers),
        client.post("/api/v1/tokens/stark/revoke", headers=headers, json={"reason": "x"}),
    ):
        assert_problem(
            response,
            403,
            "forbidden",
            title="Keine Berechtigung.",
            detail=f"Dafür ist die Rolle admin nötig (dieses Token hat {role}).",
        )
    assert snapshot(store) == before
    english = client.get("/api/v1/tokens", headers={**headers, "Accept-Language": "en"})
    assert_problem(
        english,
        403,
        "forbidden",
        detail=f"This needs the admin role (this token has {role}).",
        lang="en",
    )


def test_admin_lists_tokens_without_secrets_and_revokes_on_record(
    client: FlaskClient, store: Store, api_token: MakeToken
) -> None:
    """The list shows prefix, role, office and state, never the token; revocation is audited."""
    admin = bearer(api_token("admin", name="chef"))
    leaked = api_token("viewer", name="civento", expires_at=utcnow() + dt.timedelta(days=30))
    office = api_token(name="steueramt", office_id="usingen-steueramt")
    listed = client.get("/api/v1/tokens", headers=admin)
    assert listed.status_code == 200
    rows = {t["name"]: t for t in listed.get_json()["tokens"]}
    assert set(rows) == {"chef", "civento", "steueramt"}
    assert rows["civento"]["role"] == "viewer"
    assert rows["civento"]["state"] == "valid"
    assert leaked.startswith(rows["civento"]["prefix"])
    assert rows["steueramt"]["office_id"] == "usingen-steueramt"
    for secret in (leaked, office):
        assert secret not in listed.get_data(as_text=True)
    revoked = client.post(
        "/api/v1/tokens/civento/revoke", headers=admin, json={"reason": "im Ticket veröffentlicht"}
    )
    assert revoked.status_code == 200
    assert revoked.get_json()["state"] == "revoked"
    assert_problem(
        client.get("/api/v1/me", headers=bearer(leaked)), 401, "unauthorized", detail=INVALID
    )
    with store.read() as session:
        event = session.scalars(select(Event).where(Event.kind == "token.revoked")).one()
    assert event.actor == "token:chef"
    assert event.detail["reason"] == "im Ticket veröffentlicht"
    assert event.detail["token"] == "civento"


def test_revoking_an_unknown_token_or_with_a_bad_reason_changes_nothing(
    client: FlaskClient, store: Store, api_token: MakeToken
) -> None:
    """404 for an unknown name, 422 for a reason that is not a short text."""
    admin = _used(client, api_token("admin", name="chef"))
    api_token(name="civento")
    before = snapshot(store)
    assert_problem(
        client.post("/api/v1/tokens/niemand/revoke", headers=admin),
        404,
        "unknown-token",
        detail="Kein Token 'niemand'.",
    )
    for reason in (42, "x" * 501):
        assert_problem(
            client.post("/api/v1/tokens/civento/revoke", headers=admin, json={"reason": reason}),
            422,
            "validation",
            title="Ungültige Begründung.",
        )
    assert snapshot(store) == before


def test_expired_and_revoked_tokens_get_401_and_change_nothing(
    client: FlaskClient, store: Store, api_token: MakeToken
) -> None:
    """Expired or revoked, the token is refused like an unknown one, with the same message."""
    soon = utcnow() + dt.timedelta(seconds=1)
    expiring = api_token("admin", name="kurz", expires_at=soon)
    revoked = api_token("admin", name="weg")
    revoke_token(store, "weg", actor=TEST_ADMIN)
    # Expiry is checked against the real clock here: wait until it has passed.
    time.sleep(max(0.0, (soon - utcnow()).total_seconds()) + 0.05)
    before = snapshot(store)
    for token in (expiring, revoked):
        response = client.get("/api/v1/tokens", headers=bearer(token))
        assert_problem(response, 401, "unauthorized", title="Nicht angemeldet.", detail=INVALID)
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="formcycle-bridge"'
    assert snapshot(store) == before


def test_me_names_the_token_and_its_office(client: FlaskClient, api_token: MakeToken) -> None:
    """Who am I: the token's name, role and office (an office token may ask this too)."""
    me = client.get(
        "/api/v1/me", headers=bearer(api_token(name="steueramt", office_id="usingen-steueramt"))
    )
    assert me.status_code == 200
    assert me.get_json() == {
        "name": "steueramt",
        "role": "viewer",
        "via": "token",
        "office_id": "usingen-steueramt",
        "offices": None,
    }


def test_openapi_describes_the_bearer_roles(client: FlaskClient) -> None:
    """/openapi.json names the roles in the bearer scheme and lists the new paths."""
    doc = client.get("/openapi.json").get_json()
    scheme = doc["components"]["securitySchemes"]["bearer"]
    assert scheme["scheme"] == "bearer"
    for role in ("viewer", "operator", "admin"):
        assert role in scheme["description"]
    assert {
        "/api/v1/me",
        "/api/v1/tokens",
        "/api/v1/tokens/{name}/revoke",
        "/api/v1/submissions/{reference}/attachments/{sha256}",
    } <= set(doc["paths"])
    assert "403" in doc["paths"]["/api/v1/submissions/{reference}"]["get"]["responses"]
