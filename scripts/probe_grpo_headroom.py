#!/usr/bin/env python
"""How much GRPO can gain by sharpening alone: greedy vs sampled accuracy reward of a checkpoint on GRPO prompts.

GRPO raises the reward of the completions it samples. If it only made the policy more certain of what it already
answers greedily, the sampled reward would rise at most to the greedy reward. This prints, per question family (the
prompt's task tag and first words), the mean accuracy reward of the greedy completion, the mean over `--generations`
sampled completions (the recipe's temperature and top-k), and how many groups have any reward variance (the only
groups that carry a GRPO signal). Open-ended rows (answer type "0", judge-graded) are skipped.

    python scripts/probe_grpo_headroom.py demo_out/cot_sft --dataset demo_out/data/grpo [--limit 240]
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tinyrs_grpo.rewards import accuracy_reward


_TAG = re.compile(r"^\s*(\{[A-Z]+\})?\s*(.*)$", re.DOTALL)


def question_family(problem: str, words: int = 3) -> str:
    """The task tag ({CLS}, {VQA}, {VG}) if any, then the first `words` words of the question's first line."""
    tag, rest = _TAG.match(problem).groups()
    head = " ".join(rest.split("\n", 1)[0].split()[:words])
    return f"{tag} {head}" if tag else head


@dataclass
class Family:
    greedy: list[float] = field(default_factory=list)  # one reward per prompt
    sampled: list[list[float]] = field(default_factory=list)  # one group of rewards per prompt


def tally(rows: Sequence[dict], complete: Callable[[dict], tuple[str, list[str]]]) -> dict[str, Family]:
    """Score each row's greedy and sampled completions (`complete(row)` -> (greedy, samples)) per question family."""
    families: dict[str, Family] = collections.defaultdict(Family)
    for row in rows:
        greedy, samples = complete(row)
        rewards = accuracy_reward([greedy, *samples], [row["solution"]] * (1 + len(samples)))
        family = families[question_family(row["problem"])]
        family.greedy.append(rewards[0])
        family.sampled.append(rewards[1:])
    return dict(families)


def summary(families: dict[str, Family]) -> dict:
    """Per family and overall: prompts, mean greedy and mean sampled reward, groups with any reward variance."""

    def row(fams: Sequence[Family]) -> dict:
        greedy = [r for f in fams for r in f.greedy]
        groups = [g for f in fams for g in f.sampled]
        sampled = [r for g in groups for r in g]
        return {
            "prompts": len(greedy),
            "greedy": sum(greedy) / len(greedy),
            "sampled": sum(sampled) / len(sampled),
            "groups_with_variance": sum(1 for g in groups if max(g) > min(g)),
        }

    ordered = sorted(families.items(), key=lambda item: (-len(item[1].greedy), item[0]))
    return {"families": {name: row([fam]) for name, fam in ordered}, "overall": row(list(families.values()))}


def completer(
    checkpoint: str, generations: int, temperature: float, top_k: int, max_new_tokens: int, seed: int
) -> Callable[[dict], tuple[str, list[str]]]:
    """A function GRPO row -> (greedy completion, `generations` sampled completions) from the checkpoint."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    torch.manual_seed(seed)
    processor = AutoProcessor.from_pretrained(checkpoint)
    model = AutoModelForImageTextToText.from_pretrained(checkpoint).eval()

    def complete(row: dict) -> tuple[str, list[str]]:
        text = processor.apply_chat_template(row["prompt"], add_generation_prompt=True)
        inputs = processor(text=[text], images=[row["image"].convert("RGB")], return_tensors="pt")
        start = inputs["input_ids"].shape[1]
        with torch.no_grad():
            greedy = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
            samples = model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=True,
                temperature=temperature,
                top_k=top_k,
                top_p=1.0,
                num_return_sequences=generations,
            )
        decode = processor.tokenizer.decode
        return decode(greedy[0, start:], skip_special_tokens=True), [
            decode(s[start:], skip_special_tokens=True) for s in samples
        ]

    return complete


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a checkpoint folder (e.g. demo_out/cot_sft)")
    parser.add_argument("--dataset", required=True, help="a GRPO dataset saved with save_to_disk (demo_out/data/grpo)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--limit", type=int, default=None, help="first N rows only")
    parser.add_argument("--generations", type=int, default=4, help="the recipe's num_generations")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top_k", type=int, default=50)
    parser.add_argument("--max_new_tokens", type=int, default=80, help="the recipe's max_completion_length")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the summary to this file")
    args = parser.parse_args(argv)
    if args.generations < 2:
        parser.error("--generations must be at least 2 (a group)")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    import datasets

    data = datasets.load_from_disk(args.dataset)[args.split]
    if args.limit is not None:
        data = data.select(range(min(args.limit, len(data))))
    rows = [row for row in data if str(row["solution"][0]) != "0"]
    if not rows:
        parser.error(f"{args.dataset} ({args.split}): no exact-match or box rows to score")
    complete = completer(
        args.checkpoint, args.generations, args.temperature, args.top_k, args.max_new_tokens, args.seed
    )
    result = summary(tally(rows, complete))
    print(f"{args.checkpoint}: {len(rows)} prompts, {args.generations} samples each at temperature {args.temperature}")
    print(f"{'family':32s} {'prompts':>7s} {'greedy':>7s} {'sampled':>7s} {'varied':>7s}")
    for name, fam in [*result["families"].items(), ("overall", result["overall"])]:
        print(
            f"{name[:32]:32s} {fam['prompts']:7d} {fam['greedy']:7.3f} {fam['sampled']:7.3f} "
            f"{fam['groups_with_variance']:7d}"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
