"""The demo's SFT and GRPO steps under DeepSpeed ZeRO-2 and ZeRO-3, side by side on one CPU process.

Needs a finished demo (``make demo``): it trains from ``<demo_dir>/pretrain`` on the demo's SFT data and runs GRPO
from ``<demo_dir>/cot_sft``, with the demo's launchers, recipes and thread count, for a few steps each:

    .venv/bin/python benchmarks/demo_zero_stage.py --demo_dir demo_out --sft_steps 150 --grpo_steps 24

Each configuration runs twice, in the order A B B A, so that a machine that speeds up or slows down during the run
weighs on both alike. The time is the trainer's own ``train_runtime`` (the step loop, without start-up and saving).
It also reports how far apart the two SFT runs' weights end: ZeRO-2 and ZeRO-3 do the same arithmetic in another
order, so they should agree to float rounding.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
STAGES = ("zero2", "zero3")
OFFLINE_ENV = {  # the demo's checkpoints are local; a hub lookup would only wait for a network there is not
    "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled",
    "HF_HUB_DISABLE_TELEMETRY": "1", "TOKENIZERS_PARALLELISM": "false",
}  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(threads: int) -> dict[str, str]:
    env = dict(os.environ, **OFFLINE_ENV, DS_ACCELERATOR="cpu")
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def sft_command(demo: Path, zero: str, steps: int, out: Path) -> list[str]:
    return [
        str(BIN / "deepspeed"), "--num_gpus", "1", "--master_port", str(free_port()), "--module", "tinyrs_sft.train",
        "--config", str(REPO / "sft" / "configs" / "cpu_demo.yaml"),
        "--deepspeed", str(REPO / "sft" / "configs" / "deepspeed" / f"{zero}.json"),
        "--model_name_or_path", str(demo / "pretrain"),
        "--dataset_name", str(demo / "data" / "sft.json"),
        "--training_stage", "sft",
        "--image_folder", str(demo / "data" / "images"),
        "--output_dir", str(out),
        "--max_steps", str(steps),
        "--learning_rate", "3e-4", "--merger_lr", "3e-4",
    ]  # fmt: skip


def grpo_command(demo: Path, zero: str, steps: int, out: Path) -> list[str]:
    return [
        str(BIN / "torchrun"), "--nproc_per_node", "1", "--master_port", str(free_port()), "-m", "tinyrs_grpo.train",
        "--config", str(REPO / "grpo" / "configs" / "cpu_demo.yaml"),
        "--deepspeed", str(REPO / "grpo" / "configs" / "deepspeed" / f"{zero}.json"),
        "--model_name_or_path", str(demo / "cot_sft"),
        "--dataset_name", str(demo / "data" / "grpo"),
        "--output_dir", str(out),
        "--max_steps", str(steps),
    ]  # fmt: skip


def train_runtime(cmd: list[str], env: dict[str, str], log: Path) -> float:
    """Runs one training command and returns the trainer's ``train_runtime`` in seconds."""
    with log.open("w", encoding="utf-8") as handle:
        proc = subprocess.run(cmd, env=env, stdout=handle, stderr=subprocess.STDOUT, check=False)
    text = log.read_text(encoding="utf-8", errors="replace")
    if proc.returncode:
        raise SystemExit(f"{cmd[0]} failed (exit {proc.returncode}); log: {log}")
    found = re.findall(r"'train_runtime': '?([0-9.]+)", text)
    if not found:
        raise SystemExit(f"no train_runtime in {log}")
    return float(found[-1])


def weight_gap(a: Path, b: Path) -> float:
    from safetensors.torch import load_file

    left, right = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    if left.keys() != right.keys():
        raise SystemExit(f"{a} and {b} hold different tensors")
    return max((left[k] - right[k]).abs().max().item() for k in left)


def measure(kind: str, command, demo: Path, steps: int, env: dict[str, str], work: Path) -> dict:
    seconds: dict[str, list[float]] = {zero: [] for zero in STAGES}
    for i, zero in enumerate((*STAGES, *reversed(STAGES))):  # A B B A
        out = work / f"{kind}_{zero}_{i}"
        seconds[zero].append(train_runtime(command(demo, zero, steps, out), env, work / f"{kind}_{zero}_{i}.log"))
    per_step = {zero: sum(times) / len(times) / steps for zero, times in seconds.items()}
    result = {
        "steps": steps,
        "train_runtime_s": seconds,
        "s_per_step": {zero: round(v, 4) for zero, v in per_step.items()},
        "zero3_over_zero2": round(per_step["zero3"] / per_step["zero2"], 3),
    }
    if kind == "sft":
        result["max_weight_difference"] = weight_gap(work / "sft_zero2_0", work / "sft_zero3_1")
        result["zero2_repeat_max_difference"] = weight_gap(work / "sft_zero2_0", work / "sft_zero2_3")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo_dir", type=Path, default=REPO / "demo_out")
    parser.add_argument("--sft_steps", type=int, default=150)
    parser.add_argument("--grpo_steps", type=int, default=24, help="0 skips GRPO")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per process (the demo pins 2)")
    args = parser.parse_args()
    demo = args.demo_dir.resolve()
    for needed in ("pretrain", "cot_sft", "data/sft.json", "data/grpo"):
        if not (demo / needed).exists():
            raise SystemExit(f"{demo / needed} is missing: run `make demo` first")
    env = environment(args.threads)
    with tempfile.TemporaryDirectory(prefix="demo_zero_stage_") as tmp:
        work = Path(tmp)
        report = {"threads": args.threads, "sft": measure("sft", sft_command, demo, args.sft_steps, env, work)}
        if args.grpo_steps:
            report["grpo"] = measure("grpo", grpo_command, demo, args.grpo_steps, env, work)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
