"""Golden tables for every scoring rule, strict and legacy (tinyrs_eval/metrics.py)."""

from __future__ import annotations

import json
import math

import pytest

from tinyrs_eval import metrics
from tinyrs_eval.metrics import score_records


# --------------------------------------------------------------------------------------------------------------
# cls / vqa: (prediction, answer, strict correct, legacy correct, why)
# --------------------------------------------------------------------------------------------------------------
TEXT_CASES = [
    ("Airport", "Airport", True, True, "exact"),
    ("airport.", "Airport", True, True, "case and trailing period"),
    ("  Dense   Residential \n", "dense residential", True, True, "whitespace collapsed / removed"),
    ("", "Airport", False, True, "empty answer: legacy '' in answer"),
    ("<reasoning>looks like runways</reasoning><answer></answer>", "Airport", False, True, "empty answer block"),
    ("<reasoning>looks like runways</reasoning>", "Airport", False, True, "nothing after </reasoning>"),
    (".", "yes", False, True, "legacy cuts at the first '.' -> ''"),
    ("y", "yes", False, True, "single letter is a substring"),
    ("port", "Airport", False, True, "partial class name"),
    ("residential", "dense residential", False, True, "partial class name after space removal"),
    ("1", "12", False, True, "partial number"),
    ("12", "1", False, False, "longer than the answer"),
    ("yes, there is one", "yes", False, True, "legacy cuts at the first ','"),
    ("The answer is yes.", "yes", False, False, "sentence"),
    ("<answer>Airport</answer>", "airport", True, True, "answer block"),
    ("<reasoning>long runways</reasoning><answer>Airport</answer>", "Airport", True, True, "reasoning + answer"),
    ("<reasoning>think</reasoning> Airport", "Airport", True, True, "text after </reasoning>"),
    ("<answer>bridge</answer> then <answer>Airport</answer>", "Airport", True, False, "strict: LAST block"),
    ("<answer>Airport", "Airport", False, True, "unclosed answer: strict malformed, legacy takes the rest"),
    ("<reasoning>the runways are long and", "Airport", False, False, "truncated reasoning"),
    ("no", "yes", False, False, "plain wrong"),
]


@pytest.mark.parametrize("task_type", ["cls", "vqa"])
@pytest.mark.parametrize(("pred", "answer", "strict", "legacy", "why"), TEXT_CASES, ids=[c[4] for c in TEXT_CASES])
def test_text_rules(task_type, pred, answer, strict, legacy, why):
    rec = {"pred": pred, "answer": answer}
    assert metrics.text_correct(task_type, rec, "strict") is strict
    assert metrics.text_correct(task_type, rec, "legacy") is legacy


def test_text_accuracy_both_modes():
    records = [{"pred": p, "answer": a} for p, a, *_ in TEXT_CASES]
    n_strict = sum(c[2] for c in TEXT_CASES)
    n_legacy = sum(c[3] for c in TEXT_CASES)
    assert score_records("cls", records, "strict") == {"accuracy": n_strict / len(records), "n": len(records)}
    assert score_records("vqa", records, mode="legacy") == {"accuracy": n_legacy / len(records), "n": len(records)}
    assert n_legacy > n_strict  # the legacy rules inflate accuracy


# --------------------------------------------------------------------------------------------------------------
# LHRS-Bench
# --------------------------------------------------------------------------------------------------------------
LHRS_CASES = [
    ("B", "B", True, True),
    ("b.", "B", True, True),
    ("B. red", "B", False, True),  # legacy cuts at "."
    ("\nB", "B", True, False),  # legacy does not strip: a leading newline breaks matching (E12)
    ("", "B", False, True),
    ("A", "B", False, False),
    ("<reasoning>count</reasoning><answer>C</answer>", "C", True, True),
]


@pytest.mark.parametrize(("pred", "answer", "strict", "legacy"), LHRS_CASES)
def test_lhrs_rules(pred, answer, strict, legacy):
    rec = {"pred": pred, "answer": answer, "type": ["1"]}
    assert metrics.text_correct("lhrsbench", rec, "strict") is strict
    assert metrics.text_correct("lhrsbench", rec, "legacy") is legacy


def test_lhrs_per_type_accuracy():
    records = [
        {"pred": "A", "answer": "A", "type": ["1"]},
        {"pred": "B", "answer": "A", "type": ["1", "2"]},
        {"pred": "C", "answer": "C", "type": ["2", "11"]},
        {"pred": "", "answer": "D", "type": "10"},  # a bare string id is one type, not its characters (E12)
        {"pred": "A", "answer": "A", "type": [5]},  # integer ids accepted
    ]
    strict = score_records("lhrsbench", records, "strict")
    assert strict == {
        "accuracy": 3 / 5,
        "n": 5,
        "accuracy_identity": 1 / 2,
        "accuracy_color": 1 / 2,
        "accuracy_quantity": 1.0,
        "accuracy_location": 0.0,
        "accuracy_reasoning": 1.0,
    }
    legacy = score_records("lhrsbench", records, "legacy")
    assert legacy["accuracy"] == 4 / 5 and legacy["accuracy_location"] == 1.0  # empty answer counted right
    assert list(strict) == list(legacy)  # same keys, type order by id


def test_lhrs_unknown_type_names_the_record():
    with pytest.raises(ValueError, match="record 1.*'12'"):
        score_records(
            "lhrsbench", [{"pred": "A", "answer": "A", "type": ["1"]}, {"pred": "A", "answer": "A", "type": ["12"]}]
        )


def test_lhrs_type_id_with_spaces_strict_reads_it_legacy_like_the_original():
    """The original bucketed a record under id t iff t was in its type list: " 1" is under no type (overall only)."""
    records = [{"pred": "A", "answer": "A", "type": [" 1"]}, {"pred": "B", "answer": "A", "type": ["1"]}]
    strict = score_records("lhrsbench", records, "strict")
    legacy = score_records("lhrsbench", records, "legacy")
    assert strict == {"accuracy": 0.5, "n": 2, "accuracy_identity": 0.5}
    assert legacy == {"accuracy": 0.5, "n": 2, "accuracy_identity": 0.0}  # only the exact "1" record


@pytest.mark.parametrize(
    ("answer", "legacy"),
    [
        ("forest", False),  # the original scored str(None) = "None": a miss (an empty string would be a hit)
        ("None of them", True),  # ... which is a substring of this answer, as in the original
    ],
)
def test_null_prediction(answer, legacy):
    rec = {"pred": None, "answer": answer}
    assert metrics.text_correct("cls", rec, "legacy") is legacy
    assert metrics.text_correct("lhrsbench", dict(rec, type=["1"]), "legacy") is legacy
    assert metrics.text_correct("cls", rec, "strict") is False  # strict: malformed
    assert metrics.count_malformed([rec]) == 1
    missing = {"answer": answer}  # no 'pred' at all reads the same
    assert metrics.text_correct("cls", missing, "legacy") is legacy


# --------------------------------------------------------------------------------------------------------------
# Answer extraction, normalisation, malformed
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "extracted", "malformed"),
    [
        ("Airport", "Airport", False),
        ("<answer> A </answer>", "A", False),
        ("<answer>A</answer><answer>B</answer>", "B", False),
        ("<reasoning>r</reasoning>  yes ", "yes", False),
        ("<reasoning>r</reasoning><answer>", "<answer>", True),
        ("<reasoning>never closed", "<reasoning>never closed", True),
        ("<answer></answer>", "", True),
        ("   ", "", True),
        ("...", "...", True),
    ],
)
def test_extract_and_malformed(text, extracted, malformed):
    assert metrics.extract_answer(text) == extracted
    assert metrics.is_malformed(text) is malformed


def test_normalize_answer():
    assert metrics.normalize_answer("  Dense \t Residential.. ") == "dense residential"
    assert metrics.normalize_answer("YES . ") == "yes"
    assert metrics.normalize_answer("Straße") == metrics.normalize_answer("STRASSE")  # casefold, not lower


def test_count_malformed_and_errors():
    records = [
        {"pred": "<answer></answer>", "answer": "a"},
        {"pred": "a", "answer": "a"},
        {"pred": "", "answer": "a", "error": "image not found: x.png"},
    ]
    assert metrics.count_malformed(records) == 1
    assert metrics.count_errors(records) == 1


def test_error_record_is_wrong_in_both_modes():
    rec = {"pred": "", "answer": "yes", "error": "image not found: x.png"}
    assert score_records("vqa", [rec], "legacy") == {"accuracy": 0.0, "n": 1}
    assert score_records("vqa", [rec], "strict") == {"accuracy": 0.0, "n": 1}


# --------------------------------------------------------------------------------------------------------------
# Boxes
# --------------------------------------------------------------------------------------------------------------
def test_iou_and_levels():
    assert metrics.box_iou([0, 0, 10, 10], [5, 5, 15, 15]) == pytest.approx(25 / 175)
    assert metrics.box_iou([0, 0, 10, 10], [10, 0, 20, 10]) == 0.0  # touching
    assert metrics.box_iou([0, 0, 10, 10], [8, 8, 2, 2]) == 0.0  # inverted prediction
    assert metrics.legacy_iou([0, 0, 10, 10], [5, 5, 15, 15]) == pytest.approx(25 / 175)
    assert [metrics.size_level(a) for a in (1, 1024, 1025, 9216, 9217)] == ["S", "S", "M", "M", "L"]


def test_parse_boxes():
    assert metrics.parse_boxes("[[1, 2, 3, 4]]") == [[1, 2, 3, 4]]
    assert metrics.parse_boxes("(10,20),(30,40) and [5, 6, 7, 8, 9]") == [[10, 20, 30, 40], [5, 6, 7, 8]]
    assert metrics.parse_boxes("[1.5, 2, 3, 4]") == [[1.5, 2, 3, 4]]
    assert metrics.parse_boxes("none") == []


BBOX_KEYS = ["precision@0.5", "precision@0.5_S", "precision@0.5_M", "precision@0.5_L", "n"]


def _bbox(pred, answer, size=(1000, 1000), **extra):
    return {"pred": pred, "answer": answer, "size": list(size), **extra}


def test_bbox_width_not_equal_height():
    # 800 wide, 400 high: [100, 100, 200, 200] on the 0-1000 grid is x 80..160, y 40..80 in pixels.
    rec = _bbox("[[100, 100, 200, 200]]", "[80, 40, 160, 80]", size=(400, 800))
    assert metrics.bbox_matches(rec, "strict") == [("M", pytest.approx(1.0))]
    assert metrics.bbox_matches(rec, "legacy")[0][1] == pytest.approx(1.0)
    swapped = _bbox("[[100, 100, 200, 200]]", "[80, 40, 160, 80]", size=(800, 400))
    assert metrics.bbox_matches(swapped, "strict")[0][1] < 0.5  # (width, height) order would be wrong


@pytest.mark.parametrize(
    ("pred", "style", "reasoning", "strict", "legacy"),
    [
        # strict: (n counted, hits); legacy: (n counted, hits)
        ("[[100, 100, 300, 300]]", "tinyrs", False, (1, 1), (1, 1)),
        ("no box here", "tinyrs", False, (1, 0), (0, 0)),  # legacy: [] leaves the denominator (E2)
        ("[100, 100, 300, 300]", "tinyrs", False, (1, 1), (0, 0)),  # legacy tinyrs parser needs [[...]]
        ("[[100.5, 100, 300, 300]]", "tinyrs", False, (1, 1), (0, 0)),  # legacy \d+ misses decimals
        ("<reasoning>box [[100, 100, 300, 300]] is", "tinyrs", False, (1, 0), (1, 1)),  # truncated: strict malformed
        ("(100,100),(300,300)", "qwen2vl", False, (1, 1), (1, 1)),
        ("no box here", "qwen2vl", False, (1, 0), (1, 0)),  # legacy: None is a counted miss
        ("[100, 100, 300, 300]", "qwen2vl", False, (1, 1), (1, 0)),
        ("[100, 100, 300, 300]", "qwen2vl", True, (1, 1), (1, 1)),  # legacy fallback with a reasoning template
        ("", "tinyrs", False, (1, 0), (0, 0)),
    ],
)
def test_bbox_parsing_rules(pred, style, reasoning, strict, legacy):
    rec = _bbox(pred, "[100, 100, 300, 300]")
    for mode, (n, hits) in (("strict", strict), ("legacy", legacy)):
        res = score_records("bbox", [rec], mode, prompt_style=style, reasoning=reasoning)
        assert list(res) == BBOX_KEYS
        assert res["n"] == n, mode
        assert res["precision@0.5"] == (hits / n if n else None), mode


def test_bbox_several_gt_boxes():
    answer = "[0, 0, 10, 10], [100, 100, 300, 300]"
    one_pred = _bbox("[[0, 0, 10, 10]]", answer)
    strict = score_records("bbox", [one_pred], "strict")
    legacy = score_records("bbox", [one_pred], "legacy")
    # strict: the second ground-truth box has no prediction -> miss; legacy zip() drops it (E2).
    assert (strict["n"], strict["precision@0.5"]) == (2, 0.5)
    assert (legacy["n"], legacy["precision@0.5"]) == (1, 1.0)
    two_preds = _bbox("[[0, 0, 10, 10]] [[100, 100, 300, 300]]", answer)
    assert score_records("bbox", [two_preds], "strict")["precision@0.5"] == 1.0
    assert score_records("bbox", [two_preds], "legacy")["precision@0.5"] == 1.0


def test_bbox_size_levels_and_legacy_level_counter():
    # A large box followed by a small one in the same record: the original never resets its level index inside a
    # record (E3), so legacy puts the small box in L; strict uses each box's own area.
    rec = _bbox("[[0, 0, 200, 200]] [[0, 0, 10, 10]]", "[0, 0, 200, 200], [0, 0, 10, 10]")
    strict = score_records("bbox", [rec], "strict")
    legacy = score_records("bbox", [rec], "legacy")
    assert strict == {"precision@0.5": 1.0, "precision@0.5_S": 1.0, "precision@0.5_M": None,
                      "precision@0.5_L": 1.0, "n": 2}  # fmt: skip
    assert legacy == {"precision@0.5": 1.0, "precision@0.5_S": None, "precision@0.5_M": None,
                      "precision@0.5_L": 1.0, "n": 2}  # fmt: skip
    assert [lvl for lvl, _ in metrics.bbox_matches(rec, "legacy")] == ["L", "L"]


def test_bbox_levels_mixed_records():
    records = [
        _bbox("[[0, 0, 30, 30]]", "[0, 0, 30, 30]"),  # S hit (900 px)
        _bbox("[[500, 500, 600, 600]]", "[0, 0, 30, 30]"),  # S miss
        _bbox("[[0, 0, 50, 50]]", "[0, 0, 50, 50]"),  # M hit (2500 px)
        _bbox("garbage", "[0, 0, 500, 500]"),  # L: strict miss, legacy skipped
    ]
    strict = score_records("bbox", records, "strict")
    assert strict == {"precision@0.5": 0.5, "precision@0.5_S": 0.5, "precision@0.5_M": 1.0,
                      "precision@0.5_L": 0.0, "n": 4}  # fmt: skip
    legacy = score_records("bbox", records, "legacy")
    assert legacy == {"precision@0.5": 2 / 3, "precision@0.5_S": 0.5, "precision@0.5_M": 1.0,
                      "precision@0.5_L": None, "n": 3}  # fmt: skip
    json.dumps(strict, allow_nan=False)  # null, never NaN
    assert not any(isinstance(v, float) and math.isnan(v) for v in legacy.values())


def test_bbox_error_record_is_a_counted_miss_in_both_modes():
    rec = {"pred": "", "answer": "[0, 0, 30, 30]", "size": None, "error": "image not found: a.png"}
    for mode in ("strict", "legacy"):
        assert score_records("bbox", [rec], mode)["n"] == 1
        assert score_records("bbox", [rec], mode)["precision@0.5"] == 0.0


def test_bbox_scale_argument():
    rec = _bbox("[[10, 10, 30, 30]]", "[100, 100, 300, 300]")
    assert score_records("bbox", [rec], "strict", bbox_scale=100)["precision@0.5"] == 1.0
    assert score_records("bbox", [rec], "strict", bbox_scale=1000)["precision@0.5"] == 0.0


def test_bbox_bad_ground_truth_names_the_record():
    with pytest.raises(ValueError, match="record 1"):
        score_records("bbox", [_bbox("[[1, 1, 2, 2]]", "[1, 1, 2, 2]"), _bbox("x", "[1, 2, 3]")], "strict")


def test_empty_inputs_give_null_not_errors():
    assert score_records("cls", [], "strict") == {"accuracy": None, "n": 0}
    assert score_records("bbox", [], "legacy")["precision@0.5"] is None


def test_bad_mode_and_task_type():
    with pytest.raises(ValueError, match="mode"):
        score_records("cls", [], mode="lenient")
    with pytest.raises(ValueError, match="task_type"):
        score_records("caption", [])


def test_sample_score():
    assert metrics.sample_score("cls", {"pred": "", "answer": "a"}, "legacy") == 1.0
    assert metrics.sample_score("cls", {"pred": "", "answer": "a"}, "strict") == 0.0
    rec = _bbox("junk", "[0, 0, 30, 30]")
    assert metrics.sample_score("bbox", rec, "legacy") is None  # nothing counted
    assert metrics.sample_score("bbox", rec, "strict") == 0.0
