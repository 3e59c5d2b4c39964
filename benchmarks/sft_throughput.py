"""SFT throughput: training tokens/s and samples/s, data-loader samples/s on its own, peak memory, MFU on GPU.

    # CPU, tiny random Qwen2-VL (what CI machines can run):
    python benchmarks/sft_throughput.py --preset tiny
    # One GPU, randomly initialised model with the real Qwen2-VL-2B shape, 448x448 images, bf16, grad checkpointing:
    python benchmarks/sft_throughput.py --preset 2b --batch_size 8 --steps 20

The training step is the one tinyrs_sft trains with (same model class, parameter groups, collator, loss); batches
are pre-built so the step is timed alone, and the data loader (tinyrs_sft.data.SupervisedDataset + collator, real
image decoding and tokenisation, ``--num_workers`` processes) is timed alone. The goal is data-loader samples/s
>= 5x the samples/s the step consumes, and MFU >= 35% for the 2B shape on one H100.
MFU counts model FLOPs only (6 x parameters x tokens for the LLM and the vision tower, plus attention), not the
recomputation of gradient checkpointing.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from tinyrs_sft.collator import SupervisedCollator
from tinyrs_sft.data import SupervisedDataset, VisionBounds
from tinyrs_sft.model import attention_implementation, load_processor
from tinyrs_sft.optim import build_param_groups
from tinyrs_sft.records import MediaPolicy, RecordSource


# Peak dense bf16 tensor-core FLOP/s (no sparsity), by device-name substring.
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12}

QWEN2VL_2B_SHAPE = {
    "text_config": {
        "vocab_size": 151936,
        "hidden_size": 1536,
        "intermediate_size": 8960,
        "num_hidden_layers": 28,
        "num_attention_heads": 12,
        "num_key_value_heads": 2,
        "max_position_embeddings": 32768,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]},
        "tie_word_embeddings": True,
    },
    "vision_config": {"depth": 32, "embed_dim": 1280, "num_heads": 16, "mlp_ratio": 4, "hidden_size": 1536},
    "tie_word_embeddings": True,
}


def write_synthetic_data(folder: Path, n: int, size: int, seed: int = 0) -> Path:
    """``n`` records with ``size`` x ``size`` noise images and short question/answer pairs."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(n):
        pixels = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / "images" / f"{i}.png")
        question = "<image>\n{CLS} Classify the image into one of the following classes: farmland, urban, water."
        records.append(
            {
                "id": str(i),
                "image": f"{i}.png",
                "conversations": [
                    {"from": "human", "value": question},
                    {"from": "gpt", "value": "An aerial image of farmland with a road and three buildings."},
                ],
            }
        )
    path = folder / "data.json"
    path.write_text(json.dumps(records))
    return path


def build_model(preset: str, model_dir: Path, device: torch.device, dtype: torch.dtype, grad_ckpt: bool):
    from transformers import AutoModelForImageTextToText, Qwen2VLConfig, Qwen2VLForConditionalGeneration

    if preset == "tiny":
        model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=dtype, attn_implementation="sdpa")
    else:
        tiny_cfg = json.loads((model_dir / "config.json").read_text())
        config = Qwen2VLConfig(**QWEN2VL_2B_SHAPE)
        # Special-token ids of the processor used to build the batches (the real vocabulary size is kept).
        for key in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id"):
            setattr(config, key, tiny_cfg[key])
        with torch.device(device):
            model = Qwen2VLForConditionalGeneration._from_config(
                config, dtype=dtype, attn_implementation=attention_implementation(False)
            )
    model.to(device)
    model.config.use_cache = False
    if grad_ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    return model


def model_flops(model, batch: dict[str, torch.Tensor]) -> float:
    """Forward+backward model FLOPs of one batch: 6*N*T per part plus attention (12 * layers * dim * T_i^2)."""
    cfg = model.config
    text, vision = cfg.text_config, cfg.vision_config
    llm_params = sum(p.numel() for n, p in model.named_parameters() if "visual" not in n and "embed_tokens" not in n)
    vis_params = sum(p.numel() for n, p in model.named_parameters() if "visual" in n)
    lengths = batch["attention_mask"].sum(1).float()
    patches = batch["image_grid_thw"].prod(-1).float() if "image_grid_thw" in batch else torch.zeros(1)
    flops = 6 * llm_params * lengths.sum() + 6 * vis_params * patches.sum()
    flops += 12 * text.num_hidden_layers * text.hidden_size * (lengths**2).sum()
    flops += 12 * vision.depth * vision.embed_dim * (patches**2).sum()
    return float(flops)


def time_training(model, batches, device, steps: int, warmup: int, lr: float) -> dict[str, float]:
    groups, _ = build_param_groups(model, lr, 0.1, vision_lr=lr / 5, merger_lr=lr)
    optimizer = torch.optim.AdamW(groups, fused=device.type == "cuda")
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    n_samples = n_tokens = 0
    flops = 0.0
    for step in range(warmup + steps):
        if step == warmup:
            sync()
            start = time.perf_counter()
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
        batch = {k: v.to(device) for k, v in batches[step % len(batches)].items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step >= warmup:
            n_samples += batch["input_ids"].shape[0]
            n_tokens += int(batch["attention_mask"].sum())
            flops += model_flops(model, batch)
    sync()
    elapsed = time.perf_counter() - start
    return {
        "step_s": elapsed / steps,
        "train_samples_per_s": n_samples / elapsed,
        "train_tokens_per_s": n_tokens / elapsed,
        "achieved_tflops": flops / elapsed / 1e12,
        "final_loss": loss.item(),
    }


def time_loader(dataset, collator, batch_size: int, num_workers: int, epochs: int) -> float:
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collator, shuffle=True)
    iterator = iter(loader)
    next(iterator)  # worker start-up is not throughput
    start, n = time.perf_counter(), 0
    for _ in range(epochs):
        for batch in iterator:
            n += batch["input_ids"].shape[0]
        iterator = iter(loader)
    return n / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=["tiny", "2b"], default="tiny")
    parser.add_argument("--batch_size", type=int, default=None, help="default: 8 (tiny), 8 (2b)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--num_workers", type=int, default=None, help="data-loader workers (default: 2 CPU, 8 GPU)")
    parser.add_argument("--records", type=int, default=128)
    parser.add_argument("--image_size", type=int, default=None, help="default: 112 (tiny), 448 (2b)")
    parser.add_argument("--no_grad_ckpt", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads for the training step")
    parser.add_argument("--output_json", default=None)
    args = parser.parse_args(argv)

    cuda = torch.cuda.is_available()
    if args.preset == "2b" and not cuda:
        raise SystemExit("--preset 2b needs a CUDA GPU")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if cuda else "cpu")
    batch_size = args.batch_size or 8
    image_size = args.image_size or (448 if args.preset == "2b" else 112)
    num_workers = args.num_workers if args.num_workers is not None else (8 if cuda else 2)
    grad_ckpt = args.preset == "2b" and not args.no_grad_ckpt

    from tinyrs_demo.tiny_model import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model_dir = build_tiny_model(tmp / "tiny", preset="tiny", seed=0)
        data = write_synthetic_data(tmp / "data", args.records, image_size)
        processor = load_processor(str(model_dir))
        dataset = SupervisedDataset(
            RecordSource(data), processor, MediaPolicy(data.parent / "images"), VisionBounds(), max_seq_length=4096
        )
        collator = SupervisedCollator(processor.tokenizer)
        loader_sps = time_loader(dataset, collator, batch_size, num_workers, epochs=2)
        batches = [collator([dataset[i * batch_size + j] for j in range(batch_size)]) for i in range(4)]
        dtype = torch.bfloat16 if cuda else torch.float32
        model = build_model(args.preset, model_dir, device, dtype, grad_ckpt)
        n_params = sum(p.numel() for p in model.parameters())
        train = time_training(model, batches, device, args.steps, args.warmup, lr=1e-5)

    result = {
        "preset": args.preset,
        "device": torch.cuda.get_device_name() if cuda else f"cpu ({torch.get_num_threads()} threads)",
        "parameters": n_params,
        "batch_size": batch_size,
        "image_size": image_size,
        "tokens_per_sample": round(sum(int(b["attention_mask"].sum()) for b in batches) / (4 * batch_size), 1),
        "grad_checkpointing": grad_ckpt,
        **{k: round(v, 4) for k, v in train.items()},
        "loader_samples_per_s": round(loader_sps, 2),
        "loader_workers": num_workers,
        "loader_over_train": round(loader_sps / train["train_samples_per_s"], 2),
    }
    if cuda:
        result["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        peak = next((v for k, v in PEAK_BF16.items() if k in result["device"]), None)
        result["mfu"] = round(train["achieved_tflops"] * 1e12 / peak, 4) if peak else None
    else:
        result["peak_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    print(json.dumps(result, indent=2))
    if args.output_json:
        Path(args.output_json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
