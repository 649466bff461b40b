"""The quick fuzz: schemathesis against /openapi.json finds no 5xx and no half-stored request.

Runs `python -m bench.fuzz --quick` (about 400 generated cases for the webhooks, the status API
and the inbox API, in process) as an operator would, and reads its result file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_quick_fuzz_finds_no_server_error(tmp_path: Path) -> None:
    """Every generated request is answered without a 5xx, and refused ones store nothing."""
    output = tmp_path / "fuzz"
    done = subprocess.run(
        [sys.executable, "-m", "bench.fuzz", "--quick", "--seed", "7", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(output.with_suffix(".json").read_text(encoding="utf-8"))
    assert result["cases"] >= 400
    assert result["server_errors"] == []
    assert result["stored_by_rejected"] == []
    covered = {op.split(" ", 1)[1] for op in result["cases_by_operation"]}
    assert {
        "/webhooks/formcycle/dog-registration",
        "/webhooks/formcycle/traffic-order",
        "/api/v1/submissions/{reference}",
        "/api/v1/inbox/{office_id}/cases",
        "/api/v1/inbox/{office_id}/cases/{delivery_id}/ack",
    } <= covered
