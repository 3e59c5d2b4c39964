"""Learning curves from training output folders (``--train stage=path``).

The log is read from ``<path>/trainer_state.json`` (HF Trainer ``log_history``, written by ``save_state`` at the end
of SFT), else ``<path>/train_log.jsonl`` (one line per logging step, written by the GRPO stage), else the newest
``checkpoint-*/trainer_state.json``. Plotted over steps: the training loss; for GRPO also the mean reward of each
reward function (TRL logs ``rewards/<function>/mean``) and the total ``reward``, ``kl`` and
``completions/mean_length``.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

from tinyrs_eval.errors import EvalError
from tinyrs_eval.report.figures import png_of_figure


_REWARD = re.compile(r"^rewards/(.+)/mean$")
# panel title -> (log key or pattern, legend name) in drawing order
PANELS = ("training loss", "mean reward", "KL", "completion length (tokens)")


def _checkpoint_step(path: Path) -> int:
    m = re.search(r"checkpoint-(\d+)$", path.name)
    return int(m.group(1)) if m else -1


def read_log(folder: Path) -> tuple[list[dict[str, Any]], Path | None]:
    """The logged entries of a training output folder and the file they came from ([] and None: no log)."""
    if not folder.is_dir():
        raise EvalError(f"--train: training output folder not found: {folder}")
    candidates = [folder / "trainer_state.json", folder / "train_log.jsonl"]
    candidates += [c / "trainer_state.json" for c in sorted(folder.glob("checkpoint-*"), key=_checkpoint_step,
                                                                reverse=True)]  # fmt: skip
    for path in candidates:
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
            if path.suffix == ".jsonl":
                entries = [json.loads(line) for line in text.splitlines() if line.strip()]
            else:
                entries = json.loads(text).get("log_history", [])
        except (OSError, ValueError, AttributeError) as exc:
            raise EvalError(f"{path}: cannot read the training log: {exc}") from exc
        return [e for e in entries if isinstance(e, dict)], path
    return [], None


def collect_series(entries: list[dict[str, Any]]) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """{panel: {series name: [(step, value), ...]}} for the panels that have data."""
    panels: dict[str, dict[str, list[tuple[float, float]]]] = {p: {} for p in PANELS}

    def add(panel: str, name: str, step: Any, value: Any) -> None:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and isinstance(step, (int, float)):
            panels[panel].setdefault(name, []).append((float(step), float(value)))

    for e in entries:
        step = e.get("step")
        add(PANELS[0], "loss", step, e.get("loss"))
        for key, value in e.items():
            m = _REWARD.match(key)
            if m:
                add(PANELS[1], m.group(1), step, value)
        add(PANELS[1], "reward (total)", step, e.get("reward"))
        add(PANELS[2], "kl", step, e.get("kl"))
        add(PANELS[3], "completions/mean_length", step, e.get("completions/mean_length"))
    return {p: s for p, s in panels.items() if s}


def _figure(stage: str, series: dict[str, dict[str, list[tuple[float, float]]]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(series), figsize=(3.6 * len(series), 2.7), squeeze=False)
    for ax, (panel, lines) in zip(axes[0], series.items()):
        for name, points in lines.items():
            xs, ys = zip(*points)
            style = "--" if name == "reward (total)" else "-"
            ax.plot(xs, ys, style, marker="." if len(xs) < 30 else None, label=name)
        ax.set_title(f"{stage}: {panel}", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        if len(lines) > 1:
            ax.legend(fontsize=6)
    fig.tight_layout()
    return png_of_figure(fig)


def _series_table(series: dict[str, dict[str, list[tuple[float, float]]]]) -> str:
    rows = []
    for panel, lines in series.items():
        for name, points in lines.items():
            rows.append(
                f"<tr><td>{html.escape(panel)}</td><td class=series>{html.escape(name)}</td><td>{len(points)}</td>"
                f"<td>{points[0][1]:.4g}</td><td>{points[-1][1]:.4g}</td></tr>"
            )
    return ("<div class=scroll><table class=curves><tr><th>panel</th><th>series</th><th>points</th><th>first</th>"
            f"<th>last</th></tr>{''.join(rows)}</table></div>")  # fmt: skip


def curves_section(train: list[tuple[str, Path]]) -> str:
    if not train:
        return (
            "<p id=no-curves>No training folders given: pass <code>--train STAGE=OUTPUT_DIR</code> (repeatable) to "
            "plot each stage's training loss, and for GRPO the mean reward per reward function, KL and completion "
            "length.</p>"
        )
    parts = []
    for stage, folder in train:
        entries, source = read_log(folder)
        series = collect_series(entries)
        title = f"<h3>{html.escape(stage)}</h3>"
        if not series:
            why = "no trainer_state.json or train_log.jsonl" if source is None else f"nothing to plot in {source}"
            parts.append(f"<div class=curve data-stage=\"{html.escape(stage, quote=True)}\">{title}"
                         f"<p class=note>{html.escape(str(folder))}: {html.escape(why)}.</p></div>")  # fmt: skip
            continue
        parts.append(
            f'<div class=curve data-stage="{html.escape(stage, quote=True)}">{title}'
            f"<img alt='{html.escape(stage)} training curves' src='data:image/png;base64,{_figure(stage, series)}'>"
            f"<p class=note>from {html.escape(str(source))}</p>{_series_table(series)}</div>"
        )
    return "".join(parts)
