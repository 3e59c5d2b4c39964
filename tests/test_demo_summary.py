"""scripts/demo_diagnostics.py: presence split by case and distinct grounding boxes, read from the predictions."""

from __future__ import annotations

import json

import demo_diagnostics
import pytest


SHIP = {"kind": "ship", "box": [0, 0, 10, 10]}
PLANE = {"kind": "plane", "box": [30, 30, 40, 40]}


def _question(kind: str) -> str:
    return f"<image>\nIs there a {kind} in the image? Answer yes or no."


@pytest.mark.parametrize(
    ("objects", "case"),
    [([SHIP, PLANE], "asked kind shown"), ([], "empty scene"), ([PLANE], "other kinds only")],
)
def test_presence_case(objects, case):
    assert demo_diagnostics.presence_case(_question("ship"), {"objects": objects}) == case


def test_presence_case_reads_two_word_kinds_and_refuses_other_questions():
    tank = {"kind": "storage tank", "box": [0, 0, 10, 10]}
    assert demo_diagnostics.presence_case(_question("storage tank"), {"objects": [tank]}) == "asked kind shown"
    with pytest.raises(ValueError, match="not a demo presence question"):
        demo_diagnostics.presence_case("<image>\nHow many ships are there?", {"objects": []})


def _write_stage(out, stage: str, presence_right: list[bool], boxes: list) -> None:
    folder = out / "eval" / stage
    (folder / stage).mkdir(parents=True)
    benchmarks = {}
    for key, file in (("vqa_HR-pre", "HR.jsonl"), ("vqa_LR-pre", "LR.jsonl")):
        rows = [
            {"image": str(out / "data" / "eval" / f"{key}_{i}.png"), "question": _question("ship"),
             "score": {"strict": float(ok)}, "extracted_answer": "yes"}
            for i, ok in enumerate(presence_right)
        ]  # fmt: skip
        (folder / stage / file).write_text("".join(json.dumps(r) + "\n" for r in rows))
        benchmarks[key] = {"task_type": "vqa", "predictions": f"{stage}/{file}"}
    rows = [{"image": "x.png", "extracted_answer": box, "score": {"strict": 0.0}} for box in boxes]
    (folder / stage / "vg.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    benchmarks["rs_vg"] = {"task_type": "bbox", "predictions": f"{stage}/vg.jsonl"}
    (folder / "results.json").write_text(json.dumps({"benchmarks": benchmarks}))


def test_diagnostics_counts_cases_and_distinct_boxes(tmp_path):
    out = tmp_path / "demo_out"
    scenes = {}
    for key in ("vqa_HR-pre", "vqa_LR-pre"):  # per benchmark: ship shown, empty, plane only
        for i, objects in enumerate(([SHIP], [], [PLANE])):
            scenes[f"eval/{key}_{i}.png"] = {"objects": objects}
    (out / "data").mkdir(parents=True)
    (out / "data" / "scenes.json").write_text(json.dumps(scenes))
    # "yes if any object": right on the first two cases, wrong on the third; one box for everything, then a malformed
    # answer and a text without a box, which are no boxes
    answers = ["[[0, 0, 500, 500]]", [[0, 0, 500, 500]], None, "An aerial image of a sandy desert with 3 buildings."]
    _write_stage(out, "any_object", [True, True, False], answers)
    _write_stage(out, "blind", [False, True, True], ["[[0, 0, 500, 500]]", "[[250, 0, 750, 500]]", "[0, 0, 1, 1]"])

    text = demo_diagnostics.diagnostics(out, ["any_object", "blind"])

    assert "any_object: asked kind shown 2/2, empty scene 2/2, other kinds only 0/2" in text
    assert "blind: asked kind shown 0/2, empty scene 2/2, other kinds only 2/2" in text
    assert "grounding answers: any_object: 1 | blind: 3." in text
    assert "25 points or more above the second): any_object: none | blind: none." in text  # no answer, no truth


def test_diagnostics_names_the_benchmarks_whose_answers_collapsed(tmp_path):
    out = tmp_path / "demo_out"
    truth = ["yes", "no"] * 5
    for stage, preds in (("always_yes", ["yes"] * 10), ("reads", truth)):  # the second is the negative control
        folder = out / "eval" / stage
        (folder / stage).mkdir(parents=True)
        rows = [{"answer": a, "pred": p, "error": None} for a, p in zip(truth, preds)]
        (folder / stage / "comp.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    lines = [demo_diagnostics.collapsed_answers(out, stage, {"vqa_HR-comp": {"task_type": "vqa",
             "predictions": f"{stage}/comp.jsonl"}}) for stage in ("always_yes", "reads")]  # fmt: skip
    assert lines == ['always_yes: vqa_HR-comp "yes" 100/50%', "reads: none"]
