#!/usr/bin/env python
"""Throughput of the tinyrs_eval runner: batched hf generation against one sample at a time (the original's loop).

Both configurations run in this one process on the same checkpoint and data, after a warm-up; model loading is left
out of the timings. Also reported: the share of evaluation time spent outside the model (scoring, JSONL writing,
image loading), and whether the batched predictions equal the one-at-a-time ones. On a GPU machine the lmdeploy
backend is measured as well when the package is installed.

CPU, tiny model and demo data built on the fly (no arguments needed):
    python benchmarks/eval_throughput.py --cpu_threads 1
A real checkpoint and data_root:
    python benchmarks/eval_throughput.py --model_path CKPT --data_root DATA --task cls_aid,rs_vg --limit 64
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path


os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _evaluate(common: list[str], out: Path, run_name: str, extra: list[str]) -> dict:
    from tinyrs_eval.config import parse_run_args
    from tinyrs_eval.run import main as evaluate

    cfg = parse_run_args([*common, "--output_dir", str(out), "--run_name", run_name, "--force_inference", "true",
                          "--log_level", "WARNING", *extra])  # fmt: skip
    results = evaluate(cfg)
    assert results is not None
    return results


def _summarise(results: dict) -> dict:
    benches = results["benchmarks"].values()
    total = {k: sum(b["timings"].get(k, 0.0) for b in benches) for k in
             ("wall_s", "generate_s", "score_s", "write_s", "images_s")}  # fmt: skip
    n = sum(b["n_inferred"] for b in benches)
    return {
        "samples": n,
        "wall_s": round(total["wall_s"], 3),
        "samples_per_s": round(n / total["wall_s"], 3),
        "generate_share": round(total["generate_s"] / total["wall_s"], 4),
        "score_and_write_share": round((total["score_s"] + total["write_s"]) / total["wall_s"], 4),
        "score_write_images_share": round(
            (total["score_s"] + total["write_s"] + total["images_s"]) / total["wall_s"], 4
        ),
    }


def _predictions(out: Path, results: dict) -> list[str]:
    preds = []
    for b in results["benchmarks"].values():
        with open(out / b["predictions"], encoding="utf-8") as f:
            preds += [json.loads(line)["pred"] for line in f]
    return preds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_path", default=None, help="checkpoint (default: build the tiny test model)")
    parser.add_argument("--data_root", default=None, help="benchmark data_root (default: build the demo data)")
    parser.add_argument("--task", default="all")
    parser.add_argument("--limit", type=int, default=8, help="samples per benchmark")
    parser.add_argument("--max_new_tokens", type=int, default=16)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--prompt_style", default="tinyrs")
    parser.add_argument("--cpu_threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--skip_lmdeploy", action="store_true", help="do not measure lmdeploy even on a GPU")
    parser.add_argument("--output_json", default=None, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the working folder (models, data, predictions)")
    args = parser.parse_args()

    import torch

    if args.cpu_threads:
        torch.set_num_threads(args.cpu_threads)
    work = Path(tempfile.mkdtemp(prefix="eval_throughput_"))
    model_path = args.model_path
    if model_path is None:
        from tinyrs_demo.tiny_model import build_tiny_model

        model_path = str(build_tiny_model(work / "tiny", preset="tiny", seed=0))
    data_root = args.data_root
    if data_root is None:
        from tinyrs_demo.writers import build_demo_data

        data_root = str(Path(build_demo_data(work / "demo", seed=0, scale="small")) / "eval")

    common = ["--model_path", model_path, "--data_root", data_root, "--task", args.task, "--limit", str(args.limit),
              "--max_new_tokens", str(args.max_new_tokens), "--prompt_style", args.prompt_style]  # fmt: skip
    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name(0) if cuda else f"CPU ({torch.get_num_threads()} torch threads)"
    print(f"device: {device}; model: {model_path}; data: {data_root}; task {args.task}, limit {args.limit}, "
          f"max_new_tokens {args.max_new_tokens}")  # fmt: skip

    t0 = time.perf_counter()
    warmup = ["--model_path", model_path, "--data_root", data_root, "--task", "cls_aid", "--limit", "2",
              "--max_new_tokens", "4", "--prompt_style", args.prompt_style]  # fmt: skip
    _evaluate(warmup, work / "warmup", "w", ["--model_type", "hf", "--batch_size", "2"])
    print(f"warm-up done in {time.perf_counter() - t0:.1f} s")

    figures: dict[str, dict] = {}
    preds: dict[str, list[str]] = {}
    batched = ["--model_type", "hf", "--batch_size", str(args.batch_size)]
    configs = [("hf, batch 1 (one at a time)", ["--model_type", "hf", "--batch_size", "1"]),
               (f"hf, batch {args.batch_size}", batched)]  # fmt: skip
    if cuda and not args.skip_lmdeploy:
        import importlib.util

        if importlib.util.find_spec("lmdeploy") is not None:
            configs.append((f"lmdeploy, batch {args.batch_size}",
                            ["--model_type", "lmdeploy", "--batch_size", str(args.batch_size)]))  # fmt: skip
        else:
            print("lmdeploy not installed: GPU comparison limited to hf")
    for i, (label, extra) in enumerate(configs):
        out = work / f"run{i}"
        results = _evaluate(common, out, f"r{i}", extra)
        figures[label] = _summarise(results)
        preds[label] = _predictions(out, results)

    labels = list(figures)
    base = figures[labels[0]]["samples_per_s"]
    print()
    print("| configuration | samples | wall s | samples/s | speed-up | model share | scoring+write | +image load |")
    print("|---|---|---|---|---|---|---|---|")
    for label in labels:
        f = figures[label]
        f["speedup_vs_batch1"] = round(f["samples_per_s"] / base, 2)
        print(f"| {label} | {f['samples']} | {f['wall_s']:.2f} | {f['samples_per_s']:.2f} | "
              f"{f['speedup_vs_batch1']:.2f}x | {100 * f['generate_share']:.1f}% | "
              f"{100 * f['score_and_write_share']:.2f}% | {100 * f['score_write_images_share']:.2f}% |")  # fmt: skip
    for label in labels[1:]:
        diff = sum(a != b for a, b in zip(preds[labels[0]], preds[label]))
        figures[label]["predictions_differing_from_batch1"] = diff
        print(f"{label}: {diff} of {len(preds[label])} predictions differ from one-at-a-time")
    if args.output_json:
        Path(args.output_json).write_text(json.dumps({"device": device, "figures": figures}, indent=2))
    if args.keep:
        print(f"working folder kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
