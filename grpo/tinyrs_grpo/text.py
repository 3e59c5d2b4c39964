"""Text conventions shared (by copy, never by import) with tinyrs_sft and tinyrs_eval.

Keep in sync with docs/data-format.md: the reasoning system prompt, answer extraction, answer normalisation and IoU
are deliberately copied into each package so the three packages never import each other. Box parsing lives in
tinyrs_grpo/boxparse.py, a byte-identical copy of tinyrs_eval/boxparse.py (a test asserts it); ``parse_box`` is
re-exported here for the callers that import it from this module.

This is the bottom of the package's import graph (it imports only boxparse): the answer-type codes of the GRPO
``solution`` column live here too, so that rows, data, build_data, rewards and judge all read them from one place.
"""

from __future__ import annotations

import re
from typing import Any

from tinyrs_grpo.boxparse import parse_box as parse_box


# Keep in sync with docs/data-format.md
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."

# Keep in sync with docs/data-format.md
REASONING_SYSTEM_PROMPT = (
    "A conversation between User and Assistant. The user asks a question about an image, and the Assistant answers "
    "it. The Assistant first thinks about the reasoning process in the mind and then provides the user with the "
    "answer. The reasoning process and answer are enclosed within <reasoning> </reasoning> and <answer> </answer> "
    "tags, respectively, i.e., <reasoning> reasoning process here </reasoning><answer> answer here </answer>"
)

# Answer types of a GRPO row's ``solution[0]`` (docs/data-format.md, "GRPO dataset")
OPEN_ENDED, EXACT, BOX = "0", "1", "2"
ANSWER_TYPES = {OPEN_ENDED: "open-ended (judge)", EXACT: "exact answer", BOX: "bounding box"}

# Keep in sync with docs/data-format.md
_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_TRAILING_RE = re.compile(r"[\s.]+$")


def completion_text(completion: Any) -> str:
    """Return the text of one completion as TRL passes it to reward functions.

    A completion is a string, or a conversational list ``[{"role": "assistant", "content": ...}]`` whose content is a
    string or a list of ``{"type": "text", "text": ...}`` parts. Assistant messages are concatenated.
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    if not isinstance(completion, list):
        raise TypeError(f"completion must be a str or a list of messages, got {type(completion).__name__}")
    parts: list[str] = []
    for message in completion:
        if not isinstance(message, dict):
            raise TypeError(f"completion messages must be dicts, got {type(message).__name__}")
        if message.get("role", "assistant") != "assistant":
            continue
        content = message.get("content")
        if content is None:
            continue
        if isinstance(content, str):
            parts.append(content)
            continue
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, dict) and part.get("type") == "text":
                parts.append(part.get("text") or "")
    return "".join(parts)


# Keep in sync with docs/data-format.md
def extract_answer(text: str) -> str:
    """Answer text: content of the last complete <answer>...</answer>; else text after </reasoning>; else all."""
    matches = _ANSWER_RE.findall(text)
    if matches:
        return matches[-1].strip()
    if "</reasoning>" in text:
        return text.rsplit("</reasoning>", 1)[1].strip()
    return text.strip()


# Keep in sync with docs/data-format.md
def normalize_answer(text: str) -> str:
    """Case-fold, collapse whitespace runs, strip surrounding whitespace and trailing periods."""
    text = " ".join(str(text).split()).casefold()
    return _TRAILING_RE.sub("", text).strip()


# Keep in sync with docs/data-format.md
def box_iou(a: tuple[float, float, float, float] | None, b: tuple[float, float, float, float] | None) -> float:
    """Continuous IoU of two boxes in the same frame; 0.0 for a missing or degenerate (x2<=x1 or y2<=y1) box."""
    if a is None or b is None:
        return 0.0
    ax1, ay1, ax2, ay2 = a
    bx1, by1, bx2, by2 = b
    if ax2 <= ax1 or ay2 <= ay1 or bx2 <= bx1 or by2 <= by1:
        return 0.0
    iw = min(ax2, bx2) - max(ax1, bx1)
    ih = min(ay2, by2) - max(ay1, by1)
    inter = max(iw, 0.0) * max(ih, 0.0)
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    return inter / union if union > 0 else 0.0


def answer_type_code(value: Any) -> str:
    """Normalise an answer-type code ("0"/"1"/"2", or the integers 0/1/2) to its string form.

    Raises:
        ValueError: for any other value.
    """
    if isinstance(value, bool):
        raise ValueError(f"unknown answer_type {value!r}; expected one of {sorted(ANSWER_TYPES)}")
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        code = str(int(value))
    elif isinstance(value, str):
        code = value.strip()
    else:
        code = repr(value)
    if code not in ANSWER_TYPES:
        raise ValueError(f"unknown answer_type {value!r}; expected one of {sorted(ANSWER_TYPES)} (str or int)")
    return code
