"""--max_pixels / --min_pixels really bound the images (the original's bounds were ignored, G8)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from helpers import grpo_row, save_grpo_dataset
from tinyrs_grpo.model import bounded_image_size, load_processor


def visual_tokens(processor, image: Image.Image) -> tuple[int, list[int]]:
    messages = [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": "hi"}]}]
    out = processor.apply_chat_template([messages], add_generation_prompt=True, tokenize=True, return_dict=True)
    pad_id = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    n_pad = sum(1 for t in out["input_ids"][0] if t == pad_id)
    return n_pad, out["image_grid_thw"][0].tolist()


@pytest.mark.parametrize(
    ("max_pixels", "image_size", "expected_tokens"),
    [
        (12845056, (448, 448), 256),  # checkpoint default bound: native size, 32 x 32 patches / 4
        (112 * 112, (448, 448), 16),  # capped to 112 x 112: 8 x 8 patches / 4
        (56 * 56, (448, 224), 2),  # aspect ratio kept: 56 x 28 pixels on the 28-pixel grid
    ],
)
def test_max_pixels_bounds_visual_tokens(tiny_model_dir: Path, max_pixels, image_size, expected_tokens) -> None:
    processor = load_processor(str(tiny_model_dir), min_pixels=28 * 28, max_pixels=max_pixels)
    n_pad, (t, h, w) = visual_tokens(processor, Image.new("RGB", image_size))
    assert n_pad == expected_tokens == t * h * w // 4
    assert h * w * 14 * 14 <= max(max_pixels, 28 * 28)


def test_min_pixels_upscales_small_images(tiny_model_dir: Path) -> None:
    processor = load_processor(str(tiny_model_dir), min_pixels=112 * 112, max_pixels=224 * 224)
    n_pad, _ = visual_tokens(processor, Image.new("RGB", (28, 28)))
    assert n_pad == 16


def test_bounds_survive_save_and_reload(tiny_model_dir: Path, tmp_path: Path) -> None:
    from transformers import AutoProcessor

    load_processor(str(tiny_model_dir), min_pixels=3136, max_pixels=112 * 112).save_pretrained(tmp_path)
    reloaded = AutoProcessor.from_pretrained(tmp_path)
    assert visual_tokens(reloaded, Image.new("RGB", (448, 448)))[0] == 16


def test_bounded_image_size_matches_processor(tiny_model_dir: Path) -> None:
    processor = load_processor(str(tiny_model_dir), min_pixels=3136, max_pixels=112 * 112)
    width, height = bounded_image_size(processor.image_processor, 448, 224)
    _, (_, h, w) = visual_tokens(processor, Image.new("RGB", (448, 224)))
    assert (width // 14, height // 14) == (w, h)


def test_resize_dataset_images_for_vllm(tiny_model_dir: Path, tmp_path: Path) -> None:
    """With --use_vllm the images are pre-resized, so vLLM (which reads its own bounds) sees the same grid."""
    from tinyrs_grpo.data import load_grpo_dataset
    from tinyrs_grpo.model import resize_dataset_images

    rows = [dict(grpo_row("1", "yes"), image={"bytes": _png(448, 224), "path": None})]
    dataset = load_grpo_dataset(str(save_grpo_dataset(tmp_path / "d", rows)))["train"]
    processor = load_processor(str(tiny_model_dir), min_pixels=3136, max_pixels=112 * 112)
    resized = resize_dataset_images(dataset, processor.image_processor)
    image = resized[0]["image"]
    assert (
        image.size == bounded_image_size(processor.image_processor, 448, 224)
        and image.size[0] * image.size[1] <= 112 * 112
    )
    assert visual_tokens(processor, image) == visual_tokens(processor, dataset[0]["image"])


def _png(width: int, height: int) -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 80, 160)).save(buffer, format="PNG")
    return buffer.getvalue()
