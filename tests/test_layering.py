"""The layering rule of DESIGN.md §2, checked on the import statements of every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "wardwatch"

#: For each layer, the wardwatch packages it may import (besides itself). ``model`` and ``errors`` import nothing.
ALLOWED: dict[str, set[str]] = {
    "model": set(),
    "errors": set(),
    "capture": {"model", "errors"},
    "dissect": {"model", "errors", "capture"},
    "inventory": {"model", "errors", "capture", "dissect"},
    "risk": {"model", "errors", "capture", "dissect", "inventory"},
    "vuln": {"model", "errors", "inventory"},
    "segment": {"model", "errors", "inventory", "risk"},
    "procure": {"model", "errors", "inventory", "vuln"},
    "cvd": {"model", "errors", "vuln"},
    "store": {"model", "errors"},
    "bus": {"model", "errors"},
}
#: Composers may import any layer, but never ``cli`` or ``web``.
COMPOSERS = {"engine", "report", "cli", "web"}


def wardwatch_imports(path: Path) -> set[str]:
    """Top-level wardwatch packages imported by one module (``wardwatch.capture.pcap`` -> ``capture``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "wardwatch" and len(parts) > 1:
                found.add(parts[1])
    return found


def layer_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


MODULES = sorted(p for p in SRC.rglob("*.py") if p.relative_to(SRC).parts[0] != "__init__.py")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_module_respects_layering(path: Path) -> None:
    layer = layer_of(path)
    imports = wardwatch_imports(path) - {layer}
    assert not imports & {"cli", "web"}, (
        f"{path.relative_to(SRC)} imports {sorted(imports & {'cli', 'web'})}: nothing imports cli or web"
    )
    if layer in COMPOSERS:
        return
    assert layer in ALLOWED, f"{layer} is not a layer of DESIGN.md: add it to the rule"
    forbidden = imports - ALLOWED[layer]
    assert not forbidden, f"{path.relative_to(SRC)} ({layer}) may not import {sorted(forbidden)}"


def test_checker_sees_a_violation(tmp_path: Path) -> None:
    """The checker itself finds an import that breaks the rule (so the rule cannot pass vacuously)."""
    bad = tmp_path / "bad.py"
    bad.write_text("from wardwatch.store import Store\nimport wardwatch.engine\n")
    assert wardwatch_imports(bad) == {"store", "engine"}
    assert len(MODULES) > 20
