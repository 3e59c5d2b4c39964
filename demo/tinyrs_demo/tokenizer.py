"""The tiny checkpoint's text side: a byte-level BPE tokenizer trained on the demo data's vocabulary (with the
Qwen2-VL special tokens appended in their real order), the official Qwen2-VL chat template and the processor.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    from transformers import Qwen2Tokenizer, Qwen2VLProcessor


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

# The official Qwen2-VL chat template (identical text to TRL's qwen2_5_vl.jinja, so TRL recognises it). Keep in sync
# with sft/tinyrs_sft/model.py (copied on purpose; tests/test_intentional_copies.py checks that the copies agree).
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


REASONING_TAGS = ["<reasoning>", "</reasoning>", "<answer>", "</answer>"]


def train_tokenizer(corpus: list[str], vocab_size: int, whole_reasoning_tags: bool = False) -> Qwen2Tokenizer:
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


def build_processor(tokenizer: Qwen2Tokenizer, min_pixels: int, max_pixels: int) -> Qwen2VLProcessor:
    """A Qwen2-VL processor (image processor with the given pixel bounds, the tokenizer, the chat template)."""
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
