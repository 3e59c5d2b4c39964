#!/usr/bin/env python
"""Where the answer position looks: attention of the last prompt token, per layer and head, on demo questions.

For a demo checkpoint, ask held-out presence questions ("Is there a <kind> in the image?", drawn like the benchmark's)
and print, per layer and head, the share of the answer position's attention that lands on image tokens and the
entropy of that attention (nats; a uniform spread over n tokens is ln n). A model that answers by finding the asked
object needs heads that put their weight on a few image tokens; heads that spread it evenly only average the image.

    python scripts/probe_attention.py demo_out/sft [--questions 24] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import random
import sys

import torch

from tinyrs_demo.questions import qa_presence
from tinyrs_demo.scenes import TEST_SIZES, render


def answer_attention(checkpoint: str, questions: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mean share on image tokens and mean entropy (layer, head) of the answer position's attention, and the mean
    log of the prompt length (the entropy of a uniform spread)."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(checkpoint)
    model = AutoModelForImageTextToText.from_pretrained(checkpoint, attn_implementation="eager").eval()
    rng = random.Random(f"attention-probe:{seed}")
    image_share = entropy = None
    log_length = 0.0
    for i in range(questions):
        qa = qa_presence(rng, TEST_SIZES, i)
        content = [{"type": "image"}, {"type": "text", "text": qa.prompt_text}]
        text = processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
        inputs = processor(text=[text], images=[render(qa.scenes[0])], return_tensors="pt")
        with torch.no_grad():
            attentions = model(**inputs, output_attentions=True).attentions
        weights = torch.stack([layer[0, :, -1] for layer in attentions])  # (layer, head, key)
        is_image = inputs["input_ids"][0] == model.config.image_token_id
        share = weights[:, :, is_image].sum(-1)
        spread = -(weights.clamp_min(1e-12).log() * weights).sum(-1)
        image_share = share if image_share is None else image_share + share
        entropy = spread if entropy is None else entropy + spread
        log_length += math.log(weights.shape[-1])
    return image_share / questions, entropy / questions, log_length / questions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a demo checkpoint folder (e.g. demo_out/sft)")
    parser.add_argument("--questions", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.questions < 1:
        parser.error("--questions must be at least 1")
    share, entropy, uniform = answer_attention(args.checkpoint, args.questions, args.seed)
    print(f"answer-position attention over {args.questions} presence questions (uniform spread: {uniform:.2f} nats)")
    print("layer | per head: share on image tokens / entropy (nats)")
    for layer in range(share.shape[0]):
        cells = [f"{s:.2f}/{e:.2f}" for s, e in zip(share[layer].tolist(), entropy[layer].tolist())]
        print(f"{layer} | " + " ".join(cells))
    lowest_layer = int(entropy.min(1).values.argmin())
    print(f"mean entropy {entropy.mean():.2f} nats; lowest {entropy.min():.2f} (layer {lowest_layer})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
