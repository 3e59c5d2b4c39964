"""``tinyrs-eval report RUN_DIR [RUN_DIR ...]``: one self-contained HTML page comparing runs.

A RUN_DIR is any folder holding a results.json (the --output_dir of a run, or its <run_name>/ folder); give them in
stage order: differences are taken between consecutive runs. Figures and thumbnails are embedded (base64), the one
script is inline: the page needs no other file and no network.

    tinyrs-eval report demo_out/eval/{base,sft,grpo} --label base=demo_out/eval/base ... \\
        --train sft=demo_out/sft --train grpo=demo_out/grpo --output report.html
"""

from __future__ import annotations

import html
import logging
import sys
from pathlib import Path
from typing import Any

from tinyrs_eval import __version__, metrics
from tinyrs_eval.cliargs import EXIT_USAGE, StrictArgumentParser, setup_logging
from tinyrs_eval.errors import EvalError
from tinyrs_eval.report.answers import answer_spread_table
from tinyrs_eval.report.curves import curves_section
from tinyrs_eval.report.failures import failure_browser
from tinyrs_eval.report.figures import metrics_figure
from tinyrs_eval.report.runs import apply_labels, load_run, parse_pairs
from tinyrs_eval.report.tables import deltas_table, grounding_table, lhrs_table, scores_table


logger = logging.getLogger(__name__)

CSS = (
    "*{box-sizing:border-box}body{font-family:sans-serif;margin:1.5em;max-width:1400px;overflow-wrap:anywhere}"
    "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #bbb;padding:3px 7px;text-align:right}"
    "td:first-child{text-align:left}tr.mean td{font-weight:bold;background:#f2f2f2}"
    ".scroll{max-width:100%;overflow-x:auto}td.up{color:#0a7d20}td.down{color:#b00020}td.same{color:#777}"
    "img{max-width:100%;height:auto}.note{color:#555;font-size:12px}"
    ".grid{display:flex;flex-wrap:wrap;gap:10px}"
    ".card{width:230px;max-width:100%;border:1px solid #ddd;border-radius:4px;padding:6px;font-size:11px;"
    "overflow-wrap:anywhere;word-break:break-word}.card img{display:block;margin:0 auto 4px}"
    ".card code,.card pre{white-space:pre-wrap;overflow-wrap:anywhere;word-break:break-word;font-size:10px}"
    ".card pre{max-height:12em;overflow:auto;background:#f6f6f6;margin:2px 0;padding:3px}"
    ".noimg{height:80px;display:flex;align-items:center;justify-content:center;background:#eee;color:#777}"
    ".flag{display:inline-block;border-radius:3px;padding:0 4px;margin:1px;color:#fff;font-size:10px}"
    ".flag.mal{background:#b35c00}.flag.err{background:#b00020}.flag.out{background:#e07b00}.flag.bytes{background:#666}"
    ".bad{background:#fde2e2;color:#900;border-radius:2px;font-family:monospace}.more{color:#999}"
    ".filters{display:flex;flex-wrap:wrap;gap:10px;align-items:center;background:#f4f4f4;padding:6px;"
    "position:sticky;top:0;z-index:1}.group{margin-bottom:14px}[hidden]{display:none!important}"
    "ul.runs li{margin-bottom:4px}"
)


def _run_list(runs: list[dict[str, Any]]) -> str:
    items = []
    for r in runs:
        c = r.get("config", {})
        total = r.get("timings", {}).get("total_s")
        model = c.get("model_name_or_path") or c.get("model_path")  # results.json before / after the rename
        items.append(
            f"<li><b>{html.escape(r['_label'])}</b>: model <code>{html.escape(str(model))}</code>, "
            f"backend {html.escape(str(c.get('model_type')))}, "
            f"prompt style {html.escape(str(c.get('prompt_style')))}, "
            f"template {html.escape(str(c.get('reasoning_config') or 'default'))}, max_new_tokens "
            f"{c.get('max_new_tokens')}, {r.get('world_size')} process(es)"
            f"{'' if total is None else f', {total:.1f} s'} &mdash; run <code>{html.escape(str(r.get('run_name')))}"
            f"</code> in <code>{html.escape(r['_dir'])}</code></li>"
        )
    return "<ul class=runs>" + "".join(items) + "</ul>"


def build_html(runs: list[dict[str, Any]], n_examples: int = 6, train: list[tuple[str, Path]] | None = None) -> str:
    """The report page. ``runs`` come from ``load_run`` (labels applied); ``train``: (stage, training folder)."""
    for r in runs:
        r.setdefault("_label", str(r.get("run_name")))
    figs = []
    for mode in metrics.MODES:
        png = metrics_figure(runs, mode)
        if png:
            figs.append(f"<img alt='{mode} scores' src='data:image/png;base64,{png}'>")
    sections = [
        ("Runs", _run_list(runs)),
        (
            "Scores",
            "<p>strict: exact match, every ground-truth box counted. legacy: the original ScoreRS/TinyRS "
            "scorer (substring match; unparsable boxes leave the denominator).</p>"
            f"{scores_table(runs)}{''.join(figs)}",
        ),  # fmt: skip
        ("Differences between consecutive runs", deltas_table(runs)),
        ("Answer spread", answer_spread_table(runs)),
        ("LHRS-Bench by question type", lhrs_table(runs)),
        ("Grounding by box size", grounding_table(runs)),
        ("Learning curves", curves_section(train or [])),
        ("Failures", failure_browser(runs, n_examples)),
    ]
    body = "".join(f"<h2 id={t.split()[0].lower()}>{html.escape(t)}</h2>{s}" for t, s in sections)
    nav = " · ".join(f"<a href='#{t.split()[0].lower()}'>{html.escape(t)}</a>" for t, _ in sections)
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><meta name=viewport content='width=device-width'>"
        f"<title>TinyRS eval report</title><style>{CSS}</style></head><body><h1>TinyRS evaluation report</h1>"
        f"<nav>{nav}</nav>{body}</body></html>"
    )


def main(argv: list[str] | None = None) -> int:
    parser = StrictArgumentParser(prog="tinyrs-eval report", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"tinyrs-eval {__version__}")
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="folders holding a results.json, in order")
    parser.add_argument("--output", default=None, help="HTML file (default: <first RUN_DIR>/report.html)")
    parser.add_argument("--examples", type=int, default=6, help="wrong answers shown per run and benchmark")
    parser.add_argument("--label", action="append", metavar="NAME=RUN_DIR", help="show RUN_DIR as NAME (repeatable)")
    parser.add_argument("--train", action="append", metavar="STAGE=DIR", help="training output folder (repeatable)")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        runs = [load_run(Path(d)) for d in args.run_dirs]
        apply_labels(runs, parse_pairs(args.label, "--label"))
        train = parse_pairs(args.train, "--train")
        for _, folder in train:
            if not folder.is_dir():
                raise EvalError(f"--train: training output folder not found: {folder}")
        out = Path(args.output) if args.output else Path(args.run_dirs[0]) / "report.html"
        out.write_text(build_html(runs, args.examples, train), encoding="utf-8")
    except (EvalError, OSError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
    sys.stdout.write(f"{out}\n")
    return 0
