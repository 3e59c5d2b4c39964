"""The GPU check's summary table: one line of figures per step."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any


EVAL_TASK = "cls_aid"


def junit_counts(path: Path) -> dict[str, int]:
    """tests / failures / errors / skipped / passed from a pytest JUnit XML file."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return counts


# ---------------------------------------------------------------------------------------------------------------
# Table
# ---------------------------------------------------------------------------------------------------------------
def _fmt(value: Any, spec: str = "") -> str:
    if value is None:
        return "-"
    return format(value, spec) if spec else str(value)


def _memory(metrics: dict[str, Any]) -> str:
    mem = metrics.get("memory") or {}
    if mem.get("max_allocated_gib") is not None:
        return f"peak {mem['max_allocated_gib']} GiB GPU"
    return f"peak RSS {_fmt(mem.get('max_rss_gib'))} GiB"


def step_figures(name: str, step: dict[str, Any]) -> str:
    """The one-line summary of a step for the table."""
    m = step.get("metrics") or {}
    if step.get("status") != "ok" and not m:
        return (step.get("error") or "")[:100]
    if name == "install":
        return f"{len(m.get('wheels', []))} wheels + {len(m.get('sdists', []))} sdists, {m.get('carried_mib')} MiB"
    if name == "env":
        tf = (m.get("transformers") or {}).get("version")
        return f"{m.get('device_name', 'cpu')}, torch {(m.get('torch') or {}).get('version')}, transformers {tf}"
    if name == "demo_data":
        return f"{m.get('sft_records')} SFT records, {m.get('eval_records')} {EVAL_TASK} records"
    if name == "checkpoint":
        params = (m.get("parameters") or {}).get("total") or 0
        size = f"{params / 1e9:.3f} B" if params >= 1e8 else f"{params / 1e6:.2f} M"
        return f"{m.get('shape_name')} shape, {size} params, {m.get('vocab')} vocab ({m.get('tokenizer_len')} tokens)"
    if name == "sft":
        mfu = m.get("mfu")
        return (
            f"{_fmt(m.get('tokens_per_s'))} tok/s, MFU {_fmt(mfu * 100 if mfu is not None else None, '.1f')}%, "
            f"{_fmt(m.get('step_s_mean'))} s/step, {_memory(m)}"
        )
    if name == "grpo":
        return (
            f"{_fmt(m.get('step_s_mean'))} s/step (gen {_fmt(m.get('generation_s_mean'))}, "
            f"score {_fmt(m.get('scoring_s_mean'))}, train {_fmt(m.get('training_s_mean'))}), "
            f"{_fmt(m.get('tokens_per_s_per_gpu'))} tok/s/GPU, {_memory(m)}"
        )
    if name.startswith("eval_"):
        if step.get("status") == "skipped":
            return (step.get("error") or "")[:100]
        return (
            f"{_fmt(m.get('samples_per_s'))} samples/s ({m.get('n_inferred')} samples, batch {m.get('batch_size')}, "
            f"{m.get('max_new_tokens')} new tokens)"
        )
    if name == "pytest_gpu" and m:
        counts = (m.get("passed"), m.get("failures"), m.get("errors"), m.get("skipped"))
        return "{} passed, {} failed, {} errors, {} skipped".format(*counts)
    return (step.get("error") or "")[:100]


def format_table(report: dict[str, Any]) -> str:
    rows = [("step", "status", "seconds", "figures")]
    for name, step in report.get("steps", {}).items():
        rows.append((name, step.get("status", "?"), f"{step.get('seconds', 0):.1f}", step_figures(name, step)))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [
        f"GPU check ({'dry run, CPU, tiny shapes' if report.get('dry_run') else 'GPU'}) "
        f"on {report.get('device', '?')}, "
        f"{report.get('created')}, total {report.get('total_s', report.get('elapsed_s'))} s"
    ]
    for i, r in enumerate(rows):
        lines.append("  ".join(r[j].ljust(widths[j]) for j in range(3)) + "  " + r[3])
        if i == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 7)
    return "\n".join(lines)
