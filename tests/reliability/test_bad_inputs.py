"""The bad-input corpus (tests/reliability/bad_inputs/cases.json) through every relevant entry point.

Each case must end with a non-zero status and a one-line message that names the file, the record (where there is
one) and the problem; no Python traceback; nothing in the output folder that could be taken for a result. Entry
points run in-process exactly as the console scripts call them (a stray exception would fail the test, as it would
print a traceback for the user); `-m slow` adds the real console scripts in subprocesses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import BAD_INPUTS, call_cli, entry_argv, result_like_files


CORPUS = BAD_INPUTS
CASES = json.loads((CORPUS / "cases.json").read_text())
PARAMS = [pytest.param(case, entry, id=f"{case['id']}-{entry}") for case in CASES for entry in case["entries"]]


def message_lines(output: str, case: dict, data: Path) -> list[str]:
    """Lines of the output that carry the expected problem text."""
    return [line for line in output.splitlines() if case["expect"].lower() in line.lower()]


def check_message(output: str, case: dict, data: Path) -> str:
    assert "Traceback" not in output, output[-3000:]
    lines = message_lines(output, case, data)
    assert lines, f"no line mentions {case['expect']!r}:\n{output[-3000:]}"
    # the file: its name (eval names the benchmark file in its data_root)
    name = case.get("names", data.name)
    named = [line for line in lines if name in line]
    assert named, f"no message line names {name}:\n" + "\n".join(lines)
    if case["record"]:
        named = [line for line in named if case["record"] in line]
        assert named, f"no message line names {case['record']!r}:\n" + "\n".join(lines)
    return named[0]


def test_corpus_size() -> None:
    """The issue asks for at least 40 broken inputs across the three stages."""
    stages = {case["stage"] for case in CASES}
    assert len(CASES) >= 40 and stages == {"sft", "grpo", "eval"}
    assert len({case["id"] for case in CASES}) == len(CASES)
    for case in CASES:
        assert (CORPUS / case["data"]).is_file(), case["id"]


@pytest.mark.parametrize(("case", "entry"), PARAMS)
def test_bad_input_is_refused_cleanly(case: dict, entry: str, tiny_model_dir: Path, tmp_path: Path, capfd):
    data = CORPUS / case["data"]
    out = tmp_path / "out"
    main, argv = entry_argv(entry, data, out, tiny_model_dir, case["flags"])
    code = call_cli(main, argv)
    captured = capfd.readouterr()
    output = captured.out + captured.err
    assert code != 0, f"exit status 0 for a bad input:\n{output[-3000:]}"
    line = check_message(output, case, data)
    assert len(line) < 2000, "the message must stay readable"
    assert result_like_files(out) == [], "a refused run left files in its output folder"
    record_message(case, entry, code, line)


# The table in README.md is generated from these messages (REL_WRITE_TABLE=path writes it).
MESSAGES: list[dict] = []


def record_message(case: dict, entry: str, code: int, line: str) -> None:
    root = str(CORPUS)
    MESSAGES.append({"id": case["id"], "entry": entry, "code": code, "message": line.replace(root, "<corpus>")})
    target = os.environ.get("REL_WRITE_TABLE")
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(MESSAGES[-1]) + "\n")


def test_eval_broken_images_are_counted_error_samples(tiny_model_dir: Path, tmp_path: Path, capfd):
    """Evaluation keeps going past a broken image by design (README: the sample is an error, counted wrong, never a
    substitute image): each broken kind is reported in its record and counted in results.json, and a
    decompression bomb is refused before decoding instead of exhausting memory."""
    from tinyrs_eval.run import cli as main

    root = CORPUS / "eval_images"
    expected = json.loads((root / "expected_errors.json").read_text())
    out = tmp_path / "out"
    argv = ["--model_path", str(tiny_model_dir), "--data_root", str(root), "--output_dir", str(out), "--task",
            "cls_aid", "--max_new_tokens", "2", "--run_name", "imgs"]  # fmt: skip
    assert call_cli(main, argv) == 0
    assert "Traceback" not in "".join(capfd.readouterr())
    records = [json.loads(line) for line in (out / "imgs" / "cls_AID.jsonl").read_text().splitlines()]
    by_image = {Path(r["image"]).name: r for r in records}
    assert by_image["ok.png"]["error"] is None
    for name, text in expected.items():
        assert text in by_image[name]["error"], (name, by_image[name]["error"])
        assert by_image[name]["pred"] == "" and by_image[name]["score"]["strict"] in (0, 0.0, False)
    results = json.loads((out / "results.json").read_text())
    assert results["benchmarks"]["cls_aid"]["errors"] == len(expected)


SUBPROCESS_CASES = ["sft_missing_image", "grpo_unknown_answer_type", "eval_bbox_letters", "sft_non_utf8"]


@pytest.mark.slow
@pytest.mark.parametrize("case_id", SUBPROCESS_CASES)
def test_console_scripts_print_no_traceback(case_id: str, tiny_model_dir: Path, tmp_path: Path):
    """The real console scripts (subprocesses) on a few cases: one line, non-zero status, no traceback."""
    case = next(c for c in CASES if c["id"] == case_id)
    data = CORPUS / case["data"]
    scripts = {"sft": "tinyrs-sft", "grpo": "tinyrs-grpo", "eval": "tinyrs-eval"}
    for entry in case["entries"]:
        _, argv = entry_argv(entry, data, tmp_path / entry, tiny_model_dir, case["flags"])
        env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        script = Path(sys.executable).parent / scripts[case["stage"]]
        proc = subprocess.run([str(script), *argv], capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode != 0
        check_message(proc.stdout + proc.stderr, case, data)
        assert result_like_files(tmp_path / entry) == []
