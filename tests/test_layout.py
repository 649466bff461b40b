"""The package layout keeps its direction (ADR 14) and has no circle anywhere, bench included.

bridge -> worker -> integrations -> domain -> store / infra / schemas; the benchmarks, the
harness of real processes and the stand-in servers apart.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

from tests.conftest import ROOT

PROJECT = ("bridge", "worker", "integrations", "domain", "store", "infra", "schemas")
HELPERS = ("tests", "bench", "harness", "demo_backoffice", "demo_payments", "demo_fitconnect")

# What each package may not import. Project packages by the layers; third-party ones where a
# layer must stay free of a framework (the domain runs in the web and the worker alike).
FORBIDDEN = {
    "schemas": ("bridge", "worker", "integrations", "domain", "store", "infra", *HELPERS),
    "infra": ("bridge", "worker", "integrations", "domain", "store", "schemas", *HELPERS),
    "store": ("bridge", "worker", "integrations", "domain", "schemas", *HELPERS),
    "domain": ("bridge", "worker", "integrations", *HELPERS, "flask", "rq", "redis", "requests"),
    "integrations": ("bridge", "worker", *HELPERS, "flask", "rq"),
    "worker": ("bridge", *HELPERS, "flask"),
    "bridge": HELPERS,
    # The benchmarks measure the product, so they may not lean on the test suite.
    "bench": ("tests", "demo_backoffice"),
    # The harness starts real processes for the tests, the benchmarks and the chaos run, so it
    # may lean on neither. It starts the product as processes and needs of its code only the
    # store's URL handling; the stand-ins are started as processes too.
    "harness": (
        "tests",
        "bench",
        "bridge",
        "worker",
        "integrations",
        "domain",
        "demo_backoffice",
        "demo_payments",
        "demo_fitconnect",
    ),
    # The stand-ins check the standards on their own, never with the bridge's code.
    "demo_payments": (*PROJECT, "tests", "bench", "harness", "demo_backoffice", "demo_fitconnect"),
    "demo_fitconnect": (*PROJECT, "tests", "bench", "harness", "demo_backoffice", "demo_payments"),
    # The stand-in back office validates what it receives against the published XSD, with the
    # project's one safe XML parser; it never reaches into the bridge, the worker or the store.
    "demo_backoffice": (
        "bridge",
        "worker",
        "domain",
        "store",
        "tests",
        "bench",
        "harness",
        "demo_payments",
        "demo_fitconnect",
    ),
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


def module_name(path: Path) -> str:
    """The dotted name of a module file under ROOT (a package by its folder's name)."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    """Every module of the project's packages, the test suite and the benchmarks included."""
    return {
        module_name(path): path
        for package in (*PROJECT, *HELPERS)
        for path in (ROOT / package).rglob("*.py")
    }


def imported_modules(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project's modules `name` imports: `from a import b` names module a.b where it is one."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for alias in node.names:
                if f"{source}.{alias.name}" in modules:
                    found.add(f"{source}.{alias.name}")
                elif source in modules:
                    found.add(source)
    found.discard(name)
    return found


def circle(graph: dict[str, set[str]]) -> list[str]:
    """One loop of imports in `graph` (its first module repeated at the end), or [] for none."""
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        return list(exc.args[1])
    return []


def test_no_circle_anywhere() -> None:
    """No two modules import each other, directly or around a loop (imports in functions count)."""
    modules = all_modules()
    graph = {name: imported_modules(name, path, modules) for name, path in modules.items()}
    assert circle(graph) == []


def test_circle_finder_sees_a_loop() -> None:
    """The finder reports a three-module loop, not the module hanging off it, and no loop in a tree."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    found = circle(graph)
    assert sorted(found[:-1]) == ["a", "b", "c"]
    assert found[0] == found[-1]
    assert circle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []
