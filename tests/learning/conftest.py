"""Helpers for the overfit tests: scenes that differ only by one object, SFT through the real entry point,
greedy answers from the saved checkpoint, and a constant-vision control."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from PIL import Image


SIZE = 112  # 4 x 4 merged visual tokens of 28 x 28 pixels (16 tokens per image)
CELL = 28
MAX_PIXELS = SIZE * SIZE
BACKGROUND = "desert"
TEXTURE_SEED = 7
POSITIONAL_MROPE = (1, 1, 6)
POSITIONAL_THETA = 100.0


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Same result and speed whatever the machine's core count (the tiny model is latency-bound)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


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


def record(rid: str, image: str, question: str, answer: str, system: str | None = None) -> dict:
    turns = [{"from": "system", "value": system}] if system else []
    turns += [{"from": "human", "value": f"<image>\n{question}"}, {"from": "gpt", "value": answer}]
    return {"id": rid, "image": image, "conversations": turns}


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


@pytest.fixture(scope="session")
def positional_tiny_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny preset's weights with positions the language model can resolve: MRoPE sections (1, 1, 6) and
    rope_theta 100 instead of (2, 3, 3) and 1e6 (same parameter shapes; only the rotary frequencies change).

    With 8 rotary pairs per head, (2, 3, 3) and theta 1e6 turn a key by at most 0.03 rad per image row and 2e-4 rad
    per image column, so the language model cannot tell where in the image a visual token sits: trained on the
    grounding set below it answers one or two boxes for all 16 images (loss stuck at ln(16) per answer). With these
    values a row turns the keys by 0.56 rad and a column by 0.32 rad and lower.
    """
    import shutil

    folder = tmp_path_factory.mktemp("tiny-positional") / "model"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["text_config"]["rope_parameters"].update(mrope_section=list(POSITIONAL_MROPE), rope_theta=POSITIONAL_THETA)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder


@pytest.fixture
def constant_vision(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], None]:
    """Negative control: every image the SFT data loader opens is replaced by one fixed image."""

    def apply(fixed: Path) -> None:
        import tinyrs_sft.data as sft_data

        real = sft_data.load_image
        monkeypatch.setattr(sft_data, "load_image", lambda path, max_pixels: real(fixed, max_pixels))

    return apply


@pytest.fixture(scope="session")
def learn():
    """The helpers above, for test modules (conftest modules cannot be imported under --import-mode=importlib)."""
    import sys

    return sys.modules[__name__]
