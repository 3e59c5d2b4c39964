"""The three packages share one skeleton: the same file for the same role, the same console script (``cli.py``: a
``COMMANDS`` table dispatched by ``cliargs.dispatch``), the same exit codes, one ``setup_logging`` and no module over
400 lines. Read as text and AST where importing would load torch; the console entries are called in-process.
(The import graph of each package: tests/test_imports.py.)"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[1]
PACKAGES = {"sft": "tinyrs_sft", "grpo": "tinyrs_grpo", "eval": "tinyrs_eval"}
PROGS = {"tinyrs_sft": "tinyrs-sft", "tinyrs_grpo": "tinyrs-grpo", "tinyrs_eval": "tinyrs-eval"}
# the same file for the same role in every package
SHARED_FILES = ("cli.py", "cliargs.py", "config.py", "dry_run.py", "imagecheck.py")
TRAINING_FILES = ("check_data.py", "train.py", "model_card.py", "checkpoints.py")  # sft and grpo
OLD_NAMES = ("dryrun.py", "modelcard.py", "flags.py")
ENTRY = {"tinyrs_sft": "train.py", "tinyrs_grpo": "train.py", "tinyrs_eval": "run.py"}
MAX_LINES = 400


def package_dir(package: str) -> Path:
    folder = next(f for f, p in PACKAGES.items() if p == package)
    return REPO / folder / package


def functions(path: Path) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def arg_names(func: ast.FunctionDef) -> list[str]:
    return [a.arg for a in func.args.args]


@pytest.mark.parametrize("package", sorted(PROGS))
def test_same_file_for_the_same_role(package: str) -> None:
    folder = package_dir(package)
    expected = SHARED_FILES + (TRAINING_FILES if package != "tinyrs_eval" else ("run.py",))
    assert [name for name in expected if not (folder / name).is_file()] == []
    assert [name for name in OLD_NAMES if (folder / name).exists()] == []


@pytest.mark.parametrize("package", sorted(PROGS))
def test_exit_codes_come_from_cliargs(package: str) -> None:
    cliargs = importlib.import_module(f"{package}.cliargs")
    assert (cliargs.EXIT_USAGE, cliargs.EXIT_FAILURE) == (2, 1)
    # no literal 2 or 1 returned as an exit status anywhere else: the names say which is which
    for path in package_dir(package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Return) and isinstance(node.value, ast.Constant):
                assert node.value.value not in (1, 2) or isinstance(node.value.value, bool), f"{path}:{node.lineno}"


@pytest.mark.parametrize("package", sorted(PROGS))
def test_console_script_shape(package: str) -> None:
    cli = importlib.import_module(f"{package}.cli")
    assert cli.PROG == PROGS[package]
    for command, (target, help_text) in cli.COMMANDS.items():
        module, _, function = target.partition(":")
        spec = importlib.util.find_spec(module)  # found without importing it (no torch here)
        assert spec is not None and spec.origin, target
        func = functions(Path(spec.origin)).get(function)
        assert func is not None, f"{command}: {target} is not a function of {spec.origin}"
        assert arg_names(func) == ["argv"] and help_text, f"{command}: {target}({', '.join(arg_names(func))})"
        body = Path(spec.origin).read_text(encoding="utf-8")
        assert "setup_logging(" in body or function == "cli", f"{spec.origin} does not call setup_logging"
    # cli.py is the same code in all three packages apart from its docstring, names and table
    own = (package_dir(package) / "cli.py").read_text(encoding="utf-8")
    reference = (package_dir("tinyrs_sft") / "cli.py").read_text(encoding="utf-8")
    assert _shape(own, package) == _shape(reference, "tinyrs_sft")


def _shape(source: str, package: str) -> str:
    tree = ast.parse(source.replace(package, "PKG"))
    tree.body = [n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    names = ("PROG", "DESCRIPTION", "COMMANDS")
    tree.body = [n for n in tree.body if not (isinstance(n, ast.Assign) and n.targets[0].id in names)]
    return ast.dump(tree)


@pytest.mark.parametrize("package", sorted(PROGS))
def test_entry_module_main_takes_parsed_arguments_and_cli_parses(package: str) -> None:
    funcs = functions(package_dir(package) / ENTRY[package])
    assert arg_names(funcs["cli"]) == ["argv"]
    assert "argv" not in arg_names(funcs["main"]) and len(arg_names(funcs["main"])) >= 1


@pytest.mark.parametrize("package", sorted(PROGS))
def test_console_entry_version_help_and_unknown_command(package: str, capsys: pytest.CaptureFixture) -> None:
    cli = importlib.import_module(f"{package}.cli")
    version = importlib.import_module(package).__version__
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out == f"{PROGS[package]} {version}\n"

    assert cli.main([]) == 2  # no command: the help, on stderr
    err = capsys.readouterr().err
    assert err.startswith(f"usage: {PROGS[package]} [--version] COMMAND") and all(c in err for c in cli.COMMANDS)

    first = next(iter(cli.COMMANDS))
    typo = first[:-1] + "x"  # trainx / rux: one letter off
    with pytest.raises(SystemExit) as info:
        cli.main([typo, "--whatever"])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and len(err.splitlines()) == 1
    assert f"unknown command {typo!r} (did you mean {first}?)" in err

    with pytest.raises(SystemExit) as info:
        cli.main(["--verison"])
    assert info.value.code == 2 and "did you mean --version?" in capsys.readouterr().err


def test_logging_is_set_up_in_one_place() -> None:
    """Every entry point goes through cliargs.setup_logging; nothing calls logging.basicConfig."""
    offenders = []
    for package in PROGS:
        for path in package_dir(package).rglob("*.py"):
            if "basicConfig(" in path.read_text(encoding="utf-8"):
                offenders.append(str(path.relative_to(REPO)))
    assert offenders == []


def test_no_module_over_400_lines() -> None:
    sizes = {
        str(path.relative_to(REPO)): len(path.read_text(encoding="utf-8").splitlines())
        for folder in PACKAGES
        for path in (REPO / folder).rglob("*.py")
    }
    assert len(sizes) > 60  # the walk saw the packages
    assert {path: n for path, n in sizes.items() if n > MAX_LINES} == {}
