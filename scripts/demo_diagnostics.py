"""What the demo's headline scores hide, read from each stage's eval predictions (used by scripts/run_demo.py).

- Presence split by case: a model that answers "is there *any* object" gets "asked kind shown" and "empty scene"
  right and "other kinds only" wrong, so its headline score alone cannot tell it from one that finds the named object.
- Distinct grounding boxes: a model that answers one box for every image can still hit some.
- Answers collapsed onto one: a model that answers "B" to every multiple-choice question (or "yes" to every yes/no
  question) scores the share of the ground truth that is "B"; tinyrs-eval report's answer-spread rule finds them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from tinyrs_demo.vocabulary import Q_PRESENCE
from tinyrs_eval.report.answers import COLLAPSE_EXCESS, answer_spread


PRESENCE_BENCHMARKS = ("vqa_HR-pre", "vqa_LR-pre")
PRESENCE_CASES = ("asked kind shown", "empty scene", "other kinds only")
# The template the demo data asks presence with, the kind captured.
PRESENCE_QUESTION = re.compile(re.escape(Q_PRESENCE).replace(re.escape("{kind}"), "(?P<kind>.+?)"))
# Only answers written as a bracketed box count as boxes. The scorers' parse_box (tinyrs_eval.boxparse) would also
# read any four loose numbers of a text as a box (a caption's counts, say), which is not an answer the model gave.
BOX = re.compile(r"\[\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*\]")


def presence_case(question: str, scene: dict) -> str:
    """Which of PRESENCE_CASES a presence question about `scene` (its scenes.json entry) is."""
    match = PRESENCE_QUESTION.search(question)
    if match is None:
        raise ValueError(f"not a demo presence question: {question!r}")
    kinds = {obj["kind"] for obj in scene["objects"]}
    if match["kind"] in kinds:
        return PRESENCE_CASES[0]
    return PRESENCE_CASES[1] if not kinds else PRESENCE_CASES[2]


def _predictions(out: Path, stage: str, bench: dict) -> list[dict]:
    path = out / "eval" / stage / bench["predictions"]
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _first_box(answer: object) -> tuple[int, ...] | None:
    """The first [x1, y1, x2, y2] of an answer, None when it holds none (text, a malformed answer)."""
    match = BOX.search(answer if isinstance(answer, str) else json.dumps(answer))
    return None if match is None else tuple(int(v) for v in match.groups())


def collapsed_answers(out: Path, stage: str, results: dict) -> str:
    """The benchmarks on which one answer dominates a stage's predictions (the report's answer-spread rule), each as
    `benchmark "answer" share/ground-truth share %`; "none" when there is none."""
    found = []
    for key, bench in results.items():
        spread = answer_spread(_predictions(out, stage, bench), bench["task_type"])
        if spread is not None and spread.collapsed:
            answer = spread.top_answer if len(spread.top_answer) <= 24 else spread.top_answer[:24] + "…"
            found.append(f'{key} "{answer}" {100 * spread.top_share:.0f}/{100 * spread.top_expected_share:.0f}%')
    return f"{stage}: " + (", ".join(found) or "none")


def diagnostics(out: Path, stages: Sequence[str]) -> str:
    """Three summary lines for the demo output folder `out`: presence by case (HR and LR together), the number of
    distinct boxes among the grounding answers, and the benchmarks whose answers collapsed onto one, per stage of
    `stages`."""
    scenes = json.loads((out / "data" / "scenes.json").read_text(encoding="utf-8"))
    data_dir = (out / "data").resolve()
    presence, boxes, collapsed = [], [], []
    for stage in stages:
        results = json.loads((out / "eval" / stage / "results.json").read_text(encoding="utf-8"))["benchmarks"]
        right = dict.fromkeys(PRESENCE_CASES, 0)
        asked = dict.fromkeys(PRESENCE_CASES, 0)
        for key in PRESENCE_BENCHMARKS:
            for row in _predictions(out, stage, results[key]):
                scene = scenes[Path(row["image"]).resolve().relative_to(data_dir).as_posix()]
                case = presence_case(row["question"], scene)
                asked[case] += 1
                right[case] += row["score"]["strict"] == 1.0
        presence.append(f"{stage}: " + ", ".join(f"{c} {right[c]}/{asked[c]}" for c in PRESENCE_CASES))
        grounding = [b for b in results.values() if b["task_type"] == "bbox"]
        answers = {
            _first_box(row["extracted_answer"]) for bench in grounding for row in _predictions(out, stage, bench)
        }
        answers.discard(None)
        boxes.append(f"{stage}: {len(answers)}")
        collapsed.append(collapsed_answers(out, stage, results))
    return (
        "Presence answers right by case (HR and LR together): " + " | ".join(presence) + ".\n\n"
        "Distinct boxes among the grounding answers: " + " | ".join(boxes) + ".\n\n"
        "One answer dominates (its share of the samples / the most common ground-truth answer's share, where the "
        f"first is {100 * COLLAPSE_EXCESS:.0f} points or more above the second): " + " | ".join(collapsed) + ".\n"
    )
