"""Copies forced by "the packages never import each other" stay identical (apart from a header naming the other copy).

Read as text and AST, never imported, so a copy is checked even where importing it would need its whole package.
Covered elsewhere: imagecheck.py (tests/test_copies.py), boxparse.py (tests/test_boxparse_contract.py), and the
answer helpers of grpo/eval on one golden table (tests/test_contract.py). Here: checkpoints.py, the reasoning system
prompt, the Qwen2-VL chat template and special tokens, the offline environment, the benchmark table, and one
name = one function.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest


REPO = Path(__file__).resolve().parents[1]
PY_ROOTS = ("sft", "grpo", "eval", "demo", "scripts", "benchmarks", "tests")


def python_files() -> list[Path]:
    return sorted(p for root in PY_ROOTS for p in (REPO / root).rglob("*.py") if ".venv" not in p.parts)


def literal(node: ast.AST) -> Any:
    """``ast.literal_eval`` of a node; a dict keeps only its literal entries (``"N": str(THREADS)`` is left out)."""
    if isinstance(node, ast.Dict):
        items = {}
        for key, value in zip(node.keys, node.values):
            try:
                items[ast.literal_eval(key)] = ast.literal_eval(value)
            except ValueError:
                continue
        return items
    return ast.literal_eval(node)


def assigned_constants(path: Path, name: str) -> list[Any]:
    """Literal values assigned to ``name`` anywhere in ``path`` (module or function level)."""
    values = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets) and node.value is not None:
                values.append(literal(node.value))
    return values


def all_assignments(name: str) -> dict[str, Any]:
    """``{relative path: value}`` of every literal assignment to ``name`` in the repository's Python files."""
    found = {}
    for path in python_files():
        if name not in path.read_text(encoding="utf-8"):
            continue
        for value in assigned_constants(path, name):
            found[str(path.relative_to(REPO))] = value
    return found


# ---------------------------------------------------------------------------------------------------------------
# checkpoints.py: sft and grpo hold the same module, each with a header line naming the other copy
# ---------------------------------------------------------------------------------------------------------------
CHECKPOINT_COPIES = ("sft/tinyrs_sft/checkpoints.py", "grpo/tinyrs_grpo/checkpoints.py")
HEADER_RE = re.compile(r"^# Keep in sync with (\S+) .*\n", re.MULTILINE)


def without_header(text: str) -> tuple[str, list[str]]:
    """The text without its "# Keep in sync with X ..." lines, and the files those lines name."""
    return HEADER_RE.sub("", text), HEADER_RE.findall(text)


def test_checkpoints_copies_are_identical_below_the_header() -> None:
    bodies, headers = {}, {}
    for copy in CHECKPOINT_COPIES:
        bodies[copy], headers[copy] = without_header((REPO / copy).read_text(encoding="utf-8"))
    first, second = CHECKPOINT_COPIES
    assert headers == {first: [second], second: [first]}  # each names the other, once
    assert len(bodies[first].splitlines()) > 100  # the header stripping left the module
    assert bodies[first] == bodies[second], "sft and grpo checkpoints.py differ: copy one over the other"


def test_header_stripping_keeps_everything_else() -> None:
    text = '"""doc"""\n\n# Keep in sync with a/b.py (copied on purpose).\n\nx = 1  # Keep in sync with c\n'
    body, named = without_header(text)
    assert body == '"""doc"""\n\n\nx = 1  # Keep in sync with c\n' and named == ["a/b.py"]


# ---------------------------------------------------------------------------------------------------------------
# One string, wherever it is written
# ---------------------------------------------------------------------------------------------------------------
def test_reasoning_system_prompt_is_one_string_in_every_copy() -> None:
    copies = all_assignments("REASONING_SYSTEM_PROMPT")
    expected = {
        "sft/tinyrs_sft/constants.py",
        "grpo/tinyrs_grpo/text.py",
        "eval/tinyrs_eval/constants.py",
        "demo/tinyrs_demo/vocabulary.py",
        "tests/helpers/data_format.py",
    }
    assert expected <= set(copies), sorted(copies)
    assert len(set(copies.values())) == 1, {k: v[:60] for k, v in copies.items()}
    assert next(iter(copies.values())) in (REPO / "docs" / "data-format.md").read_text(encoding="utf-8")


def test_chat_template_is_one_string_in_every_copy() -> None:
    import json

    copies = all_assignments("QWEN2VL_CHAT_TEMPLATE")
    assert {"demo/tinyrs_demo/tokenizer.py", "sft/tinyrs_sft/model.py"} <= set(copies), sorted(copies)
    fixture = REPO / "tests/fixtures/released_checkpoint/checkpoint/chat_template.json"
    copies[str(fixture.relative_to(REPO))] = json.loads(fixture.read_text(encoding="utf-8"))["chat_template"]
    assert len(set(copies.values())) == 1, sorted(copies)
    template = next(iter(copies.values()))
    assert "<|vision_start|><|image_pad|><|vision_end|>" in template


def test_special_tokens_are_one_list_in_both_builders() -> None:
    """The tiny-model builder and the released-checkpoint fixture builder (which runs under transformers 4.50 in its
    own venv, so it cannot import tinyrs_demo) list the Qwen2-VL special tokens in the same order."""
    demo = assigned_constants(REPO / "demo/tinyrs_demo/tokenizer.py", "QWEN2VL_SPECIAL_TOKENS")
    fixture = assigned_constants(REPO / "tests/fixtures/released_checkpoint/make_fixture.py", "SPECIAL_TOKENS")
    assert len(demo) == len(fixture) == 1
    assert demo[0] == fixture[0]
    assert demo[0][:3] == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"] and "<|image_pad|>" in demo[0]


def test_chat_template_is_trls_qwen2_vl_template() -> None:
    """The copies say they are TRL's qwen2_5_vl.jinja text (so TRL recognises the template); check that."""
    trl_templates = pytest.importorskip("trl").__path__[0]
    trl_text = (Path(trl_templates) / "chat_templates" / "qwen2_5_vl.jinja").read_text(encoding="utf-8")
    (ours,) = assigned_constants(REPO / "sft/tinyrs_sft/model.py", "QWEN2VL_CHAT_TEMPLATE")
    assert ours == trl_text.rstrip("\n")


# ---------------------------------------------------------------------------------------------------------------
# The offline environment: every place that sets it sets the same switches to the same values
# ---------------------------------------------------------------------------------------------------------------
OFFLINE_SWITCHES = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "WANDB_MODE": "disabled",
}
ALSO_AGREE = {"HF_HUB_DISABLE_TELEMETRY": "1", "TOKENIZERS_PARALLELISM": "false"}  # when a place sets them
OFFLINE_DICTS = {  # file -> name of the dict literal (None: the dict literal that holds HF_HUB_OFFLINE)
    "tests/conftest.py": None,
    "scripts/run_demo.py": "OFFLINE_ENV",
    "benchmarks/gpu_check.py": "OFFLINE_ENV",
    "benchmarks/sft_startup.py": "CHILD_ENV",
    "benchmarks/demo_zero_stage.py": "OFFLINE_ENV",
}
SHELL_EXPORTS = ("Makefile", "scripts/gpu_check.sh")


def dict_with_key(path: Path, key: str) -> dict:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Dict) and any(isinstance(k, ast.Constant) and k.value == key for k in node.keys):
            return literal(node)
    raise AssertionError(f"{path}: no dict literal with {key}")


def shell_exports(path: Path) -> dict[str, str]:
    """``export A=1 B=2`` (shell) and ``export A := 1`` (make) assignments of a file."""
    env = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if match := re.fullmatch(r"export (\w+) :?= (\S+)", line):
            env[match[1]] = match[2]
        elif line.startswith("export ") and "=" in line:
            env.update(item.split("=", 1) for item in line.split()[1:] if re.fullmatch(r"\w+=\S+", item))
    return env


def offline_environments() -> dict[str, dict]:
    envs = {}
    for file, name in OFFLINE_DICTS.items():
        path = REPO / file
        envs[file] = assigned_constants(path, name)[0] if name else dict_with_key(path, "HF_HUB_OFFLINE")
    for file in SHELL_EXPORTS:
        envs[file] = shell_exports(REPO / file)
    return envs


@pytest.mark.parametrize("place", [*OFFLINE_DICTS, *SHELL_EXPORTS])
def test_offline_environment_agrees(place: str) -> None:
    env = offline_environments()[place]
    assert {k: env.get(k) for k in OFFLINE_SWITCHES} == OFFLINE_SWITCHES
    assert {k: env[k] for k in ALSO_AGREE if k in env} == {k: v for k, v in ALSO_AGREE.items() if k in env}


def test_offline_environment_readers_see_a_drift() -> None:
    """Guard: the readers find the values, so a changed value would fail the test above."""
    assert shell_exports(REPO / "Makefile")["WANDB_MODE"] == "disabled"
    assert shell_exports(REPO / "scripts/gpu_check.sh")["HF_DATASETS_OFFLINE"] == "1"
    fake = {"HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled"}
    assert {k: fake.get(k) for k in OFFLINE_SWITCHES} != OFFLINE_SWITCHES


# ---------------------------------------------------------------------------------------------------------------
# The benchmark table: task key -> (file, task type), in the eval registry and everywhere it is restated
# ---------------------------------------------------------------------------------------------------------------
def eval_registry() -> dict[str, tuple[str, str]]:
    """``Benchmark(key, file, type)`` calls of tinyrs_eval/benchmarks.py, read without importing."""
    tree = ast.parse((REPO / "eval/tinyrs_eval/benchmarks.py").read_text(encoding="utf-8"))
    table = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Benchmark" and len(node.args) == 3:
            key, file, task_type = (ast.literal_eval(a) for a in node.args)
            table[key] = (file, task_type)
    return table


def docs_table() -> dict[str, tuple[str, str]]:
    text = (REPO / "docs/data-format.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([\w-]+)` \| `([\w.-]+\.json)` \| (\w+) \|$", text, re.MULTILINE)
    return {key: (file, task_type) for key, file, task_type in rows}


def test_benchmark_table_is_the_same_everywhere() -> None:
    registry = eval_registry()
    assert len(registry) == 12
    demo = assigned_constants(REPO / "demo/tinyrs_demo/vocabulary.py", "BENCHMARKS")[0]
    eval_tests = assigned_constants(REPO / "tests/eval/test_inputs.py", "ORIGINAL_KEYS")[0]
    restated = {
        "demo/tinyrs_demo/vocabulary.py BENCHMARKS": demo,
        "tests/eval/test_inputs.py ORIGINAL_KEYS": eval_tests,
        "docs/data-format.md 4.1": docs_table(),
    }
    for where, table in restated.items():
        assert table == registry, where
    by_file = assigned_constants(REPO / "tests/helpers/data_format.py", "BENCHMARK_FILES")[0]
    assert by_file == {file: task_type for file, task_type in registry.values()}
    (keys,) = assigned_constants(REPO / "tests/test_demo.py", "BENCHMARK_KEYS")
    assert keys == list(registry)
    readme = (REPO / "eval/README.md").read_text(encoding="utf-8")
    (task_row,) = [line for line in readme.splitlines() if line.startswith("| `--task`")]
    assert [key for key in registry if not re.search(rf"\b{re.escape(key)}\b", task_row)] == []  # every key listed


# ---------------------------------------------------------------------------------------------------------------
# One name, one meaning: a helper that exists in several packages has the same body everywhere
# ---------------------------------------------------------------------------------------------------------------
PACKAGES = {"sft": "tinyrs_sft", "grpo": "tinyrs_grpo", "eval": "tinyrs_eval"}
SHARED_HELPER_NAMES = ("init_deepspeed_comm",)


def function_bodies(name: str) -> dict[str, str]:
    """``{file: ast dump of the body}`` of every top-level function ``name`` in the three packages."""
    bodies = {}
    for folder, package in PACKAGES.items():
        for path in sorted((REPO / folder / package).rglob("*.py")):
            for node in ast.parse(path.read_text(encoding="utf-8")).body:
                if isinstance(node, ast.FunctionDef) and node.name == name:
                    body = node.body[1:] if ast.get_docstring(node) else node.body  # docstrings may differ
                    bodies[str(path.relative_to(REPO))] = "\n".join(ast.dump(stmt) for stmt in body)
    return bodies


@pytest.mark.parametrize("name", SHARED_HELPER_NAMES)
def test_a_helper_name_means_one_thing_in_every_package(name: str) -> None:
    bodies = function_bodies(name)
    assert len(set(bodies.values())) <= 1, f"{name} has different bodies in {sorted(bodies)}: merge or rename one"


def test_function_bodies_tell_different_helpers_apart() -> None:
    """Guard: bodies that differ are seen as different (grpo's renamed helper against sft's)."""
    sft = function_bodies("init_deepspeed_comm")
    grpo = function_bodies("attach_deepspeed_to_process_group")
    assert list(grpo) == ["grpo/tinyrs_grpo/train.py"]
    assert not sft or set(sft.values()) != set(grpo.values())
