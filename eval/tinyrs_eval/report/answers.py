"""The answer-spread table: does a run give one answer to every question of a benchmark?

A model that answers "B" to every multiple-choice question, "yes" to every yes/no question or one box for every image
scores the share of the ground truth that happens to match that answer. Its headline score alone looks like partial
skill; the spread of its answers shows the collapse. Per run and benchmark the table gives the most common answer and
its share next to the most common ground-truth answer and its share, and flags the cell when the first exceeds the
second by COLLAPSE_EXCESS or more.
"""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass
from typing import Any

from tinyrs_eval import boxes, metrics
from tinyrs_eval.report.runs import benchmark_keys, predictions_path, read_records
from tinyrs_eval.report.text import show


COLLAPSE_EXCESS = 0.25  # 25 points more of the answers than the ground truth's most common answer covers
SHOWN_CHARS = 40  # an untrained model's most common "answer" can be a long run of byte soup
NO_ANSWER = "(no answer)"


def _box_key(box: list[float], size: tuple[float, float]) -> str:
    """A box as fractions of the image's width and height: the same relative box on images of other sizes is one."""
    h, w = size
    x1, y1, x2, y2 = box
    return f"[{x1 / w:.2f}, {y1 / h:.2f}, {x2 / w:.2f}, {y2 / h:.2f}]"


def _size(rec: dict[str, Any]) -> tuple[float, float] | None:
    size = rec.get("size")
    if isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, (int, float)) and v > 0 for v in size):
        return float(size[0]), float(size[1])
    return None


def predicted_answer(rec: dict[str, Any], task_type: str) -> str:
    """The answer a record gave, normalised as the strict scorer compares it (grounding: its first box, relative to
    the image); NO_ANSWER for an unreadable image, a malformed output or a grounding answer without a box."""
    pred = rec.get("pred", "")
    if rec.get("error") or not isinstance(pred, str) or metrics.is_malformed(pred):
        return NO_ANSWER
    if task_type != "bbox":
        return metrics.normalize_answer(metrics.extract_answer(pred))
    size = _size(rec)
    found = boxes.answer_boxes(metrics.extract_answer(pred), size) if size else []
    return _box_key(found[0]["pixels"], size) if found else NO_ANSWER


def expected_answer(rec: dict[str, Any], task_type: str) -> str:
    """The ground-truth answer, normalised like ``predicted_answer`` (grounding: the first box, in pixels)."""
    answer = rec.get("answer", "")
    if task_type != "bbox":
        return metrics.normalize_answer(str(answer))
    size = _size(rec)
    found = metrics.parse_boxes(str(answer)) if size else []
    return _box_key(found[0], size) if found else NO_ANSWER


@dataclass(frozen=True)
class Spread:
    """How the answers of one run on one benchmark are spread, against the ground truth's spread."""

    top_answer: str
    top_share: float
    distinct: int
    top_expected: str
    top_expected_share: float
    distinct_expected: int

    @property
    def excess(self) -> float:
        """How much more of the samples the most common answer covers than the most common ground truth does."""
        return self.top_share - self.top_expected_share

    @property
    def collapsed(self) -> bool:
        return self.excess >= COLLAPSE_EXCESS - 1e-9


def answer_spread(records: list[dict[str, Any]], task_type: str) -> Spread | None:
    """The spread of ``records`` (one benchmark's predictions); None without records."""
    if not records:
        return None
    given = Counter(predicted_answer(r, task_type) for r in records)
    expected = Counter(expected_answer(r, task_type) for r in records)
    (top, top_n), (top_exp, top_exp_n) = given.most_common(1)[0], expected.most_common(1)[0]
    n = len(records)
    return Spread(top, top_n / n, len(given), top_exp, top_exp_n / n, len(expected))


def _cell(spread: Spread | None) -> str:
    if spread is None:
        return "<td>-</td>"
    flag = " class=down" if spread.collapsed else ""
    return (
        f"<td{flag}><code>{show(spread.top_answer, SHOWN_CHARS)}</code> {100 * spread.top_share:.0f}% "
        f"· {spread.distinct} distinct</td>"
    )


def answer_spread_table(runs: list[dict[str, Any]]) -> str:
    """The report section: per benchmark, the ground truth's spread, then each run's (flagged when collapsed)."""
    keys = benchmark_keys(runs)
    if not keys:
        return "<p>No benchmark in these runs.</p>"
    head = "".join(f"<th>{html.escape(r['_label'])}</th>" for r in runs)
    rows, flagged = [], []
    for key in keys:
        cells, truth = [], None
        for run in runs:
            bench = run["benchmarks"].get(key)
            path = predictions_path(run, key) if bench else None
            spread = answer_spread(read_records(path), bench["task_type"]) if path else None
            cells.append(_cell(spread))
            if spread is not None:
                truth = truth or spread
                if spread.collapsed:
                    flagged.append(f"{run['_label']} on {key}")
        expected = ("<td>-</td>" if truth is None else f"<td><code>{show(truth.top_expected, SHOWN_CHARS)}</code> "
                    f"{100 * truth.top_expected_share:.0f}% · {truth.distinct_expected} distinct</td>")  # fmt: skip
        rows.append(f"<tr><td>{html.escape(key)}</td>{expected}{''.join(cells)}</tr>")
    verdict = (
        f"<p><b>One answer dominates</b> (flagged in red): {html.escape('; '.join(flagged))}. These scores come "
        "mostly from the share of questions whose answer is that one.</p>"
        if flagged
        else "<p>No run gives one answer much more often than the ground truth has it.</p>"
    )
    return (
        f"{verdict}<div class=scroll><table id=spread><tr><th>task</th><th>ground truth</th>{head}</tr>"
        f"{''.join(rows)}</table></div><p class=note>Each cell: the most common answer, its share of the samples and "
        "the number of distinct answers (answers normalised as the strict scorer compares them; grounding: the first "
        "box, as fractions of the image's width and height; malformed outputs and unreadable images count as "
        f"{NO_ANSWER}). Flagged when the most common answer covers {100 * COLLAPSE_EXCESS:.0f} points more of the "
        "samples than the most common ground-truth answer does. The ground-truth column is read from the first run "
        "that has the benchmark.</p>"
    )
