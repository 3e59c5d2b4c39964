"""The report's tables: scores with a mean row, stage-to-stage differences, LHRS-Bench per type, grounding by size."""

from __future__ import annotations

import html
from typing import Any

from tinyrs_eval.constants import LHRS_TYPE_NAMES
from tinyrs_eval.metrics import LEVEL_NAMES, MODES
from tinyrs_eval.report.runs import benchmark_keys
from tinyrs_eval.results import headline


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.2f}"


def _name(run: dict[str, Any]) -> str:
    return html.escape(run["_label"])


def score(run: dict[str, Any], key: str, mode: str = "strict") -> float | None:
    bench = run["benchmarks"].get(key)
    return None if bench is None else bench[mode].get(headline(bench["task_type"]))


def mean_score(run: dict[str, Any], mode: str = "strict") -> tuple[float | None, int]:
    """Unweighted mean of the headline scores of the run's benchmarks (those with a score), and how many."""
    values = [v for k in run["benchmarks"] if (v := score(run, k, mode)) is not None]
    return (sum(values) / len(values) if values else None), len(values)


def scores_table(runs: list[dict[str, Any]]) -> str:
    keys = benchmark_keys(runs)
    head = "".join(f"<th colspan=3>{_name(r)}</th>" for r in runs)
    sub = "<th>strict %</th><th>legacy %</th><th>malformed / errors</th>" * len(runs)
    rows = []
    for k in keys:
        cells = []
        for r in runs:
            b = r["benchmarks"].get(k)
            if not b:
                cells.append("<td>-</td><td>-</td><td>-</td>")
                continue
            cells.append(
                f"<td>{_fmt(score(r, k))}</td><td>{_fmt(score(r, k, 'legacy'))}</td>"
                f"<td>{b['malformed']} / {b['errors']} of {b['n_samples']}</td>"
            )
        rows.append(f"<tr><td>{html.escape(k)}</td>{''.join(cells)}</tr>")
    mean_cells = []
    for r in runs:
        (s, n), (lg, _) = mean_score(r), mean_score(r, "legacy")
        mean_cells.append(f"<td>{_fmt(s)}</td><td>{_fmt(lg)}</td><td>{n} benchmarks</td>")
    rows.append(f"<tr class=mean><td>mean</td>{''.join(mean_cells)}</tr>")
    return (
        f"<div class=scroll><table id=scores><tr><th>task</th>{head}</tr><tr><th></th>{sub}</tr>{''.join(rows)}"
        "</table></div><p class=note>mean: unweighted mean of the benchmarks' headline scores (accuracy; "
        "precision@0.5 for grounding) over the benchmarks the run has.</p>"
    )


def _delta_cell(new: float | None, old: float | None) -> str:
    if new is None or old is None:
        return "<td>n/a</td>"
    d = 100 * (new - old)
    cls = "up" if d > 0.005 else "down" if d < -0.005 else "same"
    return f"<td class={cls}>{d:+.2f}</td>"


def deltas_table(runs: list[dict[str, Any]]) -> str:
    """Strict headline score of each run minus that of the run before it (in the order given), in points."""
    if len(runs) < 2:
        return "<p>One run: no differences to show.</p>"
    keys = benchmark_keys(runs)
    pairs = list(zip(runs[:-1], runs[1:]))
    head = "".join(f"<th>{_name(b)} − {_name(a)}</th>" for a, b in pairs)
    rows = [
        f"<tr><td>{html.escape(k)}</td>{''.join(_delta_cell(score(b, k), score(a, k)) for a, b in pairs)}</tr>"
        for k in keys
    ]
    mean_row = "".join(_delta_cell(mean_score(b)[0], mean_score(a)[0]) for a, b in pairs)
    rows.append(f"<tr class=mean><td>mean</td>{mean_row}</tr>")
    return (
        f"<div class=scroll><table id=deltas><tr><th>task (strict, points)</th>{head}</tr>{''.join(rows)}</table>"
        "</div>"
    )


def lhrs_table(runs: list[dict[str, Any]]) -> str:
    """LHRS-Bench accuracy per question type (strict / legacy), types present in any run."""
    keys = [k for k in benchmark_keys(runs) if any(r["benchmarks"].get(k, {}).get("task_type") == "lhrsbench"
                                                  for r in runs)]  # fmt: skip
    if not keys:
        return "<p>No LHRS-Bench benchmark in these runs.</p>"
    parts = []
    for key in keys:
        names = [n for n in LHRS_TYPE_NAMES.values()
                 if any(f"accuracy_{n}" in r["benchmarks"].get(key, {}).get("strict", {}) for r in runs)]  # fmt: skip
        head = "".join(f"<th>{_name(r)}<br>strict / legacy %</th>" for r in runs)
        rows = []
        for name in ["(all)", *names]:
            metric = "accuracy" if name == "(all)" else f"accuracy_{name}"
            cells = []
            for r in runs:
                b = r["benchmarks"].get(key)
                cells.append(
                    "<td>-</td>"
                    if not b
                    else f"<td>{_fmt(b['strict'].get(metric))} / {_fmt(b['legacy'].get(metric))}</td>"
                )
            rows.append(f"<tr><td>{html.escape(name)}</td>{''.join(cells)}</tr>")
        parts.append(f"<h3>{html.escape(key)}</h3><div class=scroll><table class=lhrs><tr><th>type</th>{head}</tr>"
                     f"{''.join(rows)}</table></div>")  # fmt: skip
    return "".join(parts)


def grounding_table(runs: list[dict[str, Any]]) -> str:
    """Grounding precision@0.5 by ground-truth box size (S <= 32², M <= 96², L above), strict / legacy."""
    keys = [k for k in benchmark_keys(runs) if any(r["benchmarks"].get(k, {}).get("task_type") == "bbox"
                                                  for r in runs)]  # fmt: skip
    if not keys:
        return "<p>No grounding benchmark in these runs.</p>"
    parts = []
    for key in keys:
        head = "".join(f"<th>{_name(r)}<br>strict / legacy %</th>" for r in runs)
        rows = []
        for level in ["all", *LEVEL_NAMES]:
            metric = "precision@0.5" if level == "all" else f"precision@0.5_{level}"
            cells = []
            for r in runs:
                b = r["benchmarks"].get(key)
                vals = [_fmt(b[m].get(metric)) for m in MODES] if b else None
                cells.append("<td>-</td>" if vals is None else f"<td>{' / '.join(vals)}</td>")
            rows.append(f"<tr><td>{level}</td>{''.join(cells)}</tr>")
        ns = " · ".join(f"{_name(r)}: {r['benchmarks'][key]['strict'].get('n', '?')} boxes"
                        for r in runs if key in r["benchmarks"])  # fmt: skip
        parts.append(f"<h3>{html.escape(key)}</h3><div class=scroll><table class=sizes><tr><th>size</th>{head}</tr>"
                     f"{''.join(rows)}</table></div><p class=note>{ns}. Legacy S/M/L are the original scorer's "
                     "(level index not reset between boxes, E3).</p>")  # fmt: skip
    return "".join(parts)
