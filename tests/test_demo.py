"""The stages hand over checkpoint folders: SFT output -> GRPO input -> eval input (and the whole demo, slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import subprocess_env


REPO = Path(__file__).resolve().parents[1]
STAGES = ["base", "pretrain", "sft", "cot_sft", "grpo"]
BENCHMARK_KEYS = [
    "cls_aid", "cls_METER_ML", "cls_NWPU_RESISC45", "cls_SIRI", "cls_WHU_RS19", "vqa_HR-comp", "vqa_HR-pre",
    "vqa_LR-comp", "vqa_LR-pre", "vqa_LR-rural", "rs_vg", "lhrs_bench",
]  # fmt: skip


def run(cmd: list[str], timeout: int = 600) -> subprocess.CompletedProcess:
    env = subprocess_env(PYTHONUNBUFFERED="1")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd[:4]} failed:\n{proc.stderr[-3000:]}"
    return proc


def assert_loadable_checkpoint(folder: Path) -> None:
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(folder)
    processor = AutoProcessor.from_pretrained(folder)
    assert type(model).__name__ == "Qwen2VLForConditionalGeneration"
    assert processor.chat_template, f"{folder} has no chat template"


def test_sft_output_feeds_grpo_and_eval(tiny_model_dir, demo_data_dir, tmp_path):
    sft_out, grpo_out, eval_out = tmp_path / "sft", tmp_path / "grpo", tmp_path / "eval"
    run([
        sys.executable, "-m", "tinyrs_sft.train", "--model_id", str(tiny_model_dir),
        "--data_path", str(demo_data_dir / "cot_sft.json"), "--image_folder", str(demo_data_dir / "images"),
        "--output_dir", str(sft_out), "--use_cpu", "True", "--max_steps", "2", "--per_device_train_batch_size", "2",
        "--save_strategy", "no", "--report_to", "none", "--disable_flash_attn2", "True",
        "--image_max_pixels", "12544",
    ])  # fmt: skip
    assert_loadable_checkpoint(sft_out)
    # The SFT pixel bounds travel with the checkpoint's processor.
    processor_config = json.loads((sft_out / "processor_config.json").read_text())
    assert processor_config["image_processor"]["size"]["longest_edge"] == 12544

    run([
        sys.executable, "-m", "tinyrs_grpo.train", "--config", str(REPO / "grpo/configs/cpu_demo.yaml"),
        "--model_name_or_path", str(sft_out), "--dataset_name", str(demo_data_dir / "grpo"),
        "--output_dir", str(grpo_out), "--max_steps", "1", "--save_strategy", "no",
    ])  # fmt: skip
    assert_loadable_checkpoint(grpo_out)

    run([
        sys.executable, "-m", "tinyrs_eval.run", "--data_root", str(demo_data_dir / "eval"),
        "--output_dir", str(eval_out), "--model_type", "hf", "--model_path", str(grpo_out),
        "--task", "cls_aid,rs_vg", "--limit", "2", "--max_new_tokens", "8", "--batch_size", "2",
        "--reasoning_config", str(REPO / "eval/configs/qwen2_thinking_template.json"),
    ])  # fmt: skip
    results = json.loads((eval_out / "results.json").read_text())
    assert results["config"]["model_name_or_path"] == str(grpo_out)
    assert {k: v["n_samples"] for k, v in results["benchmarks"].items()} == {"cls_aid": 2, "rs_vg": 2}


@pytest.mark.slow
def test_demo_reduced_budget_runs_every_stage(tmp_path):
    out = tmp_path / "demo_out"
    proc = run(
        [sys.executable, str(REPO / "scripts" / "run_demo.py"), "--quick", "--output_dir", str(out)], timeout=3000
    )
    for stage in STAGES:
        assert (out / stage / "DONE").is_file(), stage
        assert_loadable_checkpoint(out / stage)
        results = json.loads((out / "eval" / stage / "results.json").read_text())
        assert set(results["benchmarks"]) == set(BENCHMARK_KEYS), stage
    summary = (out / "summary.md").read_text()
    header = summary.splitlines()[4]
    assert all(f"{stage} strict" in header and f"{stage} legacy" in header for stage in STAGES), header
    rows = {line.split("|")[1].strip() for line in summary.splitlines() if line.startswith("| ")}
    assert set(BENCHMARK_KEYS) <= rows
    assert (out / "report.html").stat().st_size > 10_000
    assert "TinyRS demo summary" in proc.stdout

    # A rerun reuses every finished stage.
    again = run([sys.executable, str(REPO / "scripts" / "run_demo.py"), "--quick", "--output_dir", str(out)])
    assert again.stdout.count("done before, reused") == 2 + len(STAGES) - 1 + len(STAGES)
