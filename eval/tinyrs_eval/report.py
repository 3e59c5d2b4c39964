"""``tinyrs-eval report RUN_DIR [RUN_DIR ...]``: one self-contained HTML page comparing runs.

A RUN_DIR is any folder holding a results.json (the --output_dir of a run, or its <run_name>/ folder). Figures are
drawn with matplotlib and embedded as base64 PNG, so the page needs no other file.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import logging
import sys
from pathlib import Path
from typing import Any

from tinyrs_eval import metrics
from tinyrs_eval.results import headline


logger = logging.getLogger(__name__)


def load_run(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"no results.json in {run_dir}")
    results = json.loads(path.read_text(encoding="utf-8"))
    results["_dir"] = str(Path(run_dir).resolve())
    return results


def predictions_path(results: dict[str, Any], key: str) -> Path | None:
    """The benchmark's JSONL: stored relative to the output_dir; also found from inside the run folder."""
    rel = results["benchmarks"][key].get("predictions")
    if not rel:
        return None
    base = Path(results["_dir"])
    for candidate in (base / rel, base / Path(rel).name, base.parent / rel):
        if candidate.is_file():
            return candidate
    return None


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _label(results: dict[str, Any], i: int) -> str:
    return f"[{i + 1}] {results['run_name']}"


def metrics_figure(runs: list[dict[str, Any]], mode: str) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    keys = list(dict.fromkeys(k for r in runs for k in r["benchmarks"]))
    if not keys:
        return None
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(keys) + 2), 3.6))
    width = 0.8 / len(runs)
    x = np.arange(len(keys))
    for i, run in enumerate(runs):
        vals = []
        for k in keys:
            b = run["benchmarks"].get(k)
            v = b[mode].get(headline(b["task_type"])) if b else None
            vals.append(np.nan if v is None else 100 * v)
        ax.bar(x + i * width - 0.4 + width / 2, vals, width, label=_label(run, i))
    ax.set_xticks(x, keys, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel(f"{mode} score (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"{mode}: accuracy (cls, vqa, lhrs) / precision@0.5 (grounding)")
    ax.legend(fontsize=7)
    return _png(fig)


def grounding_figure(record: dict[str, Any]) -> str:
    """The image with ground-truth boxes (green) and the strictly parsed predicted boxes (red)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    from PIL import Image

    fig, ax = plt.subplots(figsize=(3.2, 3.2))
    try:
        with Image.open(record["image"]) as im:
            ax.imshow(im.convert("RGB"))
    except OSError:
        ax.text(0.5, 0.5, "image not available", ha="center", va="center", transform=ax.transAxes)
    for box in metrics.parse_boxes(record["answer"]):
        ax.add_patch(Rectangle((box[0], box[1]), box[2] - box[0], box[3] - box[1], fill=False, ec="lime", lw=2))
    size = record.get("size")
    if size and not record.get("error") and not metrics.is_malformed(record.get("pred", "")):
        for box in metrics.parse_boxes(metrics.extract_answer(record["pred"])):
            x1, y1, x2, y2 = metrics.scale_box(box, size, 1000)
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="red", lw=2, ls="--"))
    ax.set_axis_off()
    return _png(fig)


def _read_records(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.2f}"


def _table(runs: list[dict[str, Any]]) -> str:
    keys = list(dict.fromkeys(k for r in runs for k in r["benchmarks"]))
    head = "".join(f"<th colspan=3>{html.escape(_label(r, i))}</th>" for i, r in enumerate(runs))
    sub = "<th>strict %</th><th>legacy %</th><th>malformed / errors</th>" * len(runs)
    rows = []
    for k in keys:
        cells = []
        for r in runs:
            b = r["benchmarks"].get(k)
            if not b:
                cells.append("<td>-</td><td>-</td><td>-</td>")
                continue
            m = headline(b["task_type"])
            cells.append(
                f"<td>{_fmt(b['strict'].get(m))}</td><td>{_fmt(b['legacy'].get(m))}</td>"
                f"<td>{b['malformed']} / {b['errors']} of {b['n_samples']}</td>"
            )
        rows.append(f"<tr><td>{html.escape(k)}</td>{''.join(cells)}</tr>")
    return f"<table><tr><th>task</th>{head}</tr><tr><th></th>{sub}</tr>{''.join(rows)}</table>"


def _run_list(runs: list[dict[str, Any]]) -> str:
    items = []
    for i, r in enumerate(runs):
        c = r["config"]
        items.append(
            f"<li><b>{html.escape(_label(r, i))}</b>: model <code>{html.escape(str(c['model_path']))}</code>, "
            f"backend {html.escape(c['model_type'])}, prompt style {html.escape(c['prompt_style'])}, template "
            f"{html.escape(str(c['reasoning_config'] or 'default'))}, max_new_tokens {c['max_new_tokens']}, "
            f"{r['world_size']} process(es), {r['timings']['total_s']:.1f} s &mdash; "
            f"<code>{html.escape(r['_dir'])}</code></li>"
        )
    return "<ul>" + "".join(items) + "</ul>"


def _examples(runs: list[dict[str, Any]], n_examples: int) -> str:
    parts = []
    for i, run in enumerate(runs):
        for key, b in run["benchmarks"].items():
            if b["task_type"] != "bbox":
                continue
            path = predictions_path(run, key)
            if path is None:
                parts.append(f"<p>{html.escape(_label(run, i))} {html.escape(key)}: predictions file not found</p>")
                continue
            records = _read_records(path)[:n_examples]
            cells = []
            for rec in records:
                iou = metrics.bbox_matches(rec, "strict")[0][1] if rec.get("size") or rec.get("error") else None
                caption = (
                    f"#{rec['index']} {html.escape(rec.get('question', '')[:80])}<br>"
                    f"pred: <code>{html.escape(str(rec.get('pred', ''))[:120])}</code><br>"
                    f"IoU {'miss' if iou is None else f'{iou:.2f}'}"
                )
                cells.append(
                    f"<figure><img src='data:image/png;base64,{grounding_figure(rec)}'><figcaption>{caption}"
                    "</figcaption></figure>"
                )
            title = f"{html.escape(_label(run, i))}: {html.escape(key)}"
            parts.append(f"<h3>{title}</h3><div class=grid>{''.join(cells)}</div>")
    if not parts:
        return "<p>No grounding benchmark in these runs.</p>"
    return "<p>Green: ground truth; red dashed: prediction (strict parse).</p>" + "".join(parts)


_CSS = (
    "body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;font-size:13px}"
    "td,th{border:1px solid #bbb;padding:3px 7px;text-align:right}td:first-child{text-align:left}"
    ".grid{display:flex;flex-wrap:wrap;gap:12px}figure{width:300px;margin:0;font-size:11px}img{max-width:100%}"
)


def build_html(runs: list[dict[str, Any]], n_examples: int = 6) -> str:
    figs = []
    for mode in metrics.MODES:
        png = metrics_figure(runs, mode)
        if png:
            figs.append(f"<img src='data:image/png;base64,{png}'>")
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>TinyRS eval report</title><style>{_CSS}</style>"
        "</head><body><h1>TinyRS evaluation report</h1><h2>Runs</h2>"
        f"{_run_list(runs)}<h2>Scores</h2><p>strict: exact match, every ground-truth box counted. legacy: the "
        "original ScoreRS/TinyRS scorer (substring match; unparsable boxes leave the denominator).</p>"
        f"{_table(runs)}{''.join(figs)}<h2>Grounding examples</h2>{_examples(runs, n_examples)}</body></html>"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tinyrs-eval report", description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="folders holding a results.json")
    parser.add_argument("--output", default=None, help="HTML file (default: <first RUN_DIR>/report.html)")
    parser.add_argument("--examples", type=int, default=6, help="grounding examples drawn per run")
    args = parser.parse_args(argv)
    try:
        runs = [load_run(Path(d)) for d in args.run_dirs]
    except (FileNotFoundError, json.JSONDecodeError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    out = Path(args.output) if args.output else Path(args.run_dirs[0]) / "report.html"
    out.write_text(build_html(runs, args.examples), encoding="utf-8")
    sys.stdout.write(f"{out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
