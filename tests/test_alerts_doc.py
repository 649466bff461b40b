"""The alert rule example names only metrics the bridge exports."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from tests.conftest import ROOT


def test_alert_rules_use_exported_metrics(client: FlaskClient) -> None:
    """Every bridge_* series in docs/alerts.yml appears in GET /metrics."""
    text = (ROOT / "docs" / "alerts.yml").read_text(encoding="utf-8")
    rules = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    used = set(re.findall(r"\bbridge_[a-z_]+", rules))
    metrics = client.get("/metrics").get_data(as_text=True)
    exported: set[str] = set()
    for name, kind in re.findall(r"^# TYPE (bridge_[a-z_]+) (\w+)", metrics, re.MULTILINE):
        exported.add(name if kind != "counter" or name.endswith("_total") else f"{name}_total")
    assert len(used) >= 5
    assert used <= exported, used - exported
