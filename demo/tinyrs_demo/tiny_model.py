"""Build a complete, tiny, randomly initialised Qwen2-VL checkpoint folder, offline.

Model weights cannot be downloaded on the development and CI machines, so tests and the demo build their own
checkpoint: the tokenizer, chat template and processor of tinyrs_demo.tokenizer and a
``Qwen2VLForConditionalGeneration`` from a small config (one of PRESETS). The result loads with
``AutoProcessor.from_pretrained`` and ``AutoModelForImageTextToText.from_pretrained`` under ``HF_HUB_OFFLINE=1``,
exactly like a hub checkpoint.

    tinyrs-tiny-model --preset tiny --output_dir /tmp/tiny-qwen2vl
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from tinyrs_demo.corpus import corpus_texts
from tinyrs_demo.tokenizer import (
    BASE_CORPUS,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_PIXELS,
    QWEN2VL_SPECIAL_TOKENS,
    build_processor,
    train_tokenizer,
)


if TYPE_CHECKING:
    from transformers import Qwen2Tokenizer, Qwen2VLForConditionalGeneration


MAX_POSITIONS = 4096
STILL_PAIR = 1e-3  # rad per position step: under 0.2 rad across a 200-token demo prompt


@dataclass(frozen=True)
class Preset:
    """Model and tokenizer sizes for one preset."""

    bpe_vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    mrope_section: tuple[int, int, int]
    vision_depth: int
    vision_embed_dim: int
    vision_num_heads: int
    rope_theta: float = 1000000.0
    # Keep <reasoning>, </reasoning>, <answer>, </answer> as single tokens. The Qwen2 split regex cuts them into
    # "<", "answer", ">" pieces (so "<answer>" and "</answer>" end alike); a 2 B model copes, a 5 M one trained for
    # minutes confuses the two and ends its output right after "<answer>".
    whole_reasoning_tags: bool = False
    # Angular frequency (rad per position step) of each rotary pair, in MRoPE section order (t, h, w); None: the
    # standard rope_theta ** (-i / pairs). Written as LongRoPE short/long factors relative to rope_theta, which
    # transformers' Qwen2-VL honours (tests/test_tiny_model.py); serving engines may not (the demo uses none).
    rotary_pair_freqs: tuple[float, ...] | None = None
    # Factor on the language model's initial query and key projections (attention scores start gain**2 larger).
    # With the 0.02 init the answer position's attention stayed nearly uniform after the demo's SFT (mean entropy 3.5
    # nats against 3.9 for an even spread, scripts/probe_attention.py), and at a rate low enough to keep it from
    # collapsing onto one token the scores grow slowly: a larger start lets them sharpen on content within the demo's
    # SFT (README, demo section).
    attention_init_gain: float = 1.0


PRESETS: dict[str, Preset] = {
    # Seconds to build and run: for unit tests.
    "tiny": Preset(
        bpe_vocab_size=1024,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        mrope_section=(2, 3, 3),
        vision_depth=2,
        vision_embed_dim=32,
        vision_num_heads=2,
    ),
    # Large enough to learn the demo tasks on two CPU cores within minutes.
    "small": Preset(
        bpe_vocab_size=2048,
        hidden_size=256,
        intermediate_size=768,
        num_hidden_layers=4,
        num_attention_heads=8,
        num_key_value_heads=4,
        # MRoPE sections (t, h, w) of the 16 rotary frequency pairs, highest frequencies first, so w always gets the
        # lowest. The language model reads where an object is only through these rotations (no absolute position
        # reaches the image features), so they must turn visibly from one image row or column to the next: with the
        # real rope_theta 1e6, (4, 6, 6) turns a column by at most 2e-4 rad and grounding cannot be learnt; theta 10
        # with (2, 7, 7) gives rows 0.75-0.32 rad and columns 0.28-0.12 rad per token. Measured on held-out images
        # (one target among distractors, 200 steps): 22% box hits with 7 distinct boxes vs 9% and 3 with theta 1e6 and
        # (1, 1, 14). Demo texts are short (< 200 tokens), so the low theta costs nothing there.
        mrope_section=(2, 7, 7),
        rope_theta=10.0,
        # Still pairs. With theta 10 alone every pair turned at least 0.12 rad per token, so no query could match an
        # image token by what it shows alone: the score also turned with the token's row, column and distance from the
        # text. The h and w sections keep their four fastest pairs and the t section none; the other pairs turn 1e-3
        # rad per step, as the real theta 1e6 leaves its lowest pairs nearly still. See the README's demo section for
        # what it changed.
        rotary_pair_freqs=(
            # t: both pairs still; h (image rows), then w (image columns): four turning pairs and three still ones
            (STILL_PAIR,) * 2
            + (0.75, 0.56, 0.42, 0.32)
            + (STILL_PAIR,) * 3
            + (0.28, 0.21, 0.16, 0.12)
            + (STILL_PAIR,) * 3
        ),
        vision_depth=4,
        vision_embed_dim=128,
        vision_num_heads=4,
        whole_reasoning_tags=True,
        attention_init_gain=3.0,
    ),
}


# Integer sizes a caller may change on top of a preset (`tinyrs-tiny-model --size num_hidden_layers=8`), for probes
# of width against depth; the rotary layout and the tokenizer stay the preset's.
SIZE_FIELDS = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "vision_depth",
    "vision_embed_dim",
    "vision_num_heads",
)


def resized(preset: Preset, sizes: dict[str, int]) -> Preset:
    """`preset` with some of its SIZE_FIELDS replaced; anything else is refused."""
    unknown = sorted(set(sizes) - set(SIZE_FIELDS))
    if unknown:
        raise ValueError(f"cannot resize {', '.join(unknown)}; sizes that can change: {', '.join(SIZE_FIELDS)}")
    bad = sorted(name for name, value in sizes.items() if not isinstance(value, int) or value < 1)
    if bad:
        raise ValueError(f"sizes must be positive integers: {', '.join(f'{n}={sizes[n]!r}' for n in bad)}")
    changed = replace(preset, **sizes)
    check_head_shapes(changed)  # here, so that a bad size is refused before anything is written
    return changed


def check_head_shapes(preset: Preset) -> None:
    """Refuse sizes the rotary layout cannot take: it fixes the head width, and query heads share key/value groups."""
    head_dim, rem = divmod(preset.hidden_size, preset.num_attention_heads)
    if rem or sum(preset.mrope_section) * 2 != head_dim:
        raise ValueError(
            f"hidden_size / num_attention_heads = {preset.hidden_size} / {preset.num_attention_heads} must be "
            f"{sum(preset.mrope_section) * 2}, the head width of the preset's rotary layout {preset.mrope_section}"
        )
    if preset.num_attention_heads % preset.num_key_value_heads:
        raise ValueError(
            f"num_attention_heads {preset.num_attention_heads} is not a multiple of "
            f"num_key_value_heads {preset.num_key_value_heads}"
        )


def _rope_parameters(preset: Preset, head_dim: int) -> dict:
    params = {"rope_type": "default", "rope_theta": preset.rope_theta, "mrope_section": list(preset.mrope_section)}
    if preset.rotary_pair_freqs is None:
        return params
    pairs = head_dim // 2
    if len(preset.rotary_pair_freqs) != pairs:
        raise ValueError(f"rotary_pair_freqs has {len(preset.rotary_pair_freqs)} entries; head_dim/2 = {pairs}")
    # LongRoPE: inv_freq[i] = 1 / (factor[i] * theta ** (i / pairs)); factor 1 and attention_factor 1 scale nothing.
    factors = [preset.rope_theta ** (-i / pairs) / f for i, f in enumerate(preset.rotary_pair_freqs)]
    return {
        **params,
        "rope_type": "longrope",
        "short_factor": factors,
        "long_factor": factors,
        "factor": 1.0,
        "attention_factor": 1.0,
        "original_max_position_embeddings": MAX_POSITIONS,
    }


def build_model(preset: Preset, tokenizer: Qwen2Tokenizer, seed: int) -> Qwen2VLForConditionalGeneration:
    """A randomly initialised Qwen2-VL of `preset`'s sizes whose special token ids are the tokenizer's."""
    import torch
    from transformers import GenerationConfig, Qwen2VLConfig, Qwen2VLForConditionalGeneration

    ids = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in QWEN2VL_SPECIAL_TOKENS}
    # Round the embedding up like the real model does (151,936 rows for 151,657 tokens).
    vocab_size = (len(tokenizer) + 63) // 64 * 64
    check_head_shapes(preset)
    head_dim = preset.hidden_size // preset.num_attention_heads
    config = Qwen2VLConfig(
        text_config={
            "vocab_size": vocab_size,
            "hidden_size": preset.hidden_size,
            "intermediate_size": preset.intermediate_size,
            "num_hidden_layers": preset.num_hidden_layers,
            "num_attention_heads": preset.num_attention_heads,
            "num_key_value_heads": preset.num_key_value_heads,
            "max_position_embeddings": MAX_POSITIONS,
            "rope_parameters": _rope_parameters(preset, head_dim),
            "tie_word_embeddings": False,
            "bos_token_id": ids["<|endoftext|>"],
            "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"],
        },
        vision_config={
            "depth": preset.vision_depth,
            "embed_dim": preset.vision_embed_dim,
            # The merger projects vision features to the text hidden size.
            "hidden_size": preset.hidden_size,
            "num_heads": preset.vision_num_heads,
            "mlp_ratio": 2,
            "in_channels": 3,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        vision_token_id=ids["<|vision_pad|>"],
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config)
    if preset.attention_init_gain != 1.0:
        with torch.no_grad():
            for layer in model.model.language_model.layers:
                layer.self_attn.q_proj.weight.mul_(preset.attention_init_gain)
                layer.self_attn.k_proj.weight.mul_(preset.attention_init_gain)
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=ids["<|endoftext|>"],
        do_sample=False,
    )
    return model


def preset_tokenizer(spec: Preset) -> Qwen2Tokenizer:
    """The byte-level BPE tokenizer a checkpoint of `spec` ships with (trained on the demo's own texts)."""
    return train_tokenizer(BASE_CORPUS + corpus_texts(), spec.bpe_vocab_size, spec.whole_reasoning_tags)


def build_tiny_model(
    output_dir: str | Path,
    preset: str = "tiny",
    seed: int = 0,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    sizes: dict[str, int] | None = None,
    attention_init_gain: float | None = None,
) -> Path:
    """Write a tiny Qwen2-VL checkpoint folder (model, tokenizer, processor, chat template) and return its path.
    `sizes` changes some of the preset's SIZE_FIELDS (see `resized`); `attention_init_gain` replaces the preset's."""
    import torch

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    spec = resized(PRESETS[preset], sizes or {})
    if attention_init_gain is not None:
        if not attention_init_gain > 0:
            raise ValueError(f"attention_init_gain must be positive, got {attention_init_gain}")
        spec = replace(spec, attention_init_gain=attention_init_gain)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tokenizer = preset_tokenizer(spec)
    processor = build_processor(tokenizer, min_pixels, max_pixels)
    model = build_model(spec, tokenizer, seed)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def count_parameters(folder: Path) -> int:
    """Number of parameters in the safetensors files of a checkpoint folder (read from the headers only)."""
    from safetensors import safe_open

    total = 0
    for shard in folder.glob("*.safetensors"):
        with safe_open(str(shard), framework="pt") as f:
            for key in f.keys():
                total += math.prod(f.get_slice(key).get_shape())
    return total
