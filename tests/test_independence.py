"""The three packages share data conventions and checkpoints, never code; tinyrs_demo (support) imports none."""

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


def test_demo_support_imports_no_stage_package(repo_root):
    """tinyrs_demo (demo data, tiny model) is support code: it must build its outputs without any of the three."""
    sources = sorted((repo_root / "demo" / "tinyrs_demo").rglob("*.py"))
    assert len(sources) >= 5, "no sources found for tinyrs_demo"
    offenders = {
        str(path.relative_to(repo_root)): sorted(_imported_top_level_names(path) & set(PACKAGES)) for path in sources
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_stage_packages_never_import_demo_support(repo_root):
    """The reverse: a training or evaluation package that reached for tinyrs_demo would need it installed to run."""
    for package, folder in PACKAGES.items():
        for path in sorted((repo_root / folder / package).rglob("*.py")):
            assert "tinyrs_demo" not in _imported_top_level_names(path), str(path.relative_to(repo_root))


def test_detector_sees_cross_imports(tmp_path):
    # Guard against a checker that can never fail.
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom tinyrs_eval.metrics import score_records\nimport tinyrs_sft.data as d\n")
    assert {"tinyrs_eval", "tinyrs_sft"} <= _imported_top_level_names(bad)
