"""GET /metrics is not public: a bearer token when BRIDGE_METRICS_TOKEN is set, otherwise only
a client on this host's loopback; a client behind the proxy is not on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from bridge import create_app
from domain.settings import Settings, SettingsError

METRICS_TOKEN = "metrics-" + "0123456789abcdef" * 3
SCRAPER = {"REMOTE_ADDR": "192.0.2.50"}


class Apps:
    """Apps built from the test environment with extra variables, disposed after the test."""

    def __init__(self, environ: dict[str, str]) -> None:
        """Apps of `environ`."""
        self.environ = environ
        self.built: list[Flask] = []

    def __call__(self, **extra: str) -> Flask:
        """An app of the environment with `extra` set."""
        app = create_app(Settings.from_env({**self.environ, **extra}))
        app.config["TESTING"] = True
        self.built.append(app)
        return app


@pytest.fixture
def make_app(environ: dict[str, str]) -> Iterator[Apps]:
    """Build apps with extra settings; their stores are closed after the test."""
    apps = Apps(environ)
    yield apps
    for app in apps.built:
        app.extensions["bridge"].store.dispose()


def test_without_a_token_only_loopback_reads_the_metrics(make_app: Apps) -> None:
    """Prometheus on the same host reads the metrics; any other address gets a German 403
    that says how to open them, and no metric."""
    client = make_app().test_client()
    local = client.get("/metrics")
    assert local.status_code == 200
    assert "bridge_redis_up" in local.get_data(as_text=True)
    remote = client.get("/metrics", environ_base=SCRAPER)
    assert remote.status_code == 403
    assert remote.headers["Content-Type"] == "application/problem+json"
    assert remote.get_json()["title"] == "Die Metriken sind nur intern abrufbar."
    assert "BRIDGE_METRICS_TOKEN" in remote.get_json()["detail"]
    assert "bridge_" not in remote.get_data(as_text=True)


def test_behind_the_proxy_a_remote_client_is_not_local(make_app: Apps) -> None:
    """Through nginx on loopback the peer is local, but the client it forwards is not: 403."""
    client = make_app(BRIDGE_PROXY_HOPS="1").test_client()
    response = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert response.status_code == 403


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        f"Bearer {METRICS_TOKEN[:-1]}",
        f"Bearer {METRICS_TOKEN}x",
        f"Basic {METRICS_TOKEN}",
        "Bearer " + "ä" * 40,
    ],
    ids=["none", "empty", "no-token", "short", "longer", "basic", "non-ascii"],
)
def test_with_a_token_nobody_reads_without_it(make_app: Apps, authorization: str | None) -> None:
    """With BRIDGE_METRICS_TOKEN set, a missing or wrong token is 401 (Bearer challenge), from
    loopback too; nothing of the metrics is in the answer."""
    client = make_app(BRIDGE_METRICS_TOKEN=METRICS_TOKEN).test_client()
    headers = {} if authorization is None else {"Authorization": authorization}
    for remote in ({}, SCRAPER):
        response = client.get("/metrics", headers=headers, environ_base=remote)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.get_json()["detail"] == (
            "Die Metriken brauchen das Token aus BRIDGE_METRICS_TOKEN."
        )
        assert "bridge_" not in response.get_data(as_text=True)


def test_the_right_token_reads_from_anywhere(make_app: Apps) -> None:
    """The scraper with the token reads the metrics from another host, through the proxy too."""
    client = make_app(BRIDGE_METRICS_TOKEN=METRICS_TOKEN, BRIDGE_PROXY_HOPS="1").test_client()
    response = client.get(
        "/metrics",
        headers={"Authorization": f"Bearer {METRICS_TOKEN}", "X-Forwarded-For": "192.0.2.50"},
    )
    assert response.status_code == 200
    assert "bridge_redis_up" in response.get_data(as_text=True)


@pytest.mark.parametrize("token", ["kurz", "x" * 31, "mit leerzeichen " * 3, "x" * 257])
def test_a_weak_metrics_token_is_refused_at_start(environ: dict[str, str], token: str) -> None:
    """Shorter than 32 characters, with a space or longer than 256: the service does not start."""
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({**environ, "BRIDGE_METRICS_TOKEN": token})
    assert any(p.startswith("BRIDGE_METRICS_TOKEN") for p in refused.value.problems)
