"""Processor loading with image pixel bounds that really apply.

The original set ``image_processor.max_pixels`` / ``min_pixels`` attributes that the Qwen2-VL image processor never
reads (it resizes with ``size["shortest_edge"/"longest_edge"]``), so ``--max_pixels`` had no effect. Here the bounds
go into ``size``, checked after loading, so the number of visual tokens per image follows them; the processor saved
with each checkpoint carries the same bounds.
"""

from __future__ import annotations

import logging
from typing import Any


logger = logging.getLogger(__name__)


def load_processor(model_name_or_path: str, min_pixels: int, max_pixels: int, **kwargs: Any) -> Any:
    """Load the model's processor with left padding and the given image pixel bounds.

    Raises:
        ValueError: when the processor has no image processor with a Qwen2-VL style pixel-bounded ``size``.
    """
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(
        model_name_or_path,
        padding_side="left",
        truncation_side="left",
        **kwargs,
    )
    set_pixel_bounds(processor, min_pixels, max_pixels)
    return processor


def set_pixel_bounds(processor: Any, min_pixels: int, max_pixels: int) -> None:
    """Make ``processor.image_processor`` resize every image into [min_pixels, max_pixels] pixels."""
    image_processor = getattr(processor, "image_processor", None)
    if image_processor is None or getattr(image_processor, "size", None) is None:
        name = type(processor).__name__
        raise ValueError(f"{name} has no image processor with a pixel size bound; --max_pixels needs one")
    size = image_processor.size
    current = (_get(size, "shortest_edge"), _get(size, "longest_edge"))
    if current != (min_pixels, max_pixels):
        bounds = {"shortest_edge": min_pixels, "longest_edge": max_pixels}
        image_processor.size = bounds if isinstance(size, dict) else type(size)(**bounds)
    logger.info("image pixel bounds: min_pixels=%d max_pixels=%d", min_pixels, max_pixels)


def _get(size: Any, key: str) -> Any:
    return size.get(key) if isinstance(size, dict) else getattr(size, key, None)


def bounded_image_size(image_processor: Any, width: int, height: int) -> tuple[int, int]:
    """(width, height) the image processor resizes a ``width`` x ``height`` image to."""
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    factor = image_processor.patch_size * image_processor.merge_size
    size = image_processor.size
    new_h, new_w = smart_resize(
        height, width, factor=factor, min_pixels=_get(size, "shortest_edge"), max_pixels=_get(size, "longest_edge")
    )
    return new_w, new_h


def resize_dataset_images(dataset: Any, image_processor: Any, num_proc: int | None = None) -> Any:
    """Resize the ``image`` column to the processor's bounded sizes (for vLLM, which reads its own bounds)."""

    def _resize(image: Any) -> dict:
        width, height = bounded_image_size(image_processor, *image.size)
        if (width, height) != image.size:
            image = image.convert("RGB").resize((width, height), resample=3)
        return {"image": image}

    return dataset.map(_resize, input_columns=["image"], num_proc=num_proc, desc="resizing images for vLLM")
