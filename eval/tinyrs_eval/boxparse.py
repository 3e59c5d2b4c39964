"""The one box-parsing rule of the strict scorers (tinyrs_eval copy).

tinyrs_eval/boxparse.py and tinyrs_grpo/boxparse.py hold the same code below the marker line (the packages never
import each other); tests/test_boxparse_contract.py asserts the two bodies are byte-identical and runs one table of
cases through both. The rule is written out in docs/data-format.md 1.7.
"""

# ---- shared body: keep byte-identical in tinyrs_eval/boxparse.py and tinyrs_grpo/boxparse.py ----
from __future__ import annotations

import math
import re


# A number: optional sign, digits with an optional fraction ("5", "5.", "0.5", ".5"), optional exponent ("1e3").
# It may not continue a word or another number, so identifiers contribute no digits: "bbox_2d", "B2", "x1",
# "Qwen2.5" hold no number.
_NUMBER = r"(?<![\w.])[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?"
_NUMBER_RE = re.compile(_NUMBER)
# A bracketed group of exactly four numbers, "[x1, y1, x2, y2]" or "(x1, y1, x2, y2)", separated by commas and/or
# whitespace. Nested brackets ("[[...]]") contain such a group.
_SEP = r"\s*(?:,\s*)?"
_FOUR = rf"\s*({_NUMBER}){_SEP}({_NUMBER}){_SEP}({_NUMBER}){_SEP}({_NUMBER})\s*"
_GROUP_RE = re.compile(rf"\[{_FOUR}\]|\({_FOUR}\)")


def parse_numbers(text: str) -> list[float]:
    """Every number of ``text`` in order (see _NUMBER: signs, decimals, exponents; no digits from identifiers)."""
    return [float(x) for x in _NUMBER_RE.findall(str(text))]


def parse_boxes(text: str) -> list[list[float]]:
    """Boxes ``[x1, y1, x2, y2]`` in ``text``.

    Every bracketed group of exactly four numbers is a box, in order. When there is none, consecutive groups of
    four of all the numbers are the boxes (the first four numbers are box 1, ...; a remainder is dropped). Boxes
    with a non-finite coordinate (an overflowing exponent) are dropped.
    """
    text = str(text)
    boxes = [[float(g) for g in m.groups() if g is not None] for m in _GROUP_RE.finditer(text)]
    if not boxes:
        numbers = parse_numbers(text)
        boxes = [numbers[i : i + 4] for i in range(0, len(numbers) - len(numbers) % 4, 4)]
    return [box for box in boxes if all(math.isfinite(v) for v in box)]


def parse_box(text: str) -> tuple[float, float, float, float] | None:
    """The first box of ``text`` (see parse_boxes) as ``(x1, y1, x2, y2)``; None when there is none."""
    boxes = parse_boxes(text)
    if not boxes:
        return None
    x1, y1, x2, y2 = boxes[0]
    return x1, y1, x2, y2
