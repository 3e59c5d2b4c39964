"""Scenes for the overfit tests (tests/learning): square images on one background texture that differ only by one
object, SFT through the real entry point on all records at once, greedy answers from the saved checkpoint."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from PIL import Image


SIZE = 112  # 4 x 4 merged visual tokens of 28 x 28 pixels (16 tokens per image)
CELL = 28
MAX_PIXELS = SIZE * SIZE
BACKGROUND = "desert"
TEXTURE_SEED = 7


def cell_box(col: int, row: int) -> tuple[int, int, int, int]:
    """Pixel box of one whole 28 x 28 cell (one merged visual token)."""
    return (col * CELL, row * CELL, (col + 1) * CELL, (row + 1) * CELL)


def draw_scene(
    path: Path,
    objects: Sequence[tuple[str, tuple[int, int, int, int]]],
    size: int = SIZE,
    texture_seed: int = TEXTURE_SEED,
) -> Path:
    """A square scene on the shared background texture with the given (kind, pixel box) objects."""
    from tinyrs_demo.scenes import Obj, Scene, render

    scene = Scene(size, size, BACKGROUND, [Obj(kind, box) for kind, box in objects], texture_seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    render(scene).save(path)
    return path


def grid_answer(box: tuple[int, int, int, int]) -> str:
    """The SFT grounding answer for a pixel box: ``[[x1, y1, x2, y2]]`` on the 0-1000 grid."""
    from tinyrs_demo.scenes import format_box, to_grid

    return "[" + format_box(to_grid(box, SIZE, SIZE)) + "]"


def sft_train(model_dir: Path, records: list[dict], image_folder: Path, output_dir: Path, *extra: str) -> Path:
    """Train on all records in one batch per step through ``tinyrs_sft.train.main`` (in-process, CPU)."""
    from tinyrs_sft.config import parse_args
    from tinyrs_sft.train import main

    data = output_dir.parent / f"{output_dir.name}.json"
    data.write_text(json.dumps(records))
    argv = [
        "--model_id", str(model_dir),
        "--data_path", str(data),
        "--image_folder", str(image_folder),
        "--output_dir", str(output_dir),
        "--use_cpu", "True",
        "--report_to", "none",
        "--per_device_train_batch_size", str(len(records)),
        "--logging_steps", "10",
        "--save_strategy", "no",
        "--disable_tqdm", "True",
        "--dataloader_num_workers", "0",
        "--tune_merger", "True",
        "--lr_scheduler_type", "constant",
        "--weight_decay", "0.0",
        "--image_max_pixels", str(MAX_PIXELS),
        "--seed", "0",
        *extra,
    ]  # fmt: skip
    main(*parse_args(argv))
    return output_dir


def greedy_answers(
    model_dir: Path, items: Sequence[tuple[Path, str]], system: str | None = None, max_new_tokens: int = 24
) -> list[str]:
    """Greedy answers of a saved checkpoint to (image, question) pairs, one batch, the checkpoint's chat template."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32).eval()
    processor = AutoProcessor.from_pretrained(model_dir)
    processor.tokenizer.padding_side = "left"
    texts = []
    for _, question in items:
        messages = [{"role": "system", "content": [{"type": "text", "text": system}]}] if system else []
        messages.append({"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]})
        texts.append(processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
    images = [Image.open(path).convert("RGB") for path, _ in items]
    inputs = processor(text=texts, images=images, return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    new = out[:, inputs["input_ids"].shape[1] :]
    return [t.strip() for t in processor.batch_decode(new, skip_special_tokens=True)]
