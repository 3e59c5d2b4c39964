#!/usr/bin/env python
"""Text-only drills that tell which attention skill a demo checkpoint can learn, without images.

Presence, comparison and LHRS-Bench all need the language model to find something by what it *is*: the asked kind
among the visual tokens, or the option whose text is the answer. These drills ask for the same skills on words alone:

- ``copy``: "Repeat this word: X" -> X. Moves a token to the answer by its position (positive control).
- ``membership``: "List: a, b, c, d. Is X in the list?" -> yes/no. Finds a token by its content, as presence must.
- ``lookup``: "Which option is X?" over an LHRS-Bench option block -> the letter of X, as LHRS-Bench must.
- ``membership_first``: "Is X in this list: a, b, c, d?" -> yes/no. Membership with the asked word first, so each
  listed word can look back at it; in ``membership`` the asked word comes last and also matches itself, which tells
  whether that confound is what stalls the content match.
- ``membership_dense`` and ``lookup_dense``: four membership questions, or the letters of all four options, in one
  answer ("yes, no, no, yes"; "D, C, A, B"). Four supervised lookups per record instead of one, which tells whether
  the skill is starved of signal (one answer token per drill) rather than slow to form.

The words are the demo's own (scene classes, colours, quadrants, kinds). ``write`` makes a training list (the LLaVA
format the SFT trainer reads; no images) and a held-out set whose prompts never occur in it; train with the SFT CLI;
``score`` greedy-decodes the held-out prompts and prints the share answered exactly right.

    python scripts/probe_text_drills.py write --task membership --records 3000 --output_dir runs/membership
    DS_ACCELERATOR=cpu deepspeed --num_gpus 1 --module tinyrs_sft.train --config sft/configs/cpu_demo.yaml \
        --model_name_or_path demo_out/base --dataset_name runs/membership/train.json \
        --image_folder runs/membership --output_dir runs/membership/model --num_train_epochs 2
    python scripts/probe_text_drills.py score runs/membership/model --heldout runs/membership/heldout.json
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import sys
from collections.abc import Callable
from pathlib import Path

from tinyrs_demo.vocabulary import COLOUR_NAMES, COUNTABLE_KINDS, MC_SUFFIX, PLURALS, QUADRANTS, SCENE_CLASSES


TASKS = ("copy", "membership", "lookup", "membership_first", "membership_dense", "lookup_dense")
WORDS = tuple(sorted({*SCENE_CLASSES, *COLOUR_NAMES.values(), *QUADRANTS, *PLURALS.values(), *COUNTABLE_KINDS}))
# Option pools of the demo's LHRS-Bench questions: an option block never mixes pools, as in the benchmark.
OPTION_POOLS = (
    tuple(SCENE_CLASSES),
    tuple(COLOUR_NAMES[k] for k in COUNTABLE_KINDS),
    tuple(QUADRANTS),
    ("1", "2", "3", "4"),
    tuple(PLURALS[k] for k in COUNTABLE_KINDS),
)
HELDOUT = 200


def drill(task: str, rng: random.Random) -> tuple[str, str]:
    """One (prompt, answer) pair of `task`."""
    if task == "copy":
        word = rng.choice(WORDS)
        return f"Repeat this word: {word}", word
    if task in ("membership", "membership_first"):
        listed = rng.sample(WORDS, 4)
        present = rng.random() < 0.5
        word = rng.choice(listed) if present else rng.choice([w for w in WORDS if w not in listed])
        answer = "yes" if present else "no"
        if task == "membership_first":
            return f"Is {word} in this list: {', '.join(listed)}?", answer
        return f"List: {', '.join(listed)}. Is {word} in the list?", answer
    if task == "lookup":
        pool = rng.choice(OPTION_POOLS)
        options = rng.sample(pool, 2 if rng.random() < 0.2 else min(4, len(pool)))
        word = rng.choice(options)
        block = "\n".join(f"{'ABCD'[i]}. {o}" for i, o in enumerate(options))
        return f"Which option is {word}?\n{block}\n{MC_SUFFIX}", "ABCD"[options.index(word)]
    if task == "membership_dense":
        listed = rng.sample(WORDS, 4)
        asked = [
            rng.choice(listed) if rng.random() < 0.5 else rng.choice([w for w in WORDS if w not in listed])
            for _ in range(4)
        ]
        answers = ", ".join("yes" if w in listed else "no" for w in asked)
        return f"List: {', '.join(listed)}. Which are in the list: {', '.join(asked)}?", answers
    if task == "lookup_dense":
        options = rng.sample(rng.choice([p for p in OPTION_POOLS if len(p) >= 4]), 4)
        asked = rng.sample(options, 4)
        block = "\n".join(f"{'ABCD'[i]}. {o}" for i, o in enumerate(options))
        return f"{block}\nLetters of: {', '.join(asked)}", ", ".join("ABCD"[options.index(w)] for w in asked)
    raise ValueError(f"unknown drill task {task!r}; choose one of {TASKS}")


def write_drills(task: str, records: int, output_dir: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write `records` training drills (train.json, LLaVA list) and HELDOUT held-out ones (heldout.json, [[prompt,
    answer], ...]) whose prompts are not among the training prompts (copy has only len(WORDS) prompts: none held out
    beyond those, so its held-out set repeats training prompts by design)."""
    rng = random.Random(f"text-drills:{task}:{seed}")
    train = [drill(task, rng) for _ in range(records)]
    seen = {prompt for prompt, _ in train}
    held_rng = random.Random(f"text-drills-heldout:{task}:{seed}")
    heldout: list[tuple[str, str]] = []
    while len(heldout) < HELDOUT:
        pair = drill(task, held_rng)
        if task == "copy" or pair[0] not in seen:
            heldout.append(pair)
    output_dir.mkdir(parents=True, exist_ok=True)
    train_path, heldout_path = output_dir / "train.json", output_dir / "heldout.json"
    listing = [
        {"id": f"{task}_{i:05d}", "conversations": [{"from": "human", "value": p}, {"from": "gpt", "value": a}]}
        for i, (p, a) in enumerate(train)
    ]
    train_path.write_text(json.dumps(listing, indent=1) + "\n", encoding="utf-8")
    heldout_path.write_text(json.dumps(heldout, indent=1) + "\n", encoding="utf-8")
    return train_path, heldout_path


def score(answer: Callable[[str], str], heldout: list[list[str]]) -> float:
    """Share of held-out prompts whose answer (stripped) equals the expected one exactly."""
    if not heldout:
        raise ValueError("empty held-out set")
    return sum(answer(prompt).strip() == expected for prompt, expected in heldout) / len(heldout)


def item_score(answer: Callable[[str], str], heldout: list[list[str]]) -> float:
    """Share of the comma-separated items of the expected answers that the answers get right, item by item in order
    (the dense drills' measure; a one-item answer counts as one item)."""
    expected = [[item.strip() for item in e.split(",")] for _, e in heldout]
    if not expected:
        raise ValueError("empty held-out set")
    right = 0
    for (prompt, _), items in zip(heldout, expected):
        got = [item.strip() for item in answer(prompt).split(",")]
        right += sum(g == e for g, e in zip(got, items))
    return right / sum(map(len, expected))


def greedy_generator(checkpoint: str, max_new_tokens: int = 8) -> Callable[[list[dict], list | None], str]:
    """A function (user-turn content, images or None) -> the checkpoint's greedy reply (its own chat template)."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(checkpoint)
    model = AutoModelForImageTextToText.from_pretrained(checkpoint).eval()

    def generate(content: list[dict], images: list | None) -> str:
        text = processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
        inputs = processor(text=[text], images=images, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        return processor.tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)

    return generate


def greedy_answerer(checkpoint: str, max_new_tokens: int = 8) -> Callable[[str], str]:
    """A function prompt -> the checkpoint's greedy answer (text only, the checkpoint's chat template)."""
    generate = greedy_generator(checkpoint, max_new_tokens)
    return lambda prompt: generate([{"type": "text", "text": prompt}], None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    write = sub.add_parser("write", help="write train.json and heldout.json")
    write.add_argument("--task", choices=TASKS, required=True)
    write.add_argument("--records", type=int, default=3000)
    write.add_argument("--output_dir", type=Path, required=True)
    write.add_argument("--seed", type=int, default=0)
    run = sub.add_parser("score", help="held-out accuracy of a checkpoint")
    run.add_argument("checkpoint")
    run.add_argument("--heldout", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "write":
        train, held = write_drills(args.task, args.records, args.output_dir, args.seed)
        print(f"wrote {train} ({args.records} drills) and {held} ({HELDOUT} held out)")
        return 0
    heldout = json.loads(args.heldout.read_text(encoding="utf-8"))
    dense = any("," in expected for _, expected in heldout)
    # Both scores read the same answers: generate each once.
    cached = functools.cache(greedy_answerer(args.checkpoint, max_new_tokens=16 if dense else 8))
    accuracy = score(cached, heldout)
    right = round(accuracy * len(heldout))
    line = f"{args.checkpoint}: {right}/{len(heldout)} held-out drills right ({100 * accuracy:.1f}%)"
    if dense:
        line += f"; {100 * item_score(cached, heldout):.1f}% of their items right"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
