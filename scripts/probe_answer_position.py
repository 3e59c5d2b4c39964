#!/usr/bin/env python
"""What the model knows where it must answer a presence question: linear probes on the answer position, per layer.

For a demo checkpoint (`make demo` writes them under demo_out/), ask "Is there a <kind> in the image?" about held-out
single-object scenes drawn like the demo's and fit, per layer, a linear probe on the hidden state of the last prompt
token (where the answer is generated) to read (a) the asked kind, (b) the kind the image shows and (c) the answer.
A model that answers presence by finding the named object needs (a) and (b) there; the probes tell which one is
missing. Probes are fitted on three quarters of the scenes and scored on the rest (chance: 25% for the kinds; for the
answer, the share of the majority answer, 75%).

    python scripts/probe_answer_position.py demo_out/pretrain [--scenes 400] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import sys

import torch

from tinyrs_demo.scenes import make_scene, render
from tinyrs_demo.vocabulary import COUNTABLE_KINDS, Q_PRESENCE, SCENE_CLASSES, VQA_TAG


def answer_position_states(checkpoint: str, scenes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hidden states (scene, layer, dim) at the answer position, the asked kind and the shown kind of each scene."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(checkpoint)
    model = AutoModelForImageTextToText.from_pretrained(checkpoint).eval()
    rng = random.Random(f"answer-position-probe:{seed}")
    states, asked, shown = [], [], []
    for _ in range(scenes):
        a, s = rng.randrange(len(COUNTABLE_KINDS)), rng.randrange(len(COUNTABLE_KINDS))
        scene = make_scene(rng, (112, 112), rng.choice(SCENE_CLASSES), {COUNTABLE_KINDS[s]: 1})
        question = f"{VQA_TAG} {Q_PRESENCE.format(kind=COUNTABLE_KINDS[a])}"
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
        text = processor.apply_chat_template(messages, add_generation_prompt=True)
        inputs = processor(text=[text], images=[render(scene)], return_tensors="pt")
        with torch.no_grad():
            hidden = model(**inputs, output_hidden_states=True).hidden_states
        states.append(torch.stack([layer[0, -1] for layer in hidden]))
        asked.append(a)
        shown.append(s)
    return torch.stack(states), torch.tensor(asked), torch.tensor(shown)


def probe_accuracy(features: torch.Tensor, labels: torch.Tensor, steps: int = 300) -> float:
    """Held-out accuracy of a softmax-regression probe fitted on the first three quarters of the rows."""
    torch.manual_seed(0)
    n = len(labels) * 3 // 4
    x = (features - features[:n].mean(0)) / (features[:n].std(0) + 1e-6)
    classes = int(labels.max()) + 1
    weight = torch.zeros(x.shape[1], classes, requires_grad=True)
    bias = torch.zeros(classes, requires_grad=True)
    optimizer = torch.optim.Adam([weight, bias], lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(x[:n] @ weight + bias, labels[:n]) + 1e-3 * weight.pow(2).sum()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return ((x[n:] @ weight + bias).argmax(1) == labels[n:]).float().mean().item()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a demo checkpoint folder (e.g. demo_out/pretrain)")
    parser.add_argument("--scenes", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    states, asked, shown = answer_position_states(args.checkpoint, args.scenes, args.seed)
    answer = (asked == shown).long()
    print("layer | asked kind | shown kind | answer (held-out probe accuracy)")
    for layer in range(states.shape[1]):
        feats = states[:, layer]
        row = [probe_accuracy(feats, asked), probe_accuracy(feats, shown), probe_accuracy(feats, answer)]
        print(f"{layer} | " + " | ".join(f"{100 * v:.0f}%" for v in row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
