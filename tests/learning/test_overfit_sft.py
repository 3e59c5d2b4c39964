"""Overfit tests of the SFT stage through ``tinyrs_sft.train.main``: on a handful of images, a healthy pipeline
memorises what each image shows (where the object is, whether it is there, the reasoning format). The negative
controls train on one constant image and must fail the same checks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from helpers import cell_box, draw_scene, greedy_answers, grid_answer, sft_record, sft_train


VG_QUESTION = "{VG} the building"
PRESENCE_QUESTION = "{VQA} Is there a building in the image? Answer yes or no."
GROUNDING_ARGS = ("--max_steps", "240", "--learning_rate", "5e-3")
PRESENCE_ARGS = ("--max_steps", "60", "--learning_rate", "5e-3")
COT_ARGS = ("--max_steps", "100", "--learning_rate", "5e-3")


def parse_box(text: str) -> tuple[float, ...] | None:
    numbers = re.findall(r"\d+(?:\.\d+)?", text)
    return tuple(float(n) for n in numbers[:4]) if len(numbers) >= 4 else None


def iou(a: tuple[float, ...] | None, b: tuple[float, ...] | None) -> float:
    if a is None or b is None:
        return 0.0
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


# ---------------------------------------------------------------------------------------------------------------
# Grounding: 16 images, one building in each of the 16 cells of the same background
# ---------------------------------------------------------------------------------------------------------------
def grounding_set(folder: Path) -> tuple[list[dict], list[tuple[Path, str]], list[str]]:
    records, items, truths = [], [], []
    for row in range(4):
        for col in range(4):
            box = cell_box(col, row)
            name = f"vg_{row}{col}.png"
            draw_scene(folder / name, [("building", box)])
            records.append(sft_record(f"vg{row}{col}", name, VG_QUESTION, grid_answer(box)))
            items.append((folder / name, VG_QUESTION))
            truths.append(grid_answer(box))
    return records, items, truths


def grounding_scores(answers: list[str], truths: list[str]) -> tuple[int, int]:
    """(answers with IoU >= 0.5 against their own image's box, distinct boxes answered)."""
    hits = sum(iou(parse_box(a), parse_box(t)) >= 0.5 for a, t in zip(answers, truths))
    return hits, len({parse_box(a) for a in answers})


def test_grounding_overfits(positional_tiny_model_dir, tmp_path):
    records, items, truths = grounding_set(tmp_path / "images")
    out = sft_train(positional_tiny_model_dir, records, tmp_path / "images", tmp_path / "out", *GROUNDING_ARGS)
    answers = greedy_answers(out, items)
    hits, distinct = grounding_scores(answers, truths)
    print(f"grounding: {hits}/16 hits, {distinct} distinct boxes")
    assert hits >= 15 and distinct >= 15, list(zip(truths, answers))


@pytest.mark.slow
def test_grounding_fails_with_constant_vision(positional_tiny_model_dir, tmp_path, constant_vision):
    records, items, truths = grounding_set(tmp_path / "images")
    constant_vision(items[5][0])  # every training image becomes the one with the building in cell (1, 1)
    out = sft_train(positional_tiny_model_dir, records, tmp_path / "images", tmp_path / "out", *GROUNDING_ARGS)
    hits, distinct = grounding_scores(greedy_answers(out, items), truths)
    print(f"grounding control: {hits}/16 hits, {distinct} distinct boxes")
    assert hits < 15 and distinct < 15
    assert hits <= 4  # the check above fails by far, not by a hair


# ---------------------------------------------------------------------------------------------------------------
# Presence and reasoning format: 8 pairs of images that differ only by one building
# ---------------------------------------------------------------------------------------------------------------
def presence_set(folder: Path) -> tuple[list[dict], list[tuple[Path, str]], list[str], list[dict]]:
    from tinyrs_demo.vocabulary import R_ABSENT, R_PRESENT, REASONING_SYSTEM_PROMPT

    records, items, truths, cot = [], [], [], []
    for pair in range(8):
        cell = cell_box(pair % 2, pair // 2 % 2)
        for present in (True, False):
            name = f"pre_{pair}_{'yes' if present else 'no'}.png"
            objects = [("building", cell)] if present else []
            draw_scene(folder / name, objects, size=56, texture_seed=100 + pair)
            answer = "yes" if present else "no"
            records.append(sft_record(name[:-4], name, PRESENCE_QUESTION, answer))
            items.append((folder / name, PRESENCE_QUESTION))
            truths.append(answer)
            if pair < 2:  # two pairs also as chain-of-thought records (reasoning system prompt, tagged answer)
                shapes, plural = "red rectangles", "buildings"
                reasoning = (
                    R_PRESENT.format(shapes=shapes, plural=plural)
                    if present
                    else R_ABSENT.format(shapes=shapes, plural=plural)
                )
                text = f"<reasoning>{reasoning}</reasoning><answer>{answer}</answer>"
                cot.append(
                    {
                        **sft_record(f"cot_{name[:-4]}", name, PRESENCE_QUESTION, text, REASONING_SYSTEM_PROMPT),
                        "item": (folder / name, PRESENCE_QUESTION),
                    }
                )
    return records, items, truths, cot


def test_presence_overfits(tiny_model_dir, tmp_path):
    records, items, truths, _ = presence_set(tmp_path / "images")
    out = sft_train(tiny_model_dir, records, tmp_path / "images", tmp_path / "out", *PRESENCE_ARGS)
    answers = greedy_answers(out, items, max_new_tokens=4)
    correct = sum(a == t for a, t in zip(answers, truths))
    print(f"presence: {correct}/16 correct")
    assert correct >= 15, list(zip(truths, answers))


def test_reasoning_format_is_reproduced(positional_tiny_model_dir, tmp_path):
    """Chain-of-thought records (reasoning system prompt, tagged answer) of two presence pairs come back verbatim."""
    from tinyrs_demo.vocabulary import REASONING_SYSTEM_PROMPT
    from tinyrs_grpo.rewards import format_score

    _, _, _, cot = presence_set(tmp_path / "images")
    records = [{k: v for k, v in r.items() if k != "item"} for r in cot]
    out = sft_train(positional_tiny_model_dir, records, tmp_path / "images", tmp_path / "out", *COT_ARGS)
    answers = greedy_answers(out, [r["item"] for r in cot], system=REASONING_SYSTEM_PROMPT, max_new_tokens=40)
    targets = [r["conversations"][-1]["value"] for r in cot]
    print(f"reasoning: {sum(a == t for a, t in zip(answers, targets))}/4 exact")
    assert all(format_score(a) == 1.0 for a in answers), answers  # well-formed <reasoning>...</reasoning><answer>
    assert answers == targets


@pytest.mark.slow
def test_presence_fails_with_constant_vision(tiny_model_dir, tmp_path, constant_vision):
    records, items, truths, _ = presence_set(tmp_path / "images")
    constant_vision(items[0][0])  # every training image becomes the first one (a building present)
    out = sft_train(tiny_model_dir, records, tmp_path / "images", tmp_path / "out", *PRESENCE_ARGS)
    answers = greedy_answers(out, items, max_new_tokens=4)
    correct = sum(a == t for a, t in zip(answers, truths))
    print(f"presence control: {correct}/16 correct")
    assert correct < 15
    assert correct <= 11  # chance is 8 of 16
