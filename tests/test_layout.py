"""The package layout keeps its direction: bridge -> worker -> domain -> schemas; bench apart."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT

# What each package may not import (ADR 2): dependencies point one way, and the benchmarks
# measure the product, so they may not lean on the test suite.
FORBIDDEN = {
    "schemas": ("domain", "worker", "bridge", "tests", "bench"),
    "domain": ("worker", "bridge", "tests", "bench"),
    "worker": ("bridge", "tests", "bench"),
    "bridge": ("tests", "bench"),
    "bench": ("tests",),
    # The payment simulator checks the standard on its own, never with the bridge's code.
    "demo_payments": ("schemas", "domain", "worker", "bridge", "tests", "bench"),
}


def imported_packages(path: Path) -> set[str]:
    """The top-level packages a module imports, anywhere in it (also inside functions)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_one_way(package: str) -> None:
    """No module of `package` imports a package it must not depend on."""
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) & set(FORBIDDEN[package]))
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}
