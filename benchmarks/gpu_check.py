"""GPU check: the three entry points at the Qwen2-VL-2B shape, a few steps each, with the figures the Trainer reports.

    python benchmarks/gpu_check.py --out "$OUT"                # on the GPU machine (scripts/gpu_check.sh runs this)
    python benchmarks/gpu_check.py --dry-run --out /tmp/gc     # the same on CPU with the tiny preset
    python benchmarks/gpu_check.py --build-model DIR [--dry-run]   # only the checkpoint (tests/gpu reuse it)

Each stage is the console script's own ``main`` (``tinyrs-sft train``, ``tinyrs-grpo train``, ``tinyrs-eval run``)
run with the shipped recipe (--config) in a child process with its own time limit; a failed or timed-out stage is
recorded and the next one runs. Figures are read from what the stages already write: the Trainer's log
(``trainer_state.json`` for SFT, ``train_log.jsonl`` for GRPO: train_runtime, samples/s, loss, tokens), tinyrs-eval's
``results.json`` (samples/s) and ``torch.cuda.max_memory_allocated()`` printed by the child at exit. Results:
OUT/gpu_check.json (rewritten after every stage), OUT/gpu_check.txt (the table), OUT/logs/<stage>.log.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any


REPO = Path(__file__).resolve().parents[1]
EVAL_TASK, EVAL_FILE = "cls_aid", "cls_AID.json"
# Qwen/Qwen2-VL-2B-Instruct's config.json: 2,208,985,600 parameters with the 151,936-row (tied) embedding.
QWEN2VL_2B_TEXT = dict(
    vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
    num_key_value_heads=2, max_position_embeddings=32768, rms_norm_eps=1e-6, tie_word_embeddings=True,
    rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
)  # fmt: skip
QWEN2VL_2B_VISION = dict(depth=32, embed_dim=1280, num_heads=16, mlp_ratio=4, hidden_size=1536)
# Sizes and time limits: GPU (real shape; the SFT recipe's image bounds, 512..1280 visual tokens each) and dry run
# (tiny preset, 16 visual tokens; generous limits: a loaded 2-core machine spends most of a stage importing).
SIZES = {
    "gpu": dict(
        pixels=(401408, 1003520), sft_steps=8, sft_batch=8, grpo_steps=2, grpo_batch=8, grpo_tokens=128,
        eval_samples=32, eval_batch=16, eval_tokens=32, budget_s=270, limits_s={"sft": 120, "grpo": 120, "eval": 90},
    ),
    "dry": dict(
        pixels=(12544, 12544), sft_steps=3, sft_batch=2, grpo_steps=2, grpo_batch=4, grpo_tokens=8,
        eval_samples=4, eval_batch=4, eval_tokens=8, budget_s=600, limits_s={"sft": 240, "grpo": 240, "eval": 180},
    ),
}  # fmt: skip
OFFLINE_ENV = {  # there is no network on the GPU machine; a hub lookup would only waste minutes
    "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled",
    "HF_HUB_DISABLE_TELEMETRY": "1", "TOKENIZERS_PARALLELISM": "false",
}  # fmt: skip
# The child's last words: peak accelerator memory (or peak RSS on CPU) of the whole process.
CHILD = """import importlib, json, resource, sys
main = importlib.import_module(sys.argv[1]).main
sys.argv = sys.argv[1:]
try:
    code = main()
finally:
    torch = sys.modules.get("torch")  # a stage that never imported torch used no GPU
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        peak = {"peak_gib": torch.cuda.max_memory_allocated() / 2**30, "memory": "cuda max_memory_allocated"}
    else:
        peak = {"peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "memory": "cpu peak RSS"}
    print("GPU_CHECK_PEAK " + json.dumps(peak), file=sys.stderr, flush=True)
sys.exit(code)
"""


def real_shape_config(config: Any) -> Any:
    """The tiny checkpoint's Qwen2VLConfig (special-token ids kept) grown to the Qwen2-VL-2B shape."""
    d = config.to_dict()
    d["text_config"].update(QWEN2VL_2B_TEXT)
    d["text_config"].pop("layer_types", None)  # derived from num_hidden_layers again
    d["vision_config"].update(QWEN2VL_2B_VISION)
    d["tie_word_embeddings"] = True
    return type(config).from_dict(d)


def build_model(out: Path, real_shape: bool, pixels: tuple[int, int]) -> dict[str, Any]:
    """The tiny checkpoint (tokenizer, processor, chat template); for the real shape its weights are replaced by a
    random Qwen2-VL-2B-shaped model in bf16 (built on the GPU when there is one). Returns the parameter count."""
    import torch
    from transformers import AutoConfig, Qwen2VLForConditionalGeneration

    from tinyrs_demo.tiny_model import build_tiny_model

    build_tiny_model(out, preset="tiny", seed=0, min_pixels=pixels[0], max_pixels=pixels[1])
    model = Qwen2VLForConditionalGeneration.from_pretrained(out)
    if real_shape:
        config, generation = real_shape_config(AutoConfig.from_pretrained(out)), model.generation_config
        for old in out.glob("model*.safetensors*"):
            old.unlink()
        torch.manual_seed(0)
        with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
            model = Qwen2VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
        model.generation_config = generation
        model.save_pretrained(out)
    info = {"path": str(out), "parameters": sum(p.numel() for p in model.parameters()), "real_shape": real_shape}
    (out / "gpu_check_model.json").write_text(json.dumps(info) + "\n", encoding="utf-8")
    return info


def child_env(dry_run: bool, deepspeed: bool) -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", **OFFLINE_ENV)
    if dry_run:
        env.update(CUDA_VISIBLE_DEVICES="", DS_ACCELERATOR="cpu")
    if deepspeed:  # one process without a launcher: what `deepspeed --num_gpus 1` sets
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", LOCAL_WORLD_SIZE="1", MASTER_ADDR="127.0.0.1")
        env["MASTER_PORT"] = str(port)
    return env


def run_stage(module: str, args: list[str], log: Path, limit_s: float, env: dict[str, str]) -> dict[str, Any]:
    """``module``'s console-script ``main`` with ``args`` in a child process, its process group killed at the limit."""
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with log.open("w", encoding="utf-8") as handle:
        handle.write(f"$ {module} {' '.join(args)}\n")
        handle.flush()
        cmd = [sys.executable, "-c", CHILD, module, *args]
        proc = subprocess.Popen(
            cmd, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True
        )
        try:
            status = "ok" if proc.wait(timeout=max(limit_s, 1)) == 0 else "failed"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            status = "timeout"
    result: dict[str, Any] = {"status": status, "seconds": round(time.perf_counter() - t0, 1), "log": log.name}
    text = log.read_text(encoding="utf-8", errors="replace")
    peak = re.findall(r"^GPU_CHECK_PEAK (\{.*\})$", text, re.M)
    if peak:
        result.update(json.loads(peak[-1]))
        result["peak_gib"] = round(result["peak_gib"], 2)
    if status == "timeout":
        result["error"] = f"timed out after {limit_s:.0f} s"
    elif status == "failed":
        lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("GPU_CHECK_")]
        errors = [line for line in lines if re.search(r"error|Error|Exception|Killed", line)]
        result["error"] = (errors or lines or ["no output"])[-1][:300]
    return result


def trainer_figures(output_dir: Path) -> dict[str, Any]:
    """The Trainer's own log of a run: per-step loss, and the final train_runtime / samples/s / train_loss record."""
    jsonl, state = output_dir / "train_log.jsonl", output_dir / "trainer_state.json"
    if jsonl.is_file():
        logs = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines() if line.strip()]
    elif state.is_file():
        logs = json.loads(state.read_text(encoding="utf-8")).get("log_history", [])
    else:
        raise FileNotFoundError(f"{output_dir}: neither train_log.jsonl nor trainer_state.json was written")
    final = next((entry for entry in reversed(logs) if "train_runtime" in entry), None)
    if final is None:
        raise ValueError(f"{output_dir}: the Trainer's log has no train_runtime record (the run did not finish)")
    losses = [e["loss"] for e in logs if isinstance(e.get("loss"), (int, float)) and "train_runtime" not in e]
    tokens = [e.get("num_tokens", e.get("num_input_tokens_seen")) for e in logs]
    tokens = [t for t in tokens if isinstance(t, (int, float))]
    out = {"steps": final.get("step"), "train_runtime": final["train_runtime"], "train_loss": final.get("train_loss")}
    out["samples_per_s"], out["steps_per_s"] = (
        final.get("train_samples_per_second"),
        final.get("train_steps_per_second"),
    )
    out["loss_first_last"] = [losses[0], losses[-1]] if losses else None
    if tokens and final["train_runtime"]:
        out["tokens_per_s"] = round(max(tokens) / final["train_runtime"], 1)
    return out


def eval_figures(results_file: Path, task: str = EVAL_TASK) -> dict[str, Any]:
    """samples/s and timings of one benchmark from tinyrs-eval's results.json."""
    results = json.loads(results_file.read_text(encoding="utf-8"))
    bench = results.get("benchmarks", {}).get(task)
    if bench is None:
        raise ValueError(f"{results_file}: no benchmark {task!r}")
    timings = {"wall_s": (bench.get("timings") or {}).get("wall_s")}
    timings["model_load_s"] = (results.get("timings") or {}).get("model_load_s")
    return {"samples": bench.get("n_inferred"), "samples_per_s": bench.get("samples_per_s"), **timings}


def junit_summary(path: Path) -> str:
    """'5 passed, 1 skipped' from pytest's JUnit XML."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    n = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    passed = n["tests"] - n["failures"] - n["errors"] - n["skipped"]
    return f"{passed} passed, {n['failures']} failed, {n['errors']} errors, {n['skipped']} skipped"


def eval_root(data: Path, work: Path, samples: int) -> Path:
    """The demo's cls_AID records repeated to ``samples`` (a batch needs more than the demo's handful)."""
    src = data / "eval"
    records = json.loads((src / EVAL_FILE).read_text(encoding="utf-8"))
    images = str((src / "cls_AID").resolve())
    root = work / "eval_root"
    root.mkdir(parents=True, exist_ok=True)
    rows = [dict(records[i % len(records)], image_path=images) for i in range(samples)]
    (root / EVAL_FILE).write_text(json.dumps(rows), encoding="utf-8")
    return root


def stage_commands(args: argparse.Namespace, size: dict[str, Any], data: Path) -> dict[str, tuple[str, list[str]]]:
    """The three stages: console-script module and its arguments (the shipped recipe plus overrides)."""
    import importlib.util

    dry, work, model = args.dry_run, Path(args.work_dir), str(args.model)
    attn = "flash_attention_2" if not dry and importlib.util.find_spec("flash_attn") else "sdpa"
    lo, hi = (str(p) for p in size["pixels"])
    sft = ["train", "--config", "sft/configs/sft.yaml", "--model_name_or_path", model]
    sft += ["--dataset_name", str(data / "sft.json"), "--image_folder", str(data / "images")]
    sft += ["--output_dir", str(work / "sft"), "--deepspeed", "sft/configs/deepspeed/zero3.json"]
    sft += ["--max_steps", str(size["sft_steps"]), "--per_device_train_batch_size", str(size["sft_batch"])]
    sft += ["--gradient_accumulation_steps", "1", "--save_strategy", "no", "--report_to", "none"]
    sft += ["--image_min_pixels", lo, "--image_max_pixels", hi, "--disable_flash_attn2", str(attn == "sdpa")]
    grpo = ["train", "--config", "grpo/configs/tinyrs_r1.yaml", "--model_name_or_path", model]
    grpo += ["--dataset_name", str(data / "grpo"), "--output_dir", str(work / "grpo")]
    grpo += ["--deepspeed", "grpo/configs/deepspeed/zero3.json", "--attn_implementation", attn]
    grpo += ["--max_steps", str(size["grpo_steps"]), "--per_device_train_batch_size", str(size["grpo_batch"])]
    grpo += ["--max_completion_length", str(size["grpo_tokens"]), "--min_pixels", lo, "--max_pixels", hi]
    grpo += ["--judge", "none", "--report_to", "none", "--log_completions", "false", "--save_strategy", "no"]
    ev = ["run", "--config", "eval/configs/tinyrs_instant.yaml", "--model_name_or_path", model]
    ev += ["--data_root", str(eval_root(data, work, size["eval_samples"])), "--output_dir", str(work / "eval")]
    ev += ["--task", EVAL_TASK, "--batch_size", str(size["eval_batch"]), "--max_new_tokens", str(size["eval_tokens"])]
    ev += ["--force_inference", "true", "--dtype", "float32" if dry else "bfloat16"]
    if dry:
        sft += ["--use_cpu", "true", "--bf16", "false", "--tf32", "false", "--dataloader_num_workers", "0"]
        grpo += ["--use_cpu", "true", "--bf16", "false", "--dtype", "float32", "--gradient_checkpointing", "false"]
    return {"sft": ("tinyrs_sft.cli", sft), "grpo": ("tinyrs_grpo.cli", grpo), "eval": ("tinyrs_eval.cli", ev)}


def format_table(report: dict[str, Any]) -> str:
    def num(value: Any, spec: str = ".3g") -> str:
        return "-" if value is None else format(value, spec)

    mode = "dry run, CPU, tiny preset" if report["dry_run"] else "real shape"
    lines = [f"GPU check ({mode}) on {report['device']}, {report['created']}, {report.get('total_s', '?')} s"]
    if report.get("model"):
        lines.append(f"model: {report['model'].get('parameters', 0) / 1e6:,.1f} M parameters")
    if report.get("pytest"):
        lines.append(f"pytest -m gpu tests/gpu: {report['pytest']}")
    head = ("stage", "status", "seconds", "runtime s", "samples/s", "tokens/s", "loss first>last", "peak GiB")
    rows = [head]
    for name, st in report["stages"].items():
        loss = st.get("loss_first_last")
        rows.append((
            name, st["status"], num(st.get("seconds"), ".1f"), num(st.get("train_runtime") or st.get("wall_s"), ".1f"),
            num(st.get("samples_per_s")), num(st.get("tokens_per_s")),
            f"{loss[0]:.3f}>{loss[1]:.3f}" if loss else "-", num(st.get("peak_gib"), ".2f"),
        ))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines += [f"{name}: {st['error']}" for name, st in report["stages"].items() if st.get("error")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", dest="dry_run", action="store_true", help="CPU, tiny preset, a few seconds a stage")
    p.add_argument("--out", default=os.environ.get("OUT") or "gpu_check_out", help="results folder (default $OUT)")
    p.add_argument("--work-dir", dest="work_dir", default="/tmp/gpu_check", help="scratch folder")
    p.add_argument("--model", type=Path, default=None, help="checkpoint (default WORK/model, built when missing)")
    p.add_argument("--build-model", dest="build_model", type=Path, default=None, help="only build this checkpoint")
    p.add_argument("--stages", default="sft,grpo,eval", help="comma list of sft, grpo, eval")
    p.add_argument("--budget-s", dest="budget_s", type=float, default=None, help="all stages (GPU 270 s, dry 600 s)")
    p.add_argument("--junit", type=Path, default=None, help="pytest's JUnit XML, summarised in the table")
    args = p.parse_args(argv)
    size = SIZES["dry" if args.dry_run else "gpu"]
    if args.build_model is not None:
        if not (args.build_model / "gpu_check_model.json").is_file():
            info = build_model(args.build_model, not args.dry_run, size["pixels"])
            print(f"built {info['path']}: {info['parameters'] / 1e6:.1f} M parameters")
        return 0
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    if set(stages) - {"sft", "grpo", "eval"}:
        p.error(f"--stages: unknown {sorted(set(stages) - {'sft', 'grpo', 'eval'})}; choose from sft, grpo, eval")
    t_start, work, out = time.perf_counter(), Path(args.work_dir), Path(args.out)
    budget = args.budget_s or size["budget_s"]
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "dry_run": args.dry_run, "device": "cpu", "sizes": size, "stages": {},
    }  # fmt: skip

    def save() -> None:
        report["total_s"] = round(time.perf_counter() - t_start, 1)
        (out / "gpu_check.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    import torch

    if torch.cuda.is_available() and not args.dry_run:
        report["device"] = torch.cuda.get_device_name(0)
    args.model = args.model or work / "model"
    if not (args.model / "gpu_check_model.json").is_file():
        build_model(args.model, not args.dry_run, size["pixels"])
    report["model"] = json.loads((args.model / "gpu_check_model.json").read_text(encoding="utf-8"))
    if args.junit and args.junit.is_file():
        report["pytest"] = junit_summary(args.junit)
    from tinyrs_demo.writers import build_demo_data

    data = build_demo_data(work / "data", seed=0, scale="small")
    commands = stage_commands(args, size, data)
    for name in stages:
        left = budget - (time.perf_counter() - t_start)
        if left < 10:
            report["stages"][name] = {"status": "skipped", "error": f"no time left of the {budget:.0f} s budget"}
            save()
            continue
        module, stage_args = commands[name]
        shutil.rmtree(work / name, ignore_errors=True)  # a stale folder would be resumed from or read
        env = child_env(args.dry_run, deepspeed=name != "eval")
        result = run_stage(module, stage_args, out / "logs" / f"{name}.log", min(size["limits_s"][name], left), env)
        if result["status"] == "ok":
            try:
                figures = eval_figures(work / "eval" / "results.json") if name == "eval" else None
                result.update(figures or trainer_figures(work / name))
            except (OSError, ValueError, KeyError) as err:
                result.update(status="failed", error=f"{type(err).__name__}: {err}")
        report["stages"][name] = result
        save()
        print(f"[gpu_check] {name}: {result['status']} ({result['seconds']} s)", file=sys.stderr, flush=True)
    save()
    table = format_table(report)
    (out / "gpu_check.txt").write_text(table + "\n", encoding="utf-8")
    print(table)
    return 0 if all(st["status"] == "ok" for st in report["stages"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
