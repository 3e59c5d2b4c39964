"""Batching: right padding, attention mask from lengths, visual inputs concatenated across the batch."""

from __future__ import annotations

from typing import Any

import torch

from tinyrs_sft.constants import IGNORE_INDEX, IMAGE_PAD, VIDEO_PAD


class SupervisedCollator:
    """Pads ``input_ids`` with the pad token and ``labels`` with -100; builds ``attention_mask`` from the true
    lengths (not from ``input_ids != pad``, which would hide real ``<|endoftext|>`` tokens) and the
    ``mm_token_type_ids`` (0 text, 1 image, 2 video) that Qwen2-VL's multimodal RoPE needs."""

    def __init__(
        self,
        tokenizer: Any,
        pad_to_multiple_of: int | None = None,
        vision_keepalive: bool = False,
        image_processor: Any = None,
    ):
        pad_id = tokenizer.pad_token_id
        if pad_id is None:
            pad_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
        self.pad_id = int(pad_id)
        self.image_pad_id = tokenizer.convert_tokens_to_ids(IMAGE_PAD)
        self.video_pad_id = tokenizer.convert_tokens_to_ids(VIDEO_PAD)
        self.pad_to_multiple_of = pad_to_multiple_of
        # Several ranks: a batch without images gets one zero image of a single visual token, placed after the last
        # real token of row 0 (label -100; causal attention keeps it invisible to the real tokens). Every rank then
        # runs the vision tower in the same order, which ZeRO-3's collective weight gathers need.
        self.vision_keepalive = vision_keepalive
        if vision_keepalive:
            merge = getattr(image_processor, "merge_size", 2)
            patch = getattr(image_processor, "patch_size", 14)
            temporal = getattr(image_processor, "temporal_patch_size", 2)
            self.dummy_pixels = torch.zeros((merge * merge, 3 * temporal * patch * patch))
            self.dummy_grid = torch.tensor([[1, merge, merge]])

    def __call__(self, features: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        has_visual = any("pixel_values" in f or "pixel_values_videos" in f for f in features)
        keepalive = self.vision_keepalive and not has_visual
        length = max(f["input_ids"].numel() for f in features)
        if keepalive:
            length = max(length, features[0]["input_ids"].numel() + 1)
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch_size = len(features)
        input_ids = torch.full((batch_size, length), self.pad_id, dtype=torch.long)
        labels = torch.full((batch_size, length), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((batch_size, length), dtype=torch.long)
        for row, f in enumerate(features):
            n = f["input_ids"].numel()
            input_ids[row, :n] = f["input_ids"]
            labels[row, :n] = f["labels"]
            attention_mask[row, :n] = 1
        if keepalive:
            n0 = features[0]["input_ids"].numel()
            input_ids[0, n0] = self.image_pad_id
            attention_mask[0, n0] = 1
        mm_token_type_ids = torch.zeros_like(input_ids)
        mm_token_type_ids[input_ids == self.image_pad_id] = 1
        mm_token_type_ids[input_ids == self.video_pad_id] = 2
        batch = {
            "input_ids": input_ids,
            "labels": labels,
            "attention_mask": attention_mask,
            "mm_token_type_ids": mm_token_type_ids,
        }
        for key in ("pixel_values", "image_grid_thw", "pixel_values_videos", "video_grid_thw"):
            parts = [f[key] for f in features if key in f]
            if parts:
                batch[key] = torch.cat(parts, dim=0)
        if keepalive:
            batch["pixel_values"] = self.dummy_pixels.clone()
            batch["image_grid_thw"] = self.dummy_grid.clone()
        return batch
