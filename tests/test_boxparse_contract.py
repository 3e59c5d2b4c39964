"""One box-parsing rule for eval and GRPO: the two copies are byte-identical and read every case the same way.

The rule (docs/data-format.md 1.7): the boxes are the bracketed groups of exactly four numbers; when there is none,
consecutive groups of four of all the numbers; identifiers (``bbox_2d``, ``B2``, ``x1``) never contribute digits.
The demo generator (tinyrs_demo.scenes) only writes boxes and keeps no parser, so it is not part of this test.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tinyrs_eval import boxparse as eval_boxparse
from tinyrs_eval import metrics
from tinyrs_grpo import boxparse as grpo_boxparse
from tinyrs_grpo import text as grpo_text


REPO = Path(__file__).resolve().parents[1]
COPIES = [REPO / "eval" / "tinyrs_eval" / "boxparse.py", REPO / "grpo" / "tinyrs_grpo" / "boxparse.py"]
MARKER = "# ---- shared body"

# (text, every box the rule reads). The first box is what GRPO's parse_box returns.
CASES = [
    ("[[100, 200, 300, 400]]", [[100, 200, 300, 400]]),  # TinyRS double brackets
    ("[100, 200, 300, 400]", [[100, 200, 300, 400]]),  # single brackets
    ("(100, 200, 300, 400)", [[100, 200, 300, 400]]),  # round brackets
    ("[100 200 300 400]", [[100, 200, 300, 400]]),  # whitespace separators
    ("[.5, 0.5, 5., 5]", [[0.5, 0.5, 5.0, 5.0]]),  # '.5' is 0.5 (the old eval copy read 5), '5.' is 5
    ("[0.25, 0.5, 0.75, 1]", [[0.25, 0.5, 0.75, 1]]),  # decimals
    ("[-5, +3, 10, 20]", [[-5, 3, 10, 20]]),  # signs
    ("[1e2, 2E1, 3e+1, 4e-1]", [[100, 20, 30, 0.4]]),  # scientific notation
    ('{"bbox_2d": [10, 20, 30, 40]}', [[10, 20, 30, 40]]),  # Qwen2.5-VL JSON: the key's '2' is no coordinate
    ('[{"bbox_2d": [1, 2, 3, 4], "label": "car"}]', [[1, 2, 3, 4]]),  # JSON list of objects
    ("There are 2 cars; the left one is [[100, 100, 300, 300]]", [[100, 100, 300, 300]]),  # leading count
    ("3 planes. [[1, 2, 3, 4], [5, 6, 7, 8]]", [[1, 2, 3, 4], [5, 6, 7, 8]]),  # several boxes, nested
    ("[[1, 2, 3, 4]] and [[5, 6, 7, 8]]", [[1, 2, 3, 4], [5, 6, 7, 8]]),  # several boxes, apart
    ("box B2 at x1 y1 x2 y2 = 10 20 30 40", [[10, 20, 30, 40]]),  # identifiers with digits are not numbers
    ("Qwen2.5-VL says 1, 2, 3, 4", [[1, 2, 3, 4]]),  # a model name with digits
    ("object_7: [1, 2, 3, 4]", [[1, 2, 3, 4]]),  # underscore identifier
    ("(10,20),(30,40)", [[10, 20, 30, 40]]),  # Qwen2-VL corner pairs: no group of four, first four numbers
    ("(10,20),(30,40) and [5, 6, 7, 8, 9]", [[10, 20, 30, 40], [5, 6, 7, 8]]),  # a five-number list is no box
    ("1, 2, 3, 4, 5, 6, 7, 8, 9", [[1, 2, 3, 4], [5, 6, 7, 8]]),  # no brackets: consecutive fours, rest dropped
    ("[1, 2, 3]", []),  # fewer than four numbers
    ("[x1, y1, x2, y2]", []),  # no numbers at all
    ("no box here", []),
    ("", []),
    ("[[1, 2, 3]], [4, 5, 6, 7]", [[4, 5, 6, 7]]),  # the first group of exactly four
    ("<answer>[[12, 34, 56, 78]]</answer>", [[12, 34, 56, 78]]),  # tags carry no digits
    ("[ 1 ,2 , 3,4 ]", [[1, 2, 3, 4]]),  # loose spacing
    ("[1,2,3,4].", [[1, 2, 3, 4]]),  # sentence period after the box
    ("The box is 10, 20, 30, 40.", [[10, 20, 30, 40]]),  # trailing period on the last number
    ("10-20 30-40", [[10, 20, 30, 40]]),  # a dash between digits is no minus sign
    ("[1.5.5, 2, 3, 4]", [[1.5, 2, 3, 4]]),  # no group of four ('.5' after '1.5' is no number); first four: 1.5 2 3 4
    ("[1e999, 1, 2, 3]", []),  # an overflowing exponent is no coordinate
    ("１２, 3, 4, 5", [[12, 3, 4, 5]]),  # full-width digits are digits
]


def _body(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    assert text.count(MARKER) == 1, f"{path}: the marker line {MARKER!r} must appear exactly once"
    return text.split(MARKER, 1)[1]


def test_copies_are_byte_identical_below_the_marker() -> None:
    eval_body, grpo_body = (_body(p) for p in COPIES)
    assert eval_body == grpo_body
    assert "def parse_boxes" in eval_body and "def parse_box(" in eval_body


@pytest.mark.parametrize(("text", "boxes"), CASES)
def test_both_copies_read_the_same_boxes(text: str, boxes: list[list[float]]) -> None:
    for module in (eval_boxparse, grpo_boxparse):
        assert module.parse_boxes(text) == boxes, module.__name__
        assert module.parse_box(text) == (tuple(boxes[0]) if boxes else None), module.__name__
    # the names the callers use are the same functions
    assert metrics.parse_boxes(text) == boxes
    assert grpo_text.parse_box(text) == (tuple(boxes[0]) if boxes else None)


def test_case_table_is_large_and_distinct() -> None:
    texts = [t for t, _ in CASES]
    assert len(texts) >= 30 and len(set(texts)) == len(texts)


def test_random_box_strings_agree() -> None:
    """Generated answers in many spellings: both copies read identical numbers (the old copies disagreed on 40%)."""
    rng = random.Random(0)
    templates = ["[[{}, {}, {}, {}]]", "[{}, {}, {}, {}]", "({},{}),({},{})", '{{"bbox_2d": [{}, {}, {}, {}]}}',
                 "There are {} objects: [[{}, {}, {}, {}]]", "x1={} y1={} x2={} y2={}"]  # fmt: skip

    def number() -> str:
        value = rng.choice([rng.randint(0, 1000), rng.random(), rng.uniform(0, 1000)])
        text = f"{value:.3g}" if isinstance(value, float) else str(value)
        return text[1:] if text.startswith("0.") and rng.random() < 0.3 else text  # '.5' spellings

    for _ in range(2000):
        template = rng.choice(templates)
        text = template.format(*(number() for _ in range(template.count("{}"))))
        assert eval_boxparse.parse_boxes(text) == grpo_boxparse.parse_boxes(text), text
        assert eval_boxparse.parse_numbers(text) == grpo_boxparse.parse_numbers(text), text
