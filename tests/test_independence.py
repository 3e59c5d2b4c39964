"""The three packages share data conventions and checkpoints, never code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest


PACKAGES = {"tinyrs_sft": "sft", "tinyrs_grpo": "grpo", "tinyrs_eval": "eval"}


def _imported_top_level_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_package_never_imports_another(repo_root, package):
    sources = sorted((repo_root / PACKAGES[package] / package).rglob("*.py"))
    assert sources, f"no sources found for {package}"
    others = set(PACKAGES) - {package}
    offenders = {
        str(path.relative_to(repo_root)): sorted(_imported_top_level_names(path) & others) for path in sources
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_detector_sees_cross_imports(tmp_path):
    # Guard against a checker that can never fail.
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom tinyrs_eval.metrics import score_records\nimport tinyrs_sft.data as d\n")
    assert {"tinyrs_eval", "tinyrs_sft"} <= _imported_top_level_names(bad)
