"""Processor loading with image pixel bounds that really apply.

The original set ``image_processor.max_pixels`` / ``min_pixels`` attributes that the Qwen2-VL image processor never
reads (it resizes with ``size["shortest_edge"/"longest_edge"]``), so ``--max_pixels`` had no effect. Here the bounds
are the checkpoint's own (what the SFT stage saved) unless ``--min_pixels`` / ``--max_pixels`` are given; given
bounds go into ``size``, so the number of visual tokens per image follows them, and the processor saved with each
checkpoint carries the bounds in force.
"""

from __future__ import annotations

import io
import logging
from typing import Any


logger = logging.getLogger(__name__)


def load_processor(
    model_name_or_path: str, min_pixels: int | None = None, max_pixels: int | None = None, **kwargs: Any
) -> Any:
    """Load the model's processor with left padding; the image pixel bounds are the checkpoint's own unless given.

    A processor saved by the SFT stage at, say, 401408 / 1003520 pixels keeps those bounds here, so GRPO trains
    (and saves, for evaluation) at the resolution SFT used. ``min_pixels`` / ``max_pixels`` replace only the bound
    that is given. The bounds in force are logged.

    Raises:
        ValueError: when the processor has no image processor with a Qwen2-VL style pixel-bounded ``size``, or the
            resulting bounds are not 0 < min_pixels <= max_pixels.
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


def pixel_bounds(processor: Any) -> tuple[int | None, int | None]:
    """(min_pixels, max_pixels) the processor's image processor resizes into."""
    size = getattr(getattr(processor, "image_processor", processor), "size", None)
    if size is None:
        return None, None
    return _get(size, "shortest_edge"), _get(size, "longest_edge")


def set_pixel_bounds(processor: Any, min_pixels: int | None = None, max_pixels: int | None = None) -> tuple[int, int]:
    """Make ``processor.image_processor`` resize every image into [min_pixels, max_pixels] pixels.

    A bound left as None keeps the processor's (the checkpoint's) value. Returns the bounds in force.
    """
    image_processor = getattr(processor, "image_processor", None)
    if image_processor is None or getattr(image_processor, "size", None) is None:
        name = type(processor).__name__
        raise ValueError(f"{name} has no image processor with a pixel size bound; --max_pixels needs one")
    size = image_processor.size
    saved = (_get(size, "shortest_edge"), _get(size, "longest_edge"))
    wanted = (saved[0] if min_pixels is None else min_pixels, saved[1] if max_pixels is None else max_pixels)
    if not all(isinstance(v, int) and v > 0 for v in wanted) or wanted[0] > wanted[1]:
        raise ValueError(
            f"image pixel bounds min_pixels={wanted[0]} max_pixels={wanted[1]} (checkpoint: {saved[0]} / "
            f"{saved[1]}) must be positive with min_pixels <= max_pixels"
        )
    if wanted != saved:
        bounds = {"shortest_edge": wanted[0], "longest_edge": wanted[1]}
        image_processor.size = bounds if isinstance(size, dict) else type(size)(**bounds)
    sources = ["flag" if given is not None else "checkpoint" for given in (min_pixels, max_pixels)]
    logger.info(
        "image pixel bounds in force: min_pixels=%d (%s) max_pixels=%d (%s)",
        wanted[0],
        sources[0],
        wanted[1],
        sources[1],
    )
    return wanted


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
    """Resize the ``image`` column to the processor's bounded sizes (for vLLM, which reads its own bounds).

    An image that fails to decode is left as it is: training meets it later and skips or stops as
    ``--on_corrupt_image`` says (tinyrs_grpo.guard), instead of this map ending the run with a traceback.
    """
    import datasets

    def _resize(value: Any) -> dict:
        from PIL import Image

        try:
            source = io.BytesIO(value["bytes"]) if value.get("bytes") else value["path"]
            with Image.open(source) as opened:
                width, height = bounded_image_size(image_processor, *opened.size)
                if (width, height) == opened.size:
                    return {"image": value}
                image = opened.convert("RGB").resize((width, height), resample=3)
        except Exception:  # noqa: BLE001 - left for the training-time guard to report with its row
            return {"image": value}
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return {"image": {"bytes": buffer.getvalue(), "path": None}}

    raw = dataset.cast_column("image", datasets.Image(decode=False))
    resized = raw.map(_resize, input_columns=["image"], num_proc=num_proc, desc="resizing images for vLLM")
    return resized.cast_column("image", datasets.Image())
