"""Run folders for the report: results.json, predictions JSONL files and the label each run is shown under."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tinyrs_eval.errors import EvalError


def load_run(run_dir: str | Path) -> dict[str, Any]:
    """A run's results.json, with ``_dir`` (its resolved folder) and ``_label`` (its run name) added."""
    path = Path(run_dir) / "results.json"
    if not path.is_file():
        raise EvalError(f"no results.json in {run_dir}")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EvalError(f"{path}: cannot read results JSON: {exc}") from exc
    if not isinstance(results, dict) or not isinstance(results.get("benchmarks"), dict):
        raise EvalError(f"{path}: not a tinyrs-eval results.json (no 'benchmarks' object)")
    results["_dir"] = str(Path(run_dir).resolve())
    results["_label"] = str(results.get("run_name") or Path(run_dir).name)
    return results


def parse_pairs(values: list[str] | None, flag: str) -> list[tuple[str, Path]]:
    """``name=path`` options (``--label``, ``--train``) as (name, path); a one-line error for anything else."""
    pairs = []
    for value in values or []:
        name, sep, path = value.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise EvalError(f"{flag} {value!r}: expected NAME=PATH")
        pairs.append((name.strip(), Path(path.strip())))
    return pairs


def apply_labels(runs: list[dict[str, Any]], labels: list[tuple[str, Path]]) -> None:
    """Set each run's ``_label`` from ``--label name=path`` (path: the RUN_DIR as given, or the same folder)."""
    by_dir = {r["_dir"]: r for r in runs}
    for name, path in labels:
        run = by_dir.get(str(path.resolve()))
        if run is None:
            known = ", ".join(sorted(by_dir))
            raise EvalError(f"--label {name}={path}: not one of the RUN_DIRs given ({known})")
        run["_label"] = name
    seen: dict[str, int] = {}
    for run in runs:  # two runs under one label would be indistinguishable: number the repeats
        n = seen[run["_label"]] = seen.get(run["_label"], 0) + 1
        if n > 1:
            run["_label"] = f"{run['_label']} ({n})"


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


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of a predictions JSONL; lines that do not parse (a write cut short) are skipped."""
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
    return out


def benchmark_keys(runs: list[dict[str, Any]]) -> list[str]:
    """Every benchmark key of the runs, in first-seen order."""
    return list(dict.fromkeys(k for r in runs for k in r["benchmarks"]))
