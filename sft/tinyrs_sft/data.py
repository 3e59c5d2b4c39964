"""LLaVA-style records -> Qwen2-VL model inputs with an assistant-only label mask.

Layout (the official Qwen2-VL chat template, the one GRPO and evaluation use)::

    <|im_start|>system\\n{system}<|im_end|>\\n                       labels -100
    <|im_start|>user\\n{user, images in place}<|im_end|>\\n<|im_start|>assistant\\n   labels -100
    {answer}<|im_end|>                                                labels = tokens   (per assistant turn)
    \\n                                                               labels -100

``<image>``/``<video>`` placeholders (regex ``\\n?<image>\\n?``) become ``<|vision_start|><|image_pad|>...
<|vision_end|>`` with as many pad tokens as the image yields visual tokens under the configured pixel bounds. Images
are assigned to placeholders in order across the whole conversation (multi-image, multi-turn). Images are opened
here, i.e. in the data-loader workers.
"""

from __future__ import annotations

import logging
import multiprocessing
import re
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset

from tinyrs_sft.constants import (
    DEFAULT_SYSTEM_PROMPT,
    IGNORE_INDEX,
    IM_END,
    IM_START,
    IMAGE_PAD,
    IMAGE_PLACEHOLDER_RE,
    VIDEO_PAD,
    VIDEO_PLACEHOLDER_RE,
    VISION_END,
    VISION_START,
)
from tinyrs_sft.records import (
    IMAGE_EXTENSIONS,
    DataError,
    MediaPolicy,
    RecordSource,
    as_path_list,
    check_structure,
    load_image,
    record_label,
    resolve_media_path,
)


logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VisionBounds:
    """Pixel bounds per image and per video frame; None keeps the processor's own value."""

    image_min_pixels: int | None = None
    image_max_pixels: int | None = None
    video_min_pixels: int = 100352
    video_max_pixels: int = 602112
    fps: float = 1.0


def image_size_kwargs(image_processor: Any, bounds: VisionBounds) -> dict[str, Any]:
    """The ``size`` argument that makes the Qwen2-VL image processor resize within the bounds.

    (The original put the bounds under keys nobody read, defect S1.)
    """
    size = dict(image_processor.size)
    if bounds.image_min_pixels is not None:
        size["shortest_edge"] = bounds.image_min_pixels
    if bounds.image_max_pixels is not None:
        size["longest_edge"] = bounds.image_max_pixels
    return {"size": size}


def apply_bounds_to_processor(processor: Any, bounds: VisionBounds) -> None:
    """Store the training bounds in the processor, so checkpoints (and GRPO/eval that load them) use the same ones."""
    processor.image_processor.size = image_size_kwargs(processor.image_processor, bounds)["size"]
    video_processor = getattr(processor, "video_processor", None)
    if video_processor is not None:
        video_processor.size = {"shortest_edge": bounds.video_min_pixels, "longest_edge": bounds.video_max_pixels}


def render_user_text(text: str) -> str:
    """Replace placeholders by one vision block each (pads are expanded to the real count later)."""
    text = re.sub(IMAGE_PLACEHOLDER_RE, VISION_START + IMAGE_PAD + VISION_END, text)
    return re.sub(VIDEO_PLACEHOLDER_RE, VISION_START + VIDEO_PAD + VISION_END, text)


def conversation_segments(conversations: list[dict[str, str]]) -> list[tuple[str, bool]]:
    """Split a (valid) conversation into ``(text, supervised)`` segments following the official template."""
    turns = list(conversations)
    system = DEFAULT_SYSTEM_PROMPT
    if turns and turns[0]["from"] == "system":
        system = turns.pop(0)["value"]
    segments = [(f"{IM_START}system\n{system}{IM_END}\n", False)]
    for k in range(0, len(turns), 2):
        user, answer = turns[k]["value"], turns[k + 1]["value"]
        segments.append((f"{IM_START}user\n{render_user_text(user)}{IM_END}\n{IM_START}assistant\n", False))
        segments.append((f"{answer}{IM_END}", True))
        segments.append(("\n", False))
    return segments


def encode_conversation(
    conversations: list[dict[str, str]],
    tokenizer: Any,
    image_token_counts: list[int] = (),
    video_token_counts: list[int] = (),
) -> tuple[list[int], list[int]]:
    """Token ids and labels of one conversation. Segments are tokenised separately (no merges across the
    prompt/answer boundary); each image/video pad is expanded to its visual-token count, in order."""
    image_pad_id = tokenizer.convert_tokens_to_ids(IMAGE_PAD)
    video_pad_id = tokenizer.convert_tokens_to_ids(VIDEO_PAD)
    counts = {image_pad_id: list(image_token_counts), video_pad_id: list(video_token_counts)}
    used = {image_pad_id: 0, video_pad_id: 0}
    input_ids: list[int] = []
    labels: list[int] = []
    for text, supervised in conversation_segments(conversations):
        for tok in tokenizer(text, add_special_tokens=False)["input_ids"]:
            if tok in counts:
                k = used[tok]
                if k >= len(counts[tok]):
                    raise DataError("more <image>/<video> placeholders than visual inputs")
                used[tok] += 1
                ids = [tok] * counts[tok][k]
            else:
                ids = [tok]
            input_ids.extend(ids)
            labels.extend(ids if supervised else [IGNORE_INDEX] * len(ids))
    for tok, n in used.items():
        if n != len(counts[tok]):
            raise DataError(f"{len(counts[tok])} visual inputs but {n} placeholders")
    return input_ids, labels


def truncate_example(
    input_ids: list[int], labels: list[int], max_length: int, vision_ids: set[int]
) -> tuple[list[int], list[int]] | None:
    """Cut to ``max_length`` without cutting inside visual tokens; None when the record must be skipped
    (its visual tokens reach past the limit, or no supervised token would remain)."""
    if len(input_ids) <= max_length:
        return input_ids, labels
    last_vision = max((i for i, t in enumerate(input_ids) if t in vision_ids), default=-1)
    if last_vision >= max_length:
        return None
    input_ids, labels = input_ids[:max_length], labels[:max_length]
    if all(label == IGNORE_INDEX for label in labels):
        return None
    return input_ids, labels


def _video_frames(path: Any) -> Any:
    """A folder of frames becomes a list of frame paths; a file path is passed on as is."""
    if path.is_dir():
        return [str(p) for p in sorted(path.iterdir()) if p.suffix.lower() in IMAGE_EXTENSIONS]
    return str(path)


class SupervisedDataset(Dataset):
    """Lazily turns records of a :class:`RecordSource` into model inputs.

    Records that cannot fit ``max_seq_length`` are skipped: the item is replaced by the next fitting record and the
    skip is logged and counted once per process (``skipped`` is shared with data-loader workers started by fork).
    A record that turns out bad only here (an image overwritten or cut short after the start-up check) stops the run
    with a one-line :class:`DataError`, or with ``skip_bad_samples`` is logged, counted (``unusable``) and replaced
    by the next record in the same way.
    """

    def __init__(
        self,
        source: RecordSource,
        processor: Any,
        policy: MediaPolicy,
        bounds: VisionBounds,
        max_seq_length: int,
        indices: Sequence[int] | None = None,
        skip_bad_samples: bool = False,
    ):
        self.source = source
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.policy = policy
        self.bounds = bounds
        self.max_seq_length = max_seq_length
        self.indices = array("q", range(len(source)) if indices is None else indices)  # 8 bytes per record
        self.skip_bad_samples = skip_bad_samples
        if not self.indices:
            raise DataError(f"{source.path}: no usable records")
        self.merge_size = getattr(processor.image_processor, "merge_size", 2)
        self.vision_ids = {
            self.tokenizer.convert_tokens_to_ids(t) for t in (IMAGE_PAD, VIDEO_PAD, VISION_START, VISION_END)
        }
        self.skipped = multiprocessing.Value("i", 0)  # records skipped for length (shared with forked workers)
        self.unusable = multiprocessing.Value("i", 0)  # records skipped for bad data met here (skip_bad_samples)
        self._too_long: set[int] = set()  # per process: skipped once, never rebuilt or counted again
        self._bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        n = len(self.indices)
        for attempt in range(n):
            index = self.indices[(i + attempt) % n]
            if index in self._too_long or index in self._bad:
                continue
            try:
                example = self.build(index)
            except DataError as err:
                self._bad_record(err)
                self._bad.add(index)
                continue
            if example is not None:
                return example
            self._too_long.add(index)
            with self.skipped.get_lock():
                self.skipped.value += 1
                count = self.skipped.value
            logger.warning(
                "%s: longer than max_seq_length=%d with its visual tokens or all answers past the limit; skipped "
                "(%d skipped so far)",
                record_label(self.source.path, index, self.source[index]),
                self.max_seq_length,
                count,
            )
        raise DataError(f"{self.source.path}: no usable record (each is too long for max_seq_length or unreadable)")

    def _bad_record(self, err: DataError) -> None:
        """Stop with the record's one-line error, or log and count it (``skip_bad_samples``)."""
        if not self.skip_bad_samples:
            raise DataError(f"{err} (found during training; --skip_bad_samples True skips such records)") from err
        with self.unusable.get_lock():
            self.unusable.value += 1
            count = self.unusable.value
        logger.error("%s; skipped (--skip_bad_samples; %d skipped during training so far)", err, count)

    def build(self, index: int) -> dict[str, torch.Tensor] | None:
        """Model inputs of one record, or None when it has to be skipped for length."""
        record = self.source[index]
        label = record_label(self.source.path, index, record)
        problems = check_structure(record)
        if problems:
            raise DataError(f"{label}: {'; '.join(problems)}")
        try:
            out: dict[str, torch.Tensor] = {}
            image_counts = self._process_images(as_path_list(record.get("image")), out)
            video_counts = self._process_videos(as_path_list(record.get("video")), out)
            input_ids, labels = encode_conversation(
                record["conversations"], self.tokenizer, image_counts, video_counts
            )
        except DataError as err:
            raise DataError(f"{label}: {err}") from err
        cut = truncate_example(input_ids, labels, self.max_seq_length, self.vision_ids)
        if cut is None:
            return None
        out["input_ids"] = torch.tensor(cut[0], dtype=torch.long)
        out["labels"] = torch.tensor(cut[1], dtype=torch.long)
        return out

    def _process_images(self, names: list[str], out: dict[str, torch.Tensor]) -> list[int]:
        if not names:
            return []
        images = [load_image(resolve_media_path(n, self.policy), self.policy.max_image_pixels) for n in names]
        feats = self.processor.image_processor(
            images=images, return_tensors="pt", **image_size_kwargs(self.processor.image_processor, self.bounds)
        )
        out["pixel_values"] = feats["pixel_values"]
        out["image_grid_thw"] = feats["image_grid_thw"]
        return [int(thw.prod()) // self.merge_size**2 for thw in feats["image_grid_thw"]]

    def _process_videos(self, names: list[str], out: dict[str, torch.Tensor]) -> list[int]:
        if not names:
            return []
        from qwen_vl_utils import fetch_video

        videos = []
        for name in names:
            path = resolve_media_path(name, self.policy)
            spec = {
                "video": _video_frames(path),
                "min_pixels": self.bounds.video_min_pixels,
                "max_pixels": self.bounds.video_max_pixels,
                "fps": self.bounds.fps,
            }
            try:
                videos.append(fetch_video(spec))
            except Exception as err:  # noqa: BLE001 - any reader failure becomes a one-line data error
                raise DataError(f"unreadable video {path}: {err}") from err
        size = {"shortest_edge": self.bounds.video_min_pixels, "longest_edge": self.bounds.video_max_pixels}
        feats = self.processor.video_processor(videos=videos, return_tensors="pt", size=size, do_sample_frames=False)
        out["pixel_values_videos"] = feats["pixel_values_videos"]
        out["video_grid_thw"] = feats["video_grid_thw"]
        return [int(thw.prod()) // self.merge_size**2 for thw in feats["video_grid_thw"]]
