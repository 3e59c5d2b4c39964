"""The GPU check (scripts/gpu_check.sh, benchmarks/gpu_check.py, tests/gpu).

Default suite: the figures read from what the stages write (Trainer logs, results.json, JUnit XML), a stage that
fails or runs past its limit, the Qwen2-VL-2B shape, and the gpu marker on every test in tests/gpu.
``slow``: the whole dry run on CPU (tiny preset, DeepSpeed ZeRO-3 on CPU for SFT and GRPO, about a minute).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gc():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_trainer_figures_from_trainer_state_and_jsonl(gc, tmp_path):
    logs = [
        {"loss": 12.0, "step": 1},
        {"loss": 11.0, "step": 2, "num_input_tokens_seen": 8000},
        {"train_runtime": 4.0, "train_samples_per_second": 8.0, "train_steps_per_second": 0.5, "train_loss": 11.5,
         "step": 2},
    ]  # fmt: skip
    sft = tmp_path / "sft"
    sft.mkdir()
    (sft / "trainer_state.json").write_text(json.dumps({"log_history": logs}))
    out = gc.trainer_figures(sft)
    assert out["train_runtime"] == 4.0 and out["samples_per_s"] == 8.0 and out["steps_per_s"] == 0.5
    assert out["loss_first_last"] == [12.0, 11.0] and out["train_loss"] == 11.5
    assert out["tokens_per_s"] == 2000.0 and out["steps"] == 2

    grpo = tmp_path / "grpo"
    grpo.mkdir()
    records = [{"loss": 0.0, "num_tokens": 300, "step": 1}, {"loss": 0.1, "num_tokens": 900, "step": 2}]
    lines = [json.dumps(r) for r in records + [{"train_runtime": 3.0, "train_samples_per_second": 2.0, "step": 2}]]
    (grpo / "train_log.jsonl").write_text("\n".join(lines) + "\n")
    out = gc.trainer_figures(grpo)
    assert out["tokens_per_s"] == 300.0 and out["loss_first_last"] == [0.0, 0.1] and out["samples_per_s"] == 2.0

    (grpo / "train_log.jsonl").write_text(json.dumps(records[0]) + "\n")  # killed before the end
    with pytest.raises(ValueError, match="no train_runtime record"):
        gc.trainer_figures(grpo)
    with pytest.raises(FileNotFoundError, match="neither train_log.jsonl nor trainer_state.json"):
        gc.trainer_figures(tmp_path / "missing")


def test_eval_figures_junit_summary_and_table(gc, tmp_path):
    results = {"timings": {"model_load_s": 2.5}, "benchmarks": {"cls_aid": {"n_inferred": 64, "samples_per_s": 9.5,
               "timings": {"wall_s": 6.7}}}}  # fmt: skip
    (tmp_path / "results.json").write_text(json.dumps(results))
    ev = gc.eval_figures(tmp_path / "results.json")
    assert ev == {"samples": 64, "samples_per_s": 9.5, "wall_s": 6.7, "model_load_s": 2.5}
    with pytest.raises(ValueError, match="no benchmark 'cls_x'"):
        gc.eval_figures(tmp_path / "results.json", "cls_x")
    junit = tmp_path / "junit.xml"
    junit.write_text(
        '<testsuites><testsuite name="pytest" tests="6" failures="1" errors="0" skipped="2"/></testsuites>'
    )
    assert gc.junit_summary(junit) == "3 passed, 1 failed, 0 errors, 2 skipped"
    report = {
        "dry_run": False, "device": "NVIDIA H200", "created": "today", "total_s": 99.0,
        "model": {"parameters": 2_208_985_600}, "pytest": gc.junit_summary(junit),
        "stages": {
            "sft": {"status": "ok", "seconds": 80.0, "train_runtime": 30.0, "samples_per_s": 5.3,
                    "loss_first_last": [12.1, 11.9], "peak_gib": 41.5},
            "eval": {"status": "ok", "seconds": 40.0, **ev},
            "grpo": {"status": "timeout", "seconds": 160.0, "error": "timed out after 160 s"},
        },
    }  # fmt: skip
    table = gc.format_table(report)
    assert "2,209.0 M parameters" in table and "3 passed, 1 failed" in table
    assert "12.100>11.900" in table and "41.50" in table and "9.5" in table
    assert "grpo: timed out after 160 s" in table


def test_a_failing_and_a_hanging_stage_are_recorded(gc, tmp_path):
    (tmp_path / "failmod.py").write_text(
        "def main():\n    raise SystemExit('error: record 3 of x.json has no image')\n"
    )
    (tmp_path / "hangmod.py").write_text("import time\n\ndef main():\n    time.sleep(120)\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    failed = gc.run_stage("failmod", [], tmp_path / "logs" / "fail.log", 60, env)
    assert failed["status"] == "failed" and failed["error"] == "error: record 3 of x.json has no image"
    assert failed["memory"] == "cpu peak RSS" and failed["peak_gib"] > 0  # the child's exit report still came
    t0 = time.perf_counter()
    hung = gc.run_stage("hangmod", [], tmp_path / "logs" / "hang.log", 2, env)
    assert hung["status"] == "timeout" and hung["error"] == "timed out after 2 s"
    assert time.perf_counter() - t0 < 30


def test_real_shape_config_is_qwen2vl_2b(gc, tiny_model_dir):
    import torch
    from transformers import AutoConfig, Qwen2VLForConditionalGeneration

    tiny = AutoConfig.from_pretrained(tiny_model_dir)
    config = gc.real_shape_config(tiny)
    with torch.device("meta"):
        model = Qwen2VLForConditionalGeneration._from_config(config)
    assert sum(p.numel() for p in model.parameters()) == 2_208_985_600  # Qwen2-VL-2B-Instruct, tied embeddings
    assert config.image_token_id == tiny.image_token_id  # the tiny tokenizer's special-token ids stay valid
    assert config.text_config.eos_token_id == tiny.text_config.eos_token_id


def test_every_gpu_test_is_marked_gpu():
    files = sorted((REPO / "tests" / "gpu").glob("test_*.py"))
    assert len(files) >= 4
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        marks = [
            ast.unparse(node.value) for node in tree.body
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "pytestmark" for t in node.targets)
        ]  # fmt: skip
        assert marks == ["pytest.mark.gpu"], path.name


@pytest.mark.slow
def test_dry_run_end_to_end(tmp_path):
    """scripts/gpu_check.sh --dry-run: checkpoint, tests/gpu (all skip), and the three entry points with figures."""
    out = tmp_path / "out"
    env = dict(os.environ, PYTHON=sys.executable, GPU_CHECK_WORK=str(tmp_path / "work"))
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "gpu_check.sh"), "--dry-run", "--out", str(out)],
        capture_output=True, text=True, timeout=900, env=env, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    assert report["dry_run"] is True and report["model"]["real_shape"] is False
    assert report["pytest"].startswith("0 passed, 0 failed, 0 errors,") and "skipped" in report["pytest"]
    stages = report["stages"]
    assert list(stages) == ["sft", "grpo", "eval"]
    for name in ("sft", "grpo"):
        st = stages[name]
        assert st["status"] == "ok", st
        assert st["train_runtime"] > 0 and st["samples_per_s"] > 0 and len(st["loss_first_last"]) == 2
        assert st["steps"] == report["sizes"][f"{name}_steps"] and st["peak_gib"] > 0
    assert stages["eval"]["status"] == "ok" and stages["eval"]["samples"] == report["sizes"]["eval_samples"]
    assert stages["eval"]["samples_per_s"] > 0
    names = {p.name for p in out.iterdir()}
    assert {"gpu_check.json", "gpu_check.txt", "pytest_gpu.xml", "pytest_gpu.log", "logs"} <= names
    assert "sft" in proc.stdout and "samples/s" in proc.stdout
