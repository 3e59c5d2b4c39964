"""The demo's token budgets hold every answer its data asks for, counted with the small preset's own tokenizer.

A budget shorter than an answer cuts it silently: the GRPO recipe once allowed 48 completion tokens while a grounding
answer in the reasoning format takes up to 59 (its box twice, digit by digit). Every cut answer lost its last box
unless the box had few digits, so GRPO rewarded short boxes and the policy ended on [[0, 0, 500, 500]] for every
question. These tests fail when a template, the box format or the tokenizer outgrows a budget.
"""

from __future__ import annotations

import functools
import random
from pathlib import Path

import pytest
import run_demo
import yaml

from tinyrs_demo.questions import COT_BUILDERS, QA, cot_answer, eval_builder
from tinyrs_demo.scenes import TEST_SIZES, TRAIN_SIZES
from tinyrs_demo.tiny_model import PRESETS, preset_tokenizer
from tinyrs_demo.vocabulary import BENCHMARKS


REPO = Path(__file__).resolve().parents[1]
DRAWS = 200  # questions drawn per builder: enough to meet the longest boxes (four-digit coordinates) many times
END_OF_TURN = 1  # <|im_end|> ends every generated answer and counts against the budget


@functools.cache
def small_tokenizer():
    return preset_tokenizer(PRESETS["small"])


def _tokens(text: str) -> int:
    return len(small_tokenizer()(text)["input_ids"]) + END_OF_TURN


def _longest(qas: list[QA], render) -> tuple[int, str]:
    return max((_tokens(text), text) for text in map(render, qas))


def _draw(builder, sizes) -> list[QA]:
    rng = random.Random("test_demo_budgets")
    return [builder(rng, sizes, i) for i in range(DRAWS)]


def _eval_max_new_tokens(reasoning: bool) -> int:
    cmd = run_demo.eval_command(Path("out"), "stage", Path("model"), reasoning, run_demo.FULL)
    return int(cmd[cmd.index("--max_new_tokens") + 1])


def test_grpo_completion_budget_holds_every_reasoning_answer() -> None:
    recipe = yaml.safe_load((REPO / "grpo" / "configs" / "cpu_demo.yaml").read_text(encoding="utf-8"))
    budget = recipe["max_completion_length"]
    for builder in COT_BUILDERS:  # the GRPO rows are drawn by the same builders
        length, text = _longest(_draw(builder, TRAIN_SIZES + TEST_SIZES), cot_answer)
        assert length <= budget, f"{builder.__name__}: {length} tokens > max_completion_length {budget}: {text!r}"


@pytest.mark.parametrize("reasoning", [False, True], ids=["plain", "reasoning"])
def test_eval_budget_holds_every_benchmark_answer(reasoning: bool) -> None:
    budget = _eval_max_new_tokens(reasoning)
    render = cot_answer if reasoning else (lambda qa: qa.answer)
    for key in BENCHMARKS:
        length, text = _longest(_draw(eval_builder(key), TEST_SIZES), render)
        assert length <= budget, f"{key}: {length} tokens > --max_new_tokens {budget}: {text!r}"
