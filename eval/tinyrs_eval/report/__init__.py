"""The HTML report (``tinyrs-eval report``): scores, differences, per-type and per-size tables, learning curves and
a failure browser. Modules: runs (loading, labels), tables, figures, failures, curves, text (safe model text), page
(assembly and the command line)."""

from tinyrs_eval.report.page import build_html, main
from tinyrs_eval.report.runs import load_run, predictions_path
