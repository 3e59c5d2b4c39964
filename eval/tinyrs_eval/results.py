"""results.json, summary.md and the printed table."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
from pathlib import Path
from typing import Any


_PACKAGES = ("tinyrs-eval", "torch", "transformers", "accelerate", "pillow", "lmdeploy", "vllm", "qwen-vl-utils")


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    if versions["tinyrs-eval"] is None:
        from tinyrs_eval import __version__

        versions["tinyrs-eval"] = f"{__version__} (not installed)"
    return versions


def headline(task_type: str) -> str:
    """The metric shown in tables for a task type."""
    return "precision@0.5" if task_type == "bbox" else "accuracy"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}"


def summary_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for key, bench in results["benchmarks"].items():
        metric = headline(bench["task_type"])
        rows.append(
            [
                key,
                metric,
                str(bench["n_samples"]),
                _pct(bench["strict"].get(metric)),
                _pct(bench["legacy"].get(metric)),
                str(bench["malformed"]),
                str(bench["errors"]),
            ]
        )
    return rows


SUMMARY_HEADER = ["task", "metric", "samples", "strict %", "legacy %", "malformed", "errors"]


def markdown_table(results: dict[str, Any]) -> str:
    rows = [SUMMARY_HEADER, *summary_rows(results)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(SUMMARY_HEADER))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"

    out = [line(rows[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows[1:]]
    return "\n".join(out)


def summary_markdown(results: dict[str, Any]) -> str:
    cfg = results["config"]
    model = cfg.get("model_name_or_path") or cfg.get("model_path")  # results.json written before the rename
    lines = [
        f"# Evaluation: {results['run_name']}",
        "",
        f"- model: `{model}` ({cfg['model_type']} backend, prompt style `{cfg['prompt_style']}`, "
        f"template: {'`' + cfg['reasoning_config'] + '`' if cfg['reasoning_config'] else 'default'})",
        f"- processes: {results['world_size']}, total time {results['timings']['total_s']:.1f} s",
        "- strict: exact match / every ground-truth box counted; legacy: the original ScoreRS/TinyRS scorer "
        "(substring match, unparsable boxes leave the denominator).",
        "",
        markdown_table(results),
        "",
    ]
    return "\n".join(lines)


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False, allow_nan=False)
        f.write("\n")
    os.replace(tmp, path)


def _write(results: dict[str, Any], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / "results.json", results)
    (folder / "summary.md").write_text(summary_markdown(results), encoding="utf-8")


def accumulate(previous: dict[str, Any] | None, results: dict[str, Any], order: list[str]) -> dict[str, Any]:
    """This invocation's results plus the benchmarks an earlier invocation of the same run name scored."""
    if not previous or previous.get("run_name") != results["run_name"]:
        return results
    merged = {**previous.get("benchmarks", {}), **results["benchmarks"]}
    out = dict(results)
    out["benchmarks"] = {k: merged[k] for k in sorted(merged, key=lambda k: order.index(k) if k in order else 99)}
    return out


def write_outputs(results: dict[str, Any], output_dir: Path, run_dir: Path, order: list[str]) -> None:
    """``output_dir``: this invocation's results.json / summary.md. ``run_dir``: every benchmark scored so far under
    this run name (a later ``--task rs_vg`` adds to an earlier ``--task cls_aid``)."""
    _write(results, output_dir)
    previous = None
    if (run_dir / "results.json").is_file():
        try:
            previous = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            previous = None
    _write(accumulate(previous, results, order), run_dir)
