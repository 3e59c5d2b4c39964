"""ZeRO-3 on CUDA: ``tinyrs-sft train`` with the shipped zero3.json saves a model whose tensor names and shapes are the
base checkpoint's (gathered, not the empty ZeRO-3 partitions), loads back without missing or unexpected keys, and
holds the trained weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import free_port


pytestmark = pytest.mark.gpu

REPO = Path(__file__).resolve().parents[2]


def train_zero3(model_dir: Path, data_dir: Path, out: Path, extra: list[str]) -> subprocess.CompletedProcess:
    """Two optimizer steps through the console script's main in one process, as `deepspeed --num_gpus 1` runs it."""
    env = dict(os.environ, RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", LOCAL_WORLD_SIZE="1")
    env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    cmd = [sys.executable, "-m", "tinyrs_sft.cli", "train", "--model_name_or_path", str(model_dir)]
    cmd += ["--dataset_name", str(data_dir / "sft.json"), "--image_folder", str(data_dir / "images")]
    cmd += ["--output_dir", str(out), "--deepspeed", str(REPO / "sft" / "configs" / "deepspeed" / "zero3.json")]
    cmd += ["--max_steps", "2", "--per_device_train_batch_size", "2", "--learning_rate", "1e-2"]
    cmd += ["--image_min_pixels", "12544", "--image_max_pixels", "12544", "--disable_flash_attn2", "true"]
    cmd += ["--save_strategy", "no", "--report_to", "none", "--dataloader_num_workers", "0", *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=300)


def check_saved_model(base_dir: Path, out: Path) -> None:
    from safetensors.torch import load_file
    from transformers import AutoModelForImageTextToText

    saved = {k: v for f in out.glob("*.safetensors") for k, v in load_file(f).items()}
    base = {k: v for f in base_dir.glob("*.safetensors") for k, v in load_file(f).items()}
    # Gathered at save (stage3_gather_16bit_weights_on_model_save), not the empty ZeRO-3 partitions.
    assert sum(v.numel() for v in saved.values()) == sum(v.numel() for v in base.values())
    assert all(v.numel() > 0 for v in saved.values())
    model, info = AutoModelForImageTextToText.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    trained = dict(model.named_parameters())
    start = dict(AutoModelForImageTextToText.from_pretrained(base_dir).named_parameters())
    assert {k: tuple(v.shape) for k, v in trained.items()} == {k: tuple(v.shape) for k, v in start.items()}
    # Two Adam steps at lr 1e-2 move a weight by about 0.02; bf16 rounding alone by about 1e-4.
    changed = [k for k in start if (start[k].float() - trained[k].float()).abs().max() > 1e-3]
    assert len(changed) > len(start) // 2, "the saved weights should be the trained ones"


def test_zero3_save_loads_with_the_base_names(cuda, tiny_model_dir, demo_data_dir, tmp_path):
    out = tmp_path / "sft"
    proc = train_zero3(tiny_model_dir, demo_data_dir, out, ["--bf16", "true"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_saved_model(tiny_model_dir, out)
