"""Figures the GPU check reports, computed from the per-step records of ``gpu_instrument.py`` (pure functions).

Definitions (also in benchmarks/gpu/README.md):
- SFT tokens/s: non-padding LLM input tokens (text and image tokens) per second of optimizer-step wall time, over the
  steps after the warm-up steps.
- MFU: 6 * N * tokens/s / peak dense bf16 FLOP/s, N = all parameters (tied embeddings once). The usual convention:
  it leaves out attention FLOPs and the vision tower's 4 patches per merged image token, and counts a gradient-
  checkpointed step as 6N (the recomputation is not useful work).
- GRPO: per step, generation = TRL's ``transformers.generate`` timer; scoring = the rest of ``_prepare_inputs``
  (old/reference log-probabilities and rewards); training = step wall time - ``_prepare_inputs`` (forward, backward,
  optimizer). tokens/s = (prompt + completion tokens of the step) / step wall time, per GPU: EasyR1's footing.
"""

from __future__ import annotations

from statistics import mean
from typing import Any


# Dense bf16 peak FLOP/s (no sparsity), by a substring of torch.cuda.get_device_name(); first match wins.
PEAK_BF16_FLOPS: list[tuple[str, float]] = [
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),  # SXM (the name reads "NVIDIA H100 80GB HBM3")
    ("H200", 989e12),
    ("H800", 989e12),
    ("B200", 2250e12),
    ("A100", 312e12),
    ("L40S", 362e12),
]

GENERATE_TIMERS = ("transformers.generate", "transformers.generate_batch", "vLLM.generate")


def peak_bf16_flops(device_name: str | None) -> float | None:
    """Peak dense bf16 FLOP/s of a GPU from its name, None when unknown (or CPU)."""
    if not device_name:
        return None
    for key, flops in PEAK_BF16_FLOPS:
        if key.lower() in device_name.lower():
            return flops
    return None


def measured_steps(steps: list[dict[str, Any]], warmup: int) -> list[dict[str, Any]]:
    """The steps after ``warmup`` (at least one step is kept when there are any)."""
    if not steps:
        return []
    skip = min(max(warmup, 0), len(steps) - 1)
    return steps[skip:]


def _r(value: float | None, ndigits: int = 4) -> float | None:
    return None if value is None else round(value, ndigits)


def sft_summary(
    stats: dict[str, Any],
    n_params: int | None,
    device_name: str | None,
    warmup: int,
    batch_size: int | None = None,
) -> dict[str, Any]:
    """tokens/s, samples/s, MFU and peak memory of an SFT run."""
    steps = measured_steps(stats.get("steps", []), warmup)
    if not steps:
        raise ValueError("no optimizer step was recorded")
    seconds = sum(s["seconds"] for s in steps)
    tokens = sum(s["tokens"] for s in steps)
    if tokens <= 0:
        raise ValueError("no tokens were counted (the Trainer's token counter was off)")
    tokens_per_s = tokens / seconds
    peak = peak_bf16_flops(device_name)
    mfu = 6 * n_params * tokens_per_s / peak if (peak and n_params) else None
    out: dict[str, Any] = {
        "steps_total": len(stats.get("steps", [])),
        "steps_measured": len(steps),
        "step_s_mean": _r(seconds / len(steps)),
        "tokens_per_step_mean": _r(tokens / len(steps), 1),
        "tokens_per_s": _r(tokens_per_s, 1),
        "mfu": _r(mfu),
        "peak_bf16_tflops": _r(peak / 1e12, 1) if peak else None,
        "n_params": n_params,
        "memory": stats.get("memory"),
        "trainer": stats.get("trainer_info"),
    }
    if batch_size:
        out["samples_per_s"] = _r(batch_size * len(steps) / seconds, 3)
    losses = [log["loss"] for log in stats.get("logs", []) if isinstance(log.get("loss"), (int, float))]
    if losses:
        out["loss_first_last"] = [_r(losses[0]), _r(losses[-1])]
    return out


def grpo_step_split(step: dict[str, Any]) -> dict[str, float]:
    """Seconds of one GRPO step split into generation, scoring and training (see the module docstring)."""
    profile = step.get("profile") or {}

    def timer(suffix: str) -> float:
        return sum(v for k, v in profile.items() if k.endswith("." + suffix) or k == suffix)

    total = float(step["seconds"])
    generation = sum(timer(name) for name in GENERATE_TIMERS)
    prepare = timer("_prepare_inputs")
    if prepare <= 0:
        raise ValueError(f"step {step.get('step')}: TRL's _prepare_inputs timer is missing (profiling hook off?)")
    return {
        "total_s": total,
        "generation_s": generation,
        "scoring_s": max(prepare - generation, 0.0),
        "training_s": max(total - prepare, 0.0),
    }


def grpo_summary(stats: dict[str, Any], warmup: int, num_gpus: int = 1) -> dict[str, Any]:
    """Mean seconds per step (total, generation, scoring, training) and tokens/s per GPU of a GRPO run."""
    steps = measured_steps(stats.get("steps", []), warmup)
    if not steps:
        raise ValueError("no optimizer step was recorded")
    splits = [grpo_step_split(s) for s in steps]
    seconds = sum(s["seconds"] for s in steps)
    tokens = sum(s["tokens"] for s in steps)
    lengths = [log["completions/mean_length"] for log in stats.get("logs", []) if "completions/mean_length" in log]
    return {
        "steps_total": len(stats.get("steps", [])),
        "steps_measured": len(steps),
        "step_s_mean": _r(mean(x["total_s"] for x in splits)),
        "generation_s_mean": _r(mean(x["generation_s"] for x in splits)),
        "scoring_s_mean": _r(mean(x["scoring_s"] for x in splits)),
        "training_s_mean": _r(mean(x["training_s"] for x in splits)),
        "tokens_per_step_mean": _r(tokens / len(steps), 1),
        "tokens_per_s_per_gpu": _r(tokens / seconds / max(num_gpus, 1), 1),
        "completion_length_mean": _r(mean(lengths), 1) if lengths else None,
        "memory": stats.get("memory"),
        "trainer": stats.get("trainer_info"),
    }


def eval_summary(results: dict[str, Any], task: str) -> dict[str, Any]:
    """samples/s and timings of one benchmark from tinyrs-eval's results.json."""
    bench = results.get("benchmarks", {}).get(task)
    if bench is None:
        raise ValueError(f"results.json has no benchmark {task!r}")
    return {
        "task": task,
        "n_samples": bench.get("n_samples"),
        "n_inferred": bench.get("n_inferred"),
        "samples_per_s": bench.get("samples_per_s"),
        "timings": bench.get("timings"),
        "model_load_s": results.get("timings", {}).get("model_load_s"),
        "errors": bench.get("errors"),
    }
