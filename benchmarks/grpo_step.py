"""Seconds per GRPO step and its split: generation, reward, scoring forward (no grad), forward/backward.

CPU, tiny offline Qwen2-VL on the demo GRPO data (builds both in a temporary folder):
    python benchmarks/grpo_step.py --preset tiny --steps 6

GPU, Qwen2-VL-2B shape with random weights (skipped without CUDA), HF generate or vLLM colocate:
    python benchmarks/grpo_step.py --preset 2b --steps 4 --max_completion_length 256
    python benchmarks/grpo_step.py --preset 2b --steps 4 --max_completion_length 256 --use_vllm

The split comes from timing GRPOTrainer's own methods on the instance: ``_generate`` (prompt tokenisation,
sampling, decoding), ``_calculate_rewards``, the rest of ``_prepare_inputs`` (old/reference log-prob forwards,
advantages) and the remainder of ``training_step`` (policy forward + backward). The first step is a warm-up and
left out of the means.
"""

from __future__ import annotations

import argparse
import functools
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path


# Qwen2-VL-2B-Instruct dimensions (config.json of the released model).
QWEN2VL_2B = dict(
    hidden_size=1536,
    intermediate_size=8960,
    num_hidden_layers=28,
    num_attention_heads=12,
    num_key_value_heads=2,
    mrope_section=[16, 24, 24],
    vision_depth=32,
    vision_embed_dim=1280,
    vision_num_heads=16,
)


def build_2b_shape(tiny_dir: Path, out: Path) -> Path:
    """A Qwen2-VL with the 2B model's dimensions, random weights, and the tiny checkpoint's tokenizer/processor.

    The vocabulary stays the tiny tokenizer's (no real Qwen2 vocabulary offline), so the model has about 2.0 B
    parameters instead of 2.2 B: the 151,936 x 1536 embedding is the difference. Sampled ids must decode, hence the
    small vocabulary.
    """
    import torch
    from transformers import AutoConfig, AutoProcessor, Qwen2VLForConditionalGeneration

    config = AutoConfig.from_pretrained(tiny_dir)
    text, vision, dims = config.text_config, config.vision_config, QWEN2VL_2B
    for key in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads"):
        setattr(text, key, dims[key])
    text.rope_parameters = dict(text.rope_parameters, mrope_section=dims["mrope_section"])
    text.layer_types = ["full_attention"] * dims["num_hidden_layers"]
    vision.depth, vision.embed_dim, vision.num_heads = (
        dims["vision_depth"],
        dims["vision_embed_dim"],
        dims["vision_num_heads"],
    )
    vision.hidden_size, vision.mlp_ratio = dims["hidden_size"], 4
    torch.manual_seed(0)
    model = Qwen2VLForConditionalGeneration(config).to(torch.bfloat16)
    model.save_pretrained(out)
    AutoProcessor.from_pretrained(tiny_dir).save_pretrained(out)
    return out


def timed(trainer, name: str, totals: dict) -> None:
    original = getattr(trainer, name)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[name].append(time.perf_counter() - start)

    setattr(trainer, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=["tiny", "2b"], default="tiny")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--per_device_train_batch_size", type=int, default=4)
    parser.add_argument("--num_generations", type=int, default=2)
    parser.add_argument("--max_completion_length", type=int, default=32)
    parser.add_argument("--max_pixels", type=int, default=112 * 112)
    parser.add_argument("--use_vllm", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    cuda = torch.cuda.is_available()
    if args.preset == "2b" and not cuda:
        print(json.dumps({"skipped": "the 2b preset needs a CUDA GPU"}))
        return

    from trl import GRPOConfig, GRPOTrainer

    from tinyrs_demo.tiny_model import build_tiny_model
    from tinyrs_demo.writers import build_demo_data
    from tinyrs_grpo.data import load_grpo_dataset, prepare_split
    from tinyrs_grpo.model import load_processor
    from tinyrs_grpo.rewards import get_reward_funcs

    work = Path(tempfile.mkdtemp(prefix="grpo_step_"))
    model_dir = build_tiny_model(work / "tiny", preset="tiny", seed=0)
    if args.preset == "2b":
        model_dir = build_2b_shape(model_dir, work / "qwen2vl-2b-shape")
    data_dir = build_demo_data(work / "data", seed=0, scale="full")
    processor = load_processor(str(model_dir), min_pixels=3136, max_pixels=args.max_pixels)
    train, _ = prepare_split(load_grpo_dataset(str(data_dir / "grpo"))["train"], judge_enabled=False)

    config = GRPOConfig(
        output_dir=str(work / "out"),
        use_cpu=not cuda,
        bf16=cuda,
        gradient_checkpointing=cuda,
        per_device_train_batch_size=args.per_device_train_batch_size,
        num_generations=args.num_generations,
        max_completion_length=args.max_completion_length,
        loss_type="grpo",
        beta=0.001,
        top_k=50,
        max_steps=args.steps,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_vllm=args.use_vllm,
        vllm_mode="colocate",
        model_init_kwargs={"dtype": "bfloat16" if cuda else "float32"},
    )
    trainer = GRPOTrainer(
        model=str(model_dir),
        reward_funcs=get_reward_funcs(["accuracy", "format"]),
        args=config,
        train_dataset=train,
        processing_class=processor,
    )
    totals: dict[str, list[float]] = defaultdict(list)
    for name in ("_generate", "_calculate_rewards", "_prepare_inputs", "training_step"):
        timed(trainer, name, totals)
    trainer.train()

    def mean(name: str) -> float:
        values = totals[name][1:] or totals[name]  # drop the warm-up step
        return sum(values) / len(values)

    step, prepare, generate, reward = (
        mean(n) for n in ("training_step", "_prepare_inputs", "_generate", "_calculate_rewards")
    )
    result = {
        "preset": args.preset,
        "device": torch.cuda.get_device_name(0) if cuda else f"cpu ({torch.get_num_threads()} threads)",
        "generation_backend": "vllm-colocate" if args.use_vllm else "hf-generate",
        "parameters_M": round(sum(p.numel() for p in trainer.model.parameters()) / 1e6, 2),
        "completions_per_step": args.per_device_train_batch_size,
        "num_generations": args.num_generations,
        "max_completion_length": args.max_completion_length,
        "steps_timed": max(len(totals["training_step"]) - 1, 1),
        "seconds_per_step": round(step, 4),
        "generation_s": round(generate, 4),
        "reward_s": round(reward, 5),
        "scoring_forward_s": round(prepare - generate - reward, 4),
        "forward_backward_s": round(step - prepare, 4),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
