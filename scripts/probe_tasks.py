#!/usr/bin/env python
"""Greedy accuracy of a demo checkpoint on held-out questions of one SFT task, benchmarked or not.

The demo's benchmarks leave some of the SFT tasks unmeasured (counting, the two-image question, the text-only one),
and comparison is only scored in aggregate. This asks `--questions` fresh questions of one task, drawn by the demo's
own builder (tinyrs_demo.questions) on the evaluation image sizes with a seed of their own, in the SFT prompt form,
and prints how many the checkpoint answers exactly right with the (expected, answered) counts.

    python scripts/probe_tasks.py demo_out/sft --task count [--questions 60] [--seed 0]
"""

from __future__ import annotations

import argparse
import collections
import random
import sys
from collections.abc import Callable

from probe_text_drills import greedy_generator

from tinyrs_demo.questions import QA, qa_comp, qa_count, qa_multi, qa_presence, qa_rural, qa_text
from tinyrs_demo.scenes import TEST_SIZES, render


TASKS: dict[str, Callable[[random.Random, tuple, int], QA]] = {
    "count": qa_count,
    "comp": qa_comp,
    "presence": qa_presence,
    "rural": qa_rural,
    "multi": qa_multi,
    "text": qa_text,
}


def held_out_questions(task: str, questions: int, seed: int) -> list[QA]:
    """`questions` questions of `task` from a random stream no data writer uses."""
    rng = random.Random(f"probe-tasks:{task}:{seed}")
    return [TASKS[task](rng, TEST_SIZES, i) for i in range(questions)]


def tally(answer: Callable[[QA], str], qas: list[QA]) -> tuple[int, collections.Counter]:
    """Exactly right answers (stripped) and the (expected, answered) counts."""
    pairs = collections.Counter((qa.answer, answer(qa).strip()) for qa in qas)
    return sum(n for (expected, got), n in pairs.items() if expected == got), pairs


def greedy_answerer(checkpoint: str, max_new_tokens: int = 8) -> Callable[[QA], str]:
    """A function question -> the checkpoint's greedy answer to its SFT prompt (images first, as in the SFT data)."""
    generate = greedy_generator(checkpoint, max_new_tokens)

    def answer(qa: QA) -> str:
        content = [{"type": "image"} for _ in qa.scenes] + [{"type": "text", "text": qa.prompt_text}]
        return generate(content, [render(scene) for scene in qa.scenes] or None)

    return answer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a demo checkpoint folder (e.g. demo_out/sft)")
    parser.add_argument("--task", choices=sorted(TASKS), required=True)
    parser.add_argument("--questions", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.questions < 1:
        parser.error("--questions must be at least 1")
    right, pairs = tally(greedy_answerer(args.checkpoint), held_out_questions(args.task, args.questions, args.seed))
    print(f"{args.checkpoint}: {args.task} {right}/{args.questions} right")
    print("expected -> answered: " + ", ".join(f"{e!r}->{g!r} {n}" for (e, g), n in sorted(pairs.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
