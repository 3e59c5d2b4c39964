"""The report's answer-spread table: a run that gives one answer to every question is flagged, one whose answers
spread like the ground truth's is not (the negative control of the same check)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tinyrs_eval import report
from tinyrs_eval.report import answers


LETTERS = "ABCDBADCBB"  # ground truth: B 4, A 2, C 2, D 2 of 10


def _rec(answer: str, pred: str, size=(80, 100)) -> dict:
    return {"answer": answer, "pred": pred, "size": list(size), "error": None}


def test_constant_letter_is_flagged_and_a_matching_spread_is_not():
    constant = answers.answer_spread([_rec(a, "<reasoning>x</reasoning><answer>B</answer>") for a in LETTERS],
                                     "lhrsbench")  # fmt: skip
    assert (constant.top_answer, constant.top_share, constant.distinct) == ("b", 1.0, 1)
    assert (constant.top_expected_share, constant.distinct_expected) == (0.4, 4)
    assert constant.excess == pytest.approx(0.6) and constant.collapsed
    # negative control: right on every sample, so the answers spread exactly as the ground truth does
    perfect = answers.answer_spread([_rec(a, a) for a in LETTERS], "lhrsbench")
    assert perfect.excess == 0 and not perfect.collapsed
    # a shifted spread (B on 2 more samples than the ground truth) stays under the 25-point threshold
    shifted = answers.answer_spread([_rec(a, "B" if i in (0, 2) else a) for i, a in enumerate(LETTERS)], "lhrsbench")
    assert shifted.top_share == 0.6 and shifted.excess == pytest.approx(0.2) and not shifted.collapsed
    assert answers.answer_spread([], "vqa") is None


def test_answers_are_normalised_like_the_strict_scorer():
    recs = [_rec("yes", "Yes."), _rec("no", " yes "), _rec("no", "<reasoning>cut"), {"answer": "no", "pred": "no",
            "error": "unreadable image"}]  # fmt: skip
    spread = answers.answer_spread(recs, "vqa")
    assert (spread.top_answer, spread.top_share, spread.distinct) == ("yes", 0.5, 2)  # "yes" x2, "(no answer)" x2
    assert answers.predicted_answer(recs[2], "vqa") == answers.NO_ANSWER


def test_one_relative_box_on_images_of_other_sizes_is_one_answer():
    # [[250, 0, 750, 500]] on the 1000-grid is the same relative box on a 100x80 and a 112x84 image
    recs = [_rec("[10, 10, 50, 40]", "[[250, 0, 750, 500]]", (80, 100)),
            _rec("[60, 40, 100, 80]", "[[250, 0, 750, 500]]", (84, 112)),
            _rec("[0, 0, 20, 20]", "no box here", (80, 100))]  # fmt: skip
    spread = answers.answer_spread(recs, "bbox")
    assert spread.top_answer == "[0.25, 0.00, 0.75, 0.50]" and spread.top_share == pytest.approx(2 / 3)
    assert spread.distinct == 2 and spread.distinct_expected == 3 and spread.collapsed
    assert answers.expected_answer(recs[0], "bbox") == "[0.10, 0.12, 0.50, 0.50]"


def _run(folder: Path, name: str, preds: list[str]) -> Path:
    run_dir = folder / name
    run_dir.mkdir(parents=True)
    lines = [json.dumps({"index": i, "image": "x.png", "size": [80, 100], "question": "q", "answer": a, "pred": p,
                         "error": None}) for i, (a, p) in enumerate(zip(LETTERS, preds))]  # fmt: skip
    (run_dir / "lhrs.jsonl").write_text("\n".join(lines) + "\n")
    bench = {"task_type": "lhrsbench", "n_samples": 10, "strict": {"accuracy": 0.3}, "legacy": {"accuracy": 0.3},
             "malformed": 0, "errors": 0, "predictions": f"{name}/lhrs.jsonl"}  # fmt: skip
    (run_dir / "results.json").write_text(json.dumps({"run_name": name, "config": {}, "benchmarks": {"lhrs": bench}}))
    return run_dir


def test_report_section_flags_the_collapsed_run_only(tmp_path):
    spread_run = _run(tmp_path, "sft", list("ACDBBADCBB"))
    collapsed_run = _run(tmp_path, "cot", ["B"] * 10)
    out = tmp_path / "r.html"
    assert report.main([str(spread_run), str(collapsed_run), "--output", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    section = page[page.index(">Answer spread</h2>") : page.index("<h2", page.index(">Answer spread</h2>"))]
    assert "<b>One answer dominates</b> (flagged in red): cot on lhrs." in section
    row = section[section.index("<tr><td>lhrs</td>") :]
    assert "<td><code>b</code> 40% · 4 distinct</td>" in row  # ground truth
    assert "<td><code>b</code> 40% · 4 distinct</td><td class=down><code>b</code> 100% · 1 distinct</td>" in row
    # without the collapsed run nothing is flagged
    assert report.main([str(spread_run), "--output", str(out)]) == 0
    assert "No run gives one answer much more often" in out.read_text(encoding="utf-8")
