"""Build a complete, tiny, randomly initialised Qwen2-VL checkpoint folder, offline.

Model weights cannot be downloaded on the development and CI machines, so tests and the demo build their own
checkpoint: a byte-level BPE tokenizer trained here on the demo data's vocabulary (with the Qwen2-VL special tokens
appended in their real order), the official Qwen2-VL chat template, a ``Qwen2VLProcessor`` and a
``Qwen2VLForConditionalGeneration`` from a small config. The result loads with ``AutoProcessor.from_pretrained`` and
``AutoModelForImageTextToText.from_pretrained`` under ``HF_HUB_OFFLINE=1``, exactly like a hub checkpoint.

    python scripts/make_tiny_model.py --preset tiny --output_dir /tmp/tiny-qwen2vl
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path


# The Qwen2-VL special tokens, in the order (and so with the relative ids) of the real tokenizer.
QWEN2VL_SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# Qwen2's pre-tokenizer split pattern: contractions, letters, single digits, punctuation runs, newlines, spaces.
QWEN2_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# The official Qwen2-VL chat template (identical text to TRL's qwen2_5_vl.jinja, so TRL recognises it).
QWEN2VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\n"
    "You are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% endif %}"
)

# Text every checkpoint's tokenizer must cover besides the demo data: chat roles, prompts, digits, punctuation.
BASE_CORPUS = [
    "system user assistant You are a helpful assistant.",
    "<reasoning> </reasoning> <answer> </answer> {CLS} {VQA} {VG} [[0, 0, 1000, 1000]]",
    "0 1 2 3 4 5 6 7 8 9 10 100 1000 yes no Yes No A B C D E",
    "The quick brown fox jumps over the lazy dog. What is in the image? Answer with one word or phrase.",
    "( ) [ ] { } , . ; : ! ? ' \" - _ / \\ + = * & % $ # @ < > |",
]

# Real Qwen2-VL defaults for the image processor's pixel bounds (4..16384 visual tokens).
DEFAULT_MIN_PIXELS = 56 * 56
DEFAULT_MAX_PIXELS = 28 * 28 * 16384


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
        vision_depth=4,
        vision_embed_dim=128,
        vision_num_heads=4,
        whole_reasoning_tags=True,
    ),
}


def demo_corpus() -> list[str]:
    """Texts of every template the demo data generator emits (so the tokenizer covers them well)."""
    scripts_dir = str(Path(__file__).resolve().parent)
    if scripts_dir not in sys.path:
        sys.path.insert(0, scripts_dir)
    import make_demo_data  # noqa: PLC0415  (a sibling script, not a package)

    return list(make_demo_data.corpus_texts())


REASONING_TAGS = ["<reasoning>", "</reasoning>", "<answer>", "</answer>"]


def train_tokenizer(corpus: list[str], vocab_size: int, whole_reasoning_tags: bool = False):
    """Train a byte-level BPE (Qwen2 split regex) and wrap it as a transformers Qwen2 tokenizer."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        # All 256 bytes are in the alphabet, so no text is ever out of vocabulary.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=False,
    )
    bpe.train_from_iterator(corpus, trainer=trainer)
    state = json.loads(bpe.to_str())
    vocab: dict[str, int] = state["model"]["vocab"]
    # Special tokens take the ids right after the BPE vocabulary, in the real tokenizer's order.
    for token in QWEN2VL_SPECIAL_TOKENS:
        vocab[token] = len(vocab)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["model"]["merges"]]
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    tokenizer.add_special_tokens({"additional_special_tokens": QWEN2VL_SPECIAL_TOKENS})
    if whole_reasoning_tags:
        # Ordinary (not special) added tokens: they survive decoding with skip_special_tokens.
        tokenizer.add_tokens(REASONING_TAGS)
    return tokenizer


def build_processor(tokenizer, min_pixels: int, max_pixels: int):
    from transformers import Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    image_processor = Qwen2VLImageProcessor(
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        size={"shortest_edge": min_pixels, "longest_edge": max_pixels},
        patch_size=14,
        temporal_patch_size=2,
        merge_size=2,
    )
    video_processor = Qwen2VLVideoProcessor()
    return Qwen2VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=QWEN2VL_CHAT_TEMPLATE,
    )


def build_model(preset: Preset, tokenizer, seed: int):
    import torch
    from transformers import GenerationConfig, Qwen2VLConfig, Qwen2VLForConditionalGeneration

    ids = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in QWEN2VL_SPECIAL_TOKENS}
    # Round the embedding up like the real model does (151,936 rows for 151,657 tokens).
    vocab_size = (len(tokenizer) + 63) // 64 * 64
    head_dim = preset.hidden_size // preset.num_attention_heads
    if sum(preset.mrope_section) * 2 != head_dim:
        raise ValueError(f"mrope_section {preset.mrope_section} must sum to head_dim/2 = {head_dim // 2}")
    config = Qwen2VLConfig(
        text_config={
            "vocab_size": vocab_size,
            "hidden_size": preset.hidden_size,
            "intermediate_size": preset.intermediate_size,
            "num_hidden_layers": preset.num_hidden_layers,
            "num_attention_heads": preset.num_attention_heads,
            "num_key_value_heads": preset.num_key_value_heads,
            "max_position_embeddings": 4096,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": preset.rope_theta,
                "mrope_section": list(preset.mrope_section),
            },
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
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=ids["<|endoftext|>"],
        do_sample=False,
    )
    return model


def build_tiny_model(
    output_dir: str | Path,
    preset: str = "tiny",
    seed: int = 0,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Path:
    """Write a tiny Qwen2-VL checkpoint folder (model, tokenizer, processor, chat template) and return its path."""
    import torch

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    spec = PRESETS[preset]
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tokenizer = train_tokenizer(BASE_CORPUS + demo_corpus(), spec.bpe_vocab_size, spec.whole_reasoning_tags)
    processor = build_processor(tokenizer, min_pixels, max_pixels)
    model = build_model(spec, tokenizer, seed)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min_pixels", type=int, default=DEFAULT_MIN_PIXELS)
    parser.add_argument("--max_pixels", type=int, default=DEFAULT_MAX_PIXELS)
    args = parser.parse_args(argv)
    out = build_tiny_model(args.output_dir, args.preset, args.seed, args.min_pixels, args.max_pixels)
    n_params = _count_parameters(out)
    print(f"wrote {args.preset} Qwen2-VL checkpoint ({n_params / 1e6:.2f} M parameters) to {out}")
    return 0


def _count_parameters(folder: Path) -> int:
    from safetensors import safe_open

    total = 0
    for shard in folder.glob("*.safetensors"):
        with safe_open(str(shard), framework="pt") as f:
            for key in f.keys():
                total += _prod(f.get_slice(key).get_shape())
    return total


def _prod(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


if __name__ == "__main__":
    sys.exit(main())
