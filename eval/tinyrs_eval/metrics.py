"""Scoring of model outputs, in two modes. Pure functions: no I/O, no model, no global state.

``strict`` (the default) is exact-match accuracy and a box precision that keeps every ground-truth box in the
denominator. ``legacy`` reproduces the original ScoreRS/TinyRS scorer (rs_evaluation.py) as that code computes it,
defects included, so numbers can be set beside published tables. eval/README.md lists the differences.

Record fields used: ``pred`` (raw model output), ``answer`` (ground-truth string), ``size`` ([height, width] in pixels,
bbox only), ``type`` (list of LHRS-Bench type ids "1".."11", lhrsbench only) and the optional ``error`` (a sample whose
image could not be read; it is counted wrong in both modes).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

from tinyrs_eval.boxparse import parse_boxes as parse_boxes
from tinyrs_eval.boxparse import parse_numbers as parse_numbers
from tinyrs_eval.constants import LHRS_TYPE_NAMES, PROMPT_STYLES, TASK_TYPES


MODES = ("strict", "legacy")
IOU_THRESHOLD = 0.5
# Area thresholds (pixels) of the S / M / L size levels: S <= 32^2, M <= 96^2, L above.
AREA_LEVELS = (32**2, 96**2, math.inf)
LEVEL_NAMES = ("S", "M", "L")

# ---------------------------------------------------------------------------------------------------------------
# Strict mode helpers. Keep in sync with docs/data-format.md (answer extraction, normalisation, IoU). Box parsing
# (parse_numbers, parse_boxes) is tinyrs_eval/boxparse.py, byte-identical with tinyrs_grpo/boxparse.py.
# ---------------------------------------------------------------------------------------------------------------
_ANSWER_BLOCK = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def extract_answer(text: str) -> str:
    """Content of the last complete <answer>...</answer>; else the text after </reasoning>; else the whole output."""
    text = "" if text is None else str(text)
    blocks = _ANSWER_BLOCK.findall(text)
    if blocks:
        return blocks[-1].strip()
    if "</reasoning>" in text:
        return text.rsplit("</reasoning>", 1)[1].strip()
    return text.strip()


def normalize_answer(text: str) -> str:
    """Case-fold, collapse whitespace runs, strip surrounding whitespace and trailing periods."""
    text = " ".join(str(text).split()).casefold()
    while text.endswith(".") or text != text.strip():
        text = text.rstrip(".").strip()
    return text


def is_malformed(text: str) -> bool:
    """True when no answer can be extracted: empty answer, or an output cut inside <reasoning> or <answer>."""
    text = "" if text is None else str(text)
    if not _ANSWER_BLOCK.search(text):
        if "<answer>" in text:
            return True  # answer opened but never closed (truncated)
        if "<reasoning>" in text and "</reasoning>" not in text:
            return True  # reasoning never closed (truncated before any answer)
    return normalize_answer(extract_answer(text)) == ""


def box_area(box: Sequence[float]) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def box_iou(box1: Sequence[float], box2: Sequence[float]) -> float:
    """IoU of two [x1, y1, x2, y2] boxes; 0 when they do not overlap or a box is degenerate."""
    iw = min(box1[2], box2[2]) - max(box1[0], box2[0])
    ih = min(box1[3], box2[3]) - max(box1[1], box2[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = box_area(box1) + box_area(box2) - inter
    return inter / union if union > 0 else 0.0


def size_level(area: float) -> str:
    """S / M / L level of a ground-truth box by its own pixel area."""
    for name, bound in zip(LEVEL_NAMES, AREA_LEVELS):
        if area <= bound:
            return name
    return LEVEL_NAMES[-1]


def scale_box(box: Sequence[float], size: Sequence[int], bbox_scale: float) -> list[float]:
    """Map a box on the 0..bbox_scale grid to pixels; ``size`` is (height, width)."""
    h, w = size
    return [box[0] * w / bbox_scale, box[1] * h / bbox_scale, box[2] * w / bbox_scale, box[3] * h / bbox_scale]


# ---------------------------------------------------------------------------------------------------------------
# Legacy mode: the original scorer's rules, reproduced as written (rs_evaluation.py, lm_prediction_call.py).
# ---------------------------------------------------------------------------------------------------------------
_LEGACY_GT_BOX = re.compile(r"\[(\d+),\s*(\d+),\s*(\d+),\s*(\d+)\]")
_LEGACY_TINYRS_BOX = re.compile(r"\[\[(\d+)[,\s]+(\d+)[,\s]+(\d+)[,\s]+(\d+)\]\]")
_LEGACY_QWEN2VL_BOX = re.compile(r"\((\d+(?:\.\d+)?),(\d+(?:\.\d+)?)\),\((\d+(?:\.\d+)?),(\d+(?:\.\d+)?)\)")
_LEGACY_QWEN2VL_REASONING_BOX = re.compile(
    r"\[(\d+(?:\.\d+)?),\s*(\d+(?:\.\d+)?),\s*(\d+(?:\.\d+)?),\s*(\d+(?:\.\d+)?)\]"
)


def legacy_extract(text: str) -> str:
    """The original tag handling: after the first </reasoning> (whole text if unclosed), then inside <answer>."""
    prediction = str(text)
    if "<reasoning>" in prediction:
        parts = prediction.split("<reasoning>")[1].split("</reasoning>")
        if len(parts) > 1:
            prediction = parts[1]
    if "<answer>" in prediction:
        prediction = prediction.split("<answer>")[1].split("</answer>")[0]
    return prediction


def legacy_text_correct(pred: str, answer: str) -> bool:
    """cls / vqa: spaces removed, cut at the first "." then ",", lower-cased; prediction is a SUBSTRING of answer."""
    prediction = legacy_extract(pred).replace(" ", "")
    answer = str(answer).replace(" ", "")
    if "." in prediction:
        prediction = prediction.split(".")[0]
    if "," in prediction:
        prediction = prediction.split(",")[0]
    return prediction.strip().lower() in answer.strip().lower()


def legacy_lhrs_correct(pred: str, answer: str) -> bool:
    """lhrsbench: cut at the first ".", spaces and "." removed, lower-cased (no strip); substring test."""
    prediction = legacy_extract(pred)
    if "." in prediction:
        prediction = prediction.split(".")[0]
    prediction = prediction.replace(" ", "").replace(".", "").lower()
    answer = str(answer).replace(" ", "").replace(".", "").lower()
    return prediction in answer


def legacy_gt_boxes(answer: str) -> list[list[float]]:
    return [[float(x) for x in m] for m in _LEGACY_GT_BOX.findall(str(answer))]


def legacy_pred_boxes(text: str, prompt_style: str = "tinyrs", reasoning: bool = False) -> list[list[float]] | None:
    """The original per-model box extractors.

    tinyrs: ``[[x1, y1, x2, y2]]`` double brackets, ``[]`` when none (that record then leaves the denominator).
    qwen2vl: ``(x1,y1),(x2,y2)``; with a reasoning template also ``[x1, y1, x2, y2]``; ``None`` when none.
    """
    if prompt_style == "tinyrs":
        return [[float(x) for x in m] for m in _LEGACY_TINYRS_BOX.findall(text)]
    if prompt_style == "qwen2vl":
        coords = _LEGACY_QWEN2VL_BOX.findall(text)
        if not coords and reasoning:
            coords = _LEGACY_QWEN2VL_REASONING_BOX.findall(text)
        if not coords:
            return None
        return [[float(x) for x in m] for m in coords]
    raise ValueError(f"unknown prompt_style {prompt_style!r}; expected one of {PROMPT_STYLES}")


def legacy_iou(box1: Sequence[float], box2: Sequence[float]) -> float:
    """The original IoU (boxes taken as given, no clamping of inverted boxes)."""
    x1 = max(box1[0], box2[0])
    y1 = max(box1[1], box2[1])
    x2 = min(box1[2], box2[2])
    y2 = min(box1[3], box2[3])
    if x1 >= x2 or y1 >= y2:
        return 0.0
    inter = (x2 - x1) * (y2 - y1)
    area1 = (box1[2] - box1[0]) * (box1[3] - box1[1])
    area2 = (box2[2] - box2[0]) * (box2[3] - box2[1])
    return inter / (area1 + area2 - inter)


# ---------------------------------------------------------------------------------------------------------------
# Per-sample scoring
# ---------------------------------------------------------------------------------------------------------------
def _check(task_type: str, mode: str) -> None:
    if task_type not in TASK_TYPES:
        raise ValueError(f"unknown task_type {task_type!r}; expected one of {TASK_TYPES}")
    if mode not in MODES:
        raise ValueError(f"unknown scoring mode {mode!r}; expected one of {MODES}")


def _pred(record: dict[str, Any]) -> str:
    """Strict: the prediction text; a null prediction is empty (malformed, wrong)."""
    pred = record.get("pred")
    return "" if pred is None else str(pred)


def _legacy_pred(record: dict[str, Any]) -> str:
    """Legacy: the original applied str() to whatever it read, so a JSON null prediction is the text "None"."""
    return str(record.get("pred"))


def text_correct(task_type: str, record: dict[str, Any], mode: str = "strict") -> bool:
    """Whether a cls / vqa / lhrsbench record is correct. A record with an ``error`` is always wrong."""
    if record.get("error"):
        return False
    answer = str(record["answer"])
    if mode == "legacy":
        pred = _legacy_pred(record)
        return legacy_lhrs_correct(pred, answer) if task_type == "lhrsbench" else legacy_text_correct(pred, answer)
    pred = _pred(record)
    if is_malformed(pred):
        return False
    return normalize_answer(extract_answer(pred)) == normalize_answer(answer)


def _size(record: dict[str, Any]) -> tuple[float, float]:
    size = record.get("size")
    if not isinstance(size, (list, tuple)) or len(size) != 2:
        raise ValueError(f"bbox record needs 'size' as [height, width], got {size!r}")
    return float(size[0]), float(size[1])


def bbox_matches(
    record: dict[str, Any],
    mode: str = "strict",
    bbox_scale: float = 1000,
    prompt_style: str = "tinyrs",
    reasoning: bool = False,
) -> list[tuple[str, float | None]]:
    """The ground-truth boxes a bbox record puts in the denominator: one ``(level, iou)`` each.

    ``iou`` is None when no predicted box was matched to that ground-truth box (a miss).
    """
    if mode == "legacy":
        return _legacy_bbox_matches(record, bbox_scale, prompt_style, reasoning)
    gt_boxes = parse_boxes(record["answer"])
    n_numbers = len(parse_numbers(record["answer"]))
    if not gt_boxes or n_numbers % 4:
        raise ValueError(f"ground-truth answer {record['answer']!r} is not a list of [x1, y1, x2, y2] boxes")
    pred = _pred(record)
    if record.get("error") or is_malformed(pred):
        pred_boxes: list[list[float]] = []
    else:
        size = _size(record)
        pred_boxes = [scale_box(b, size, bbox_scale) for b in parse_boxes(extract_answer(pred))]
    out: list[tuple[str, float | None]] = []
    for i, gt in enumerate(gt_boxes):
        iou = box_iou(gt, pred_boxes[i]) if i < len(pred_boxes) else None
        out.append((size_level(box_area(gt)), iou))
    return out


def _legacy_bbox_matches(
    record: dict[str, Any], bbox_scale: float, prompt_style: str, reasoning: bool
) -> list[tuple[str, float | None]]:
    gt_boxes = legacy_gt_boxes(record["answer"])
    if record.get("error"):
        pred_boxes = None  # the original had no such case; an unreadable image counts as a miss
    else:
        pred_boxes = legacy_pred_boxes(legacy_extract(_legacy_pred(record).strip()), prompt_style, reasoning)
    out: list[tuple[str, float | None]] = []
    # The original's level index is set to 0 once per record, not per box (defect E3, reproduced on purpose).
    level = 0

    def _legacy_area(box: Sequence[float]) -> float:
        return (box[2] - box[0]) * (box[3] - box[1])

    if pred_boxes is None:
        for gt in gt_boxes:
            while _legacy_area(gt) > AREA_LEVELS[level]:
                level += 1
            out.append((LEVEL_NAMES[level], None))
        return out
    h, w = _size(record)
    # zip(): a prediction list shorter than the ground truth drops the extra ground-truth boxes, and an empty list
    # (the tinyrs parser found nothing) removes the record from the denominator (defect E2, reproduced on purpose).
    for gt, pred in zip(gt_boxes, pred_boxes):
        while _legacy_area(gt) > AREA_LEVELS[level]:
            level += 1
        pred_box = [
            pred[0] * w / bbox_scale,
            pred[1] * h / bbox_scale,
            pred[2] * w / bbox_scale,
            pred[3] * h / bbox_scale,
        ]
        out.append((LEVEL_NAMES[level], legacy_iou(gt, pred_box)))
    return out


def sample_score(
    task_type: str,
    record: dict[str, Any],
    mode: str = "strict",
    bbox_scale: float = 1000,
    *,
    prompt_style: str = "tinyrs",
    reasoning: bool = False,
) -> float | None:
    """Score of one record: 1.0 / 0.0 for text tasks; for bbox the share of counted boxes hit (None: none counted)."""
    _check(task_type, mode)
    if task_type != "bbox":
        return float(text_correct(task_type, record, mode))
    matches = bbox_matches(record, mode, bbox_scale, prompt_style, reasoning)
    if not matches:
        return None
    return sum(iou is not None and iou >= IOU_THRESHOLD for _, iou in matches) / len(matches)


# ---------------------------------------------------------------------------------------------------------------
# Aggregation
# ---------------------------------------------------------------------------------------------------------------
def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def _lhrs_types(record: dict[str, Any], mode: str = "strict") -> list[str]:
    """The type ids a record counts under. Strict: ids with surrounding spaces stripped (the loader warns about
    them), an unknown id is an error. Legacy: the original's membership test, so only exact ids count (" 1" puts
    the record under no type; it still counts in the overall accuracy)."""
    types = record.get("type")
    if types is None:
        raise ValueError("lhrsbench record has no 'type'")
    if isinstance(types, (str, int)):
        types = [types]
    if mode == "legacy":
        return [str(t) for t in types if str(t) in LHRS_TYPE_NAMES]
    out = []
    for t in types:
        t = str(t).strip()
        if t not in LHRS_TYPE_NAMES:
            raise ValueError(f"unknown LHRS-Bench type id {t!r}; expected one of {list(LHRS_TYPE_NAMES)}")
        out.append(t)
    return out


def score_records(
    task_type: str,
    records: Iterable[dict[str, Any]],
    mode: str = "strict",
    bbox_scale: float = 1000,
    *,
    prompt_style: str = "tinyrs",
    reasoning: bool = False,
) -> dict[str, Any]:
    """Benchmark metrics for ``records``.

    cls / vqa / lhrsbench: ``{"accuracy", "n"}`` plus ``accuracy_<type name>`` per LHRS-Bench type present.
    bbox: ``{"precision@0.5", "precision@0.5_S", "precision@0.5_M", "precision@0.5_L", "n"}`` where ``n`` is the
    number of ground-truth boxes in the denominator. A ratio with an empty denominator is None.
    ``prompt_style`` and ``reasoning`` only choose the legacy box parser (the original chose it per model).
    """
    _check(task_type, mode)
    records = list(records)
    if task_type == "bbox":
        counts = dict.fromkeys(LEVEL_NAMES, 0)
        hits = dict.fromkeys(LEVEL_NAMES, 0)
        for i, record in enumerate(records):
            try:
                matches = bbox_matches(record, mode, bbox_scale, prompt_style, reasoning)
            except (KeyError, ValueError, TypeError, IndexError) as exc:
                raise ValueError(f"record {i}: {exc}") from exc
            for level, iou in matches:
                counts[level] += 1
                hits[level] += iou is not None and iou >= IOU_THRESHOLD
        total = sum(counts.values())
        result: dict[str, Any] = {"precision@0.5": _ratio(sum(hits.values()), total)}
        for level in LEVEL_NAMES:
            result[f"precision@0.5_{level}"] = _ratio(hits[level], counts[level])
        result["n"] = total
        return result

    scores: list[bool] = []
    by_type: dict[str, list[bool]] = {}
    for i, record in enumerate(records):
        try:
            correct = text_correct(task_type, record, mode)
            if task_type == "lhrsbench":
                for t in _lhrs_types(record, mode):
                    by_type.setdefault(t, []).append(correct)
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"record {i}: {exc}") from exc
        scores.append(correct)
    result = {"accuracy": _ratio(sum(scores), len(scores)), "n": len(scores)}
    for t in sorted(by_type, key=int):
        result[f"accuracy_{LHRS_TYPE_NAMES[t]}"] = _ratio(sum(by_type[t]), len(by_type[t]))
    return result


def count_malformed(records: Iterable[dict[str, Any]]) -> int:
    """Records whose output has no extractable answer (errored samples excluded; they are counted separately)."""
    return sum(1 for r in records if not r.get("error") and is_malformed(_pred(r)))


def count_errors(records: Iterable[dict[str, Any]]) -> int:
    return sum(1 for r in records if r.get("error"))
