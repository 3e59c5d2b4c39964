"""The launch scripts under scripts/ parse against the real entry points (DRY_RUN=1: arguments only, no model).

A renamed or removed flag must break this test, not a user's cluster job.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[1]
# CPU machines reject --bf16/--tf32; the scripts pass extra arguments through to the trainer.
CPU_SFT = ["--use_cpu", "True", "--bf16", "False", "--tf32", "False"]


def run_script(script: str, extra: list[str], env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, DRY_RUN="1", **env_extra)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return subprocess.run(
        ["bash", str(REPO / "scripts" / script), *extra],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("script", ["pretrain.sh", "sft.sh", "cot_sft.sh"])
def test_sft_scripts_parse(script, demo_data_dir, tiny_model_dir, tmp_path):
    # No CPU flags: the SFT dry run checks paths and prints settings without probing for a GPU (bf16/tf32 as given).
    env = {
        "DATA_PATH": str(demo_data_dir / "sft.json"),
        "IMAGE_FOLDER": str(demo_data_dir / "images"),
        "MODEL_NAME": str(tiny_model_dir),
        "OUTPUT_DIR": str(tmp_path / "out"),
    }
    proc = run_script(script, [], env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "dry run: arguments are valid" in proc.stderr
    # The seed recipe's settings arrive in the trainer (global batch 128 on 4 GPUs: 16 x 2 accumulation).
    assert "image_min_pixels=401408" in proc.stderr and "image_max_pixels=1003520" in proc.stderr
    assert "global batch 128 = 16 per device x 2 accumulation x 4 processes" in proc.stderr
    assert "DeepSpeed ZeRO stage 3" in proc.stderr and "precision bf16" in proc.stderr
    # TRL's names reach the trainer; nothing is said about aliases or no-effect flags (the script uses neither).
    assert f"model_name_or_path='{env['MODEL_NAME']}'" in proc.stderr and "is an alias of" not in proc.stderr
    assert "Warning" not in proc.stderr and "deprecated" not in proc.stderr


@pytest.mark.slow  # ~10 s of subprocess start-up; tests/sft/test_dry_run.py covers the same check in-process
def test_sft_script_dry_run_fails_without_data(tiny_model_dir, tmp_path):
    # It used to say "arguments are valid" for a missing data file.
    env = {"DATA_PATH": str(tmp_path / "missing.json"), "MODEL_NAME": str(tiny_model_dir)}
    proc = run_script("sft.sh", [], {**env, "IMAGE_FOLDER": str(tmp_path), "OUTPUT_DIR": str(tmp_path / "out")})
    assert proc.returncode == 1 and "missing.json: data file not found" in proc.stderr


def test_sft_script_rejects_unknown_flag():
    proc = run_script("sft.sh", [*CPU_SFT, "--no_such_flag", "1"], {})
    assert proc.returncode != 0
    assert "no_such_flag" in proc.stderr


def test_grpo_slurm_parses():
    # no CPU flags: the dry run must work as is on a login node without a GPU (--use_cpu is implied there)
    proc = run_script("grpo.slurm", [], {"SLURM_JOB_ID": "123", "CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "arguments are valid" in proc.stderr
    assert "beta=0.001" in proc.stderr and "num_generations=4" in proc.stderr
    assert "max_pixels=checkpoint's" in proc.stderr and "use_bias_correction_kl=False" in proc.stderr


def test_eval_script_checks_flags_and_data_layout(demo_data_dir, tiny_model_dir, tmp_path):
    out = tmp_path / "eval_out"
    env = {"DATA_ROOT": str(demo_data_dir / "eval"), "OUTPUT_DIR": str(out)}
    # No MODEL_TYPE: the script picks the backend that can run here. lmdeploy imports (a stand-in package), but without
    # a CUDA GPU that is hf; it used to default to lmdeploy and fail on the first command a new user ran.
    fake = tmp_path / "fake_site"
    (fake / "lmdeploy").mkdir(parents=True)
    (fake / "lmdeploy" / "__init__.py").write_text("")
    expected = "lmdeploy" if _cuda_visible() else "hf"
    # The default model is a hub id that is not downloaded here: offline, the dry run names the download.
    proc = run_script("eval.sh", [], {**env, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(fake)})
    assert f"eval.sh: MODEL_TYPE={expected} (" in proc.stderr, proc.stderr[-2000:]
    assert proc.returncode == 1 and "(hf download aybora/Qwen2-VL-TinyRS-R1)" in proc.stderr
    assert "huggingface-cli" not in proc.stderr
    env["MODEL_TYPE"] = "hf"  # an explicit backend wins, and is not announced
    env["MODEL_NAME_OR_PATH"] = str(tiny_model_dir)
    proc = run_script("eval.sh", [], env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "eval.sh: MODEL_TYPE" not in proc.stderr
    assert not any(out.rglob("results.json")), "a dry run must not write results"
    # Explicitly asking for lmdeploy without it installed is refused with the way out named.
    proc = run_script("eval.sh", [], {**env, "MODEL_TYPE": "lmdeploy"})
    assert proc.returncode != 0 and "--model_type hf" in proc.stderr


def _cuda_visible() -> bool:
    import torch

    return torch.cuda.is_available()
