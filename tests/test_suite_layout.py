"""The test suite's own conventions (issue 13): helper code comes from one package (tests/helpers, imported as
``helpers``), there is one fake OpenAI-compatible server and one place that sets torch's thread count, conftest files
hold fixtures and hooks only, and no test reaches code by changing ``sys.path``."""

from __future__ import annotations

import ast
import functools
from pathlib import Path


TESTS = Path(__file__).resolve().parent
HELPERS = TESTS / "helpers"


@functools.cache
def python_files() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(), str(path)) for path in sorted(TESTS.rglob("*.py"))}


def where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(TESTS.parent)}:{node.lineno}"


SERVER_MODULES = ("http.server", "socketserver")
SUPPORT_CODE = ("tests", "benchmarks", "scripts", "demo")  # the code around the three packages


def server_imports(path: Path, tree: ast.Module) -> list[str]:
    """``where`` each import of http.server or socketserver in ``tree`` is (``from http import server`` too)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        if any(name in SERVER_MODULES for name in names):
            found.append(where(path, node))
    return found


def test_one_fake_openai_server() -> None:
    """Only demo/tinyrs_demo/fake_openai.py runs an HTTP server: the tests use it through the ``openai_server``
    fixture of tests/conftest.py, benchmarks/judge_throughput.py imports it from tinyrs_demo."""
    found = [
        hit
        for folder in SUPPORT_CODE
        for path in sorted((TESTS.parent / folder).rglob("*.py"))
        for hit in server_imports(path, ast.parse(path.read_text(), str(path)))
    ]
    assert sorted({f.split(":")[0] for f in found}) == ["demo/tinyrs_demo/fake_openai.py"], found


def test_server_import_detector_sees_every_form(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import http.server\nfrom http import server\nfrom socketserver import TCPServer\nimport json\n")
    tree = ast.parse(bad.read_text())
    assert [hit.split(":")[1] for hit in server_imports(TESTS / "bad.py", tree)] == ["1", "2", "3"]


def test_one_place_sets_the_thread_count() -> None:
    """``torch.set_num_threads`` is called in tests/helpers/processes.py only (the ``one_thread`` fixture of
    tests/conftest.py, ``helpers.single_torch_thread`` for module-scoped fixtures, forked children)."""
    found = {
        where(path, node)
        for path, tree in python_files().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "set_num_threads"
    }
    assert {f.split(":")[0] for f in found} == {"tests/helpers/processes.py"}, sorted(found)


def test_conftest_files_hold_fixtures_and_hooks_only() -> None:
    """Helper functions and classes live in tests/helpers, not in conftest files handed out through fixtures."""
    offenders = []
    for path, tree in python_files().items():
        if path.name != "conftest.py":
            continue
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                offenders.append(f"{where(path, node)} class {node.name}")
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                fixture = any("fixture" in ast.unparse(d) for d in node.decorator_list)
                if not (fixture or node.name.startswith(("pytest_", "_"))):
                    offenders.append(f"{where(path, node)} def {node.name}")
    assert offenders == []


def test_no_sys_path_changes_anywhere() -> None:
    """Imports work through installed packages and pytest's ``pythonpath``, in the packages, the support code and the
    tests alike; a test that must import a file from a temporary folder uses ``monkeypatch.syspath_prepend``."""
    roots = ("sft", "grpo", "eval", *SUPPORT_CODE)
    paths = sorted(p for root in roots for p in (TESTS.parent / root).rglob("*.py"))
    found = [
        where(path, node)
        for path in paths
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("insert", "append", "remove", "extend")
        and ast.unparse(node.func.value) == "sys.path"
    ]
    assert found == []
