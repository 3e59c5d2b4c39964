"""Imports inside tinyrs_grpo run one way: text parsing at the bottom, data and rewards above, train.py on top.

Every import counts, at module level and inside functions: a function-level import that closes a circle hides the
cycle from Python but not from this test.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tinyrs_grpo import rewards


PACKAGE = "tinyrs_grpo"
PACKAGE_DIR = Path(__file__).resolve().parents[2] / "grpo" / PACKAGE


def _target(name: str, package: str, modules: set[str]) -> str | None:
    """The package module that an absolute import name ``package.x.y`` (or ``package``) refers to."""
    parts = name.split(".")
    if parts[0] != package:
        return None
    if len(parts) == 1:
        return "__init__"
    return parts[1] if parts[1] in modules else None


def import_graph(package_dir: Path, package: str = PACKAGE) -> dict[str, set[str]]:
    """module -> the package modules it imports anywhere in its file (module level and inside functions)."""
    modules = {path.stem for path in package_dir.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in sorted(package_dir.glob("*.py")):
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                edges.update(t for alias in node.names if (t := _target(alias.name, package, modules)))
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: from . import x / from .x import y
                    base = f"{package}.{node.module}" if node.module else package
                else:
                    base = node.module or ""
                if base == package:  # from tinyrs_grpo import text, __version__
                    edges.update(alias.name if alias.name in modules else "__init__" for alias in node.names)
                elif (target := _target(base, package, modules)) is not None:
                    edges.add(target)
        edges.discard(path.stem)
        graph[path.stem] = edges
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


def test_package_import_graph_is_acyclic() -> None:
    graph = import_graph(PACKAGE_DIR)
    assert {"train", "rewards", "judge", "text", "data"} <= set(graph)  # the walk saw the package
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_text_is_a_leaf_and_rewards_never_import_the_judge() -> None:
    graph = import_graph(PACKAGE_DIR)
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
