"""Imports inside each package run one way: no cycle in tinyrs_sft, tinyrs_grpo or tinyrs_eval (subpackages
included), and in tinyrs_grpo text parsing at the bottom, data and rewards above, train.py on top.

Every import counts, at module level and inside functions: a function-level import that closes a circle hides the
cycle from Python but not from this test.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tinyrs_grpo import rewards


REPO = Path(__file__).resolve().parents[1]
PACKAGES = {
    "tinyrs_sft": REPO / "sft" / "tinyrs_sft",
    "tinyrs_grpo": REPO / "grpo" / "tinyrs_grpo",
    "tinyrs_eval": REPO / "eval" / "tinyrs_eval",
}


def module_name(path: Path, package_dir: Path) -> str:
    """``report.page`` for report/page.py, ``report`` for report/__init__.py, ``__init__`` for the package's own."""
    parts = list(path.relative_to(package_dir).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def _target(name: str, package: str, modules: set[str]) -> str | None:
    """The package module an absolute name ``package.x.y`` refers to: its longest dotted prefix that is a module."""
    parts = name.split(".")
    if parts[0] != package:
        return None
    for end in range(len(parts), 1, -1):
        if (candidate := ".".join(parts[1:end])) in modules:
            return candidate
    return "__init__"


def import_graph(package_dir: Path, package: str) -> dict[str, set[str]]:
    """module -> the package modules it imports anywhere in its file (module level and inside functions)."""
    files = sorted(package_dir.rglob("*.py"))
    modules = {module_name(path, package_dir) for path in files}
    graph: dict[str, set[str]] = {}
    for path in files:
        name = module_name(path, package_dir)
        # the package a relative import starts from: the module's own folder
        folder = [] if name == "__init__" else name.split(".")[: None if path.stem == "__init__" else -1]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                edges.update(t for alias in node.names if (t := _target(alias.name, package, modules)))
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: from . import x / from .x import y / from .. import z
                    parts = [package, *folder][: len(folder) + 2 - node.level]
                    base = ".".join([*parts, *([node.module] if node.module else [])])
                else:
                    base = node.module or ""
                for alias in node.names:  # from pkg import a_module, or from pkg.module import a_name
                    target = _target(f"{base}.{alias.name}", package, modules)
                    if target is not None:
                        edges.add(target)
        edges.discard(name)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None when the graph is acyclic."""
    state: dict[str, str] = {}  # "open" while on the DFS stack, "done" after

    def visit(node: str, stack: list[str]) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt, stack)):
                return cycle
        stack.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [])):
            return cycle
    return None


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_package_import_graph_is_acyclic(package: str) -> None:
    graph = import_graph(PACKAGES[package], package)
    assert {"cli", "cliargs", "config", "dry_run"} <= set(graph)  # the walk saw the package
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_text_is_a_leaf_and_rewards_never_import_the_judge() -> None:
    graph = import_graph(PACKAGES["tinyrs_grpo"], "tinyrs_grpo")
    assert graph["text"] <= {"boxparse"}
    assert graph["judge"] == {"text"}
    assert "judge" not in graph["rewards"]
    for module in ("data", "rows", "build_data", "judge"):  # answer-type codes come from text, not from rewards
        assert "rewards" not in graph[module], module
    assert "text" in graph["rows"] and "text" in graph["build_data"]
    assert "judge" in graph["train"] and "rewards" in graph["train"]  # train builds the judge reward, passes it


def test_no_registry_placeholder_and_no_alias() -> None:
    assert all(callable(func) for func in rewards.REWARD_FUNCS.values())
    assert not hasattr(rewards, "_rule_accuracy_reward")


def test_detector_sees_function_level_and_relative_cycles(tmp_path: Path) -> None:
    """Guard against a checker that can never fail: cycles hidden in functions or written relatively are found."""
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.c import x\n\ndef f():\n    from pkg.b import g\n")
    (package / "b.py").write_text("import os\n\ndef g():\n    from . import a\n")
    (package / "c.py").write_text("x = 1\n")
    graph = import_graph(package, "pkg")
    assert graph == {"__init__": set(), "a": {"b", "c"}, "b": {"a"}, "c": set()}
    assert find_cycle(graph) == ["a", "b", "a"]
    (package / "b.py").write_text("import pkg.c\n")
    assert find_cycle(import_graph(package, "pkg")) is None
    # a subpackage: report/page.py importing report/runs.py, which imports page back (relatively, in a function)
    (package / "report").mkdir()
    (package / "report" / "__init__.py").write_text("from pkg.report.page import main\n")
    (package / "report" / "page.py").write_text("from pkg.report import runs\nfrom pkg import c\n")
    (package / "report" / "runs.py").write_text("def f():\n    from .page import main\n    from .. import c\n")
    graph = import_graph(package, "pkg")
    assert graph["report"] == {"report.page"} and graph["report.page"] == {"report.runs", "c"}
    assert graph["report.runs"] == {"report.page", "c"}
    assert find_cycle(graph) == ["report.page", "report.runs", "report.page"]
