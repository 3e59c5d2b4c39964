"""``tinyrs-eval run --dry_run true``: check what a run needs, print the effective settings; load no model, write
nothing, need no GPU.

Checked: the backend package (not CUDA: a login node without a GPU may prepare a GPU job), the task list, the chat
template, the model (an existing checkpoint folder with config.json and weights, or an ``owner/name`` hub id that
is in the local Hugging Face cache when HF_HUB_OFFLINE=1), every selected benchmark file and its records, and every
image: present, inside --data_root (unless --allow_external_image_paths), not cut short (tinyrs_eval.imagecheck:
PNG without IEND, JPEG without its FFD9 end marker, ...; no decode); a sample of images per benchmark is opened
(header only) for its size. Every problem is listed; the exit status is 1 when there is any (as tinyrs-sft's dry
run; 2 is kept for usage errors).
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from typing import Any

from PIL import Image, UnidentifiedImageError

from tinyrs_eval import backends
from tinyrs_eval.benchmarks import Benchmark, Sample, parse_tasks, preflight
from tinyrs_eval.cliargs import EXIT_FAILURE
from tinyrs_eval.config import RunConfig, make_run_name, settings_fingerprint
from tinyrs_eval.errors import EvalError
from tinyrs_eval.imagecheck import truncation_problem
from tinyrs_eval.images import size_problem
from tinyrs_eval.model_source import check_model
from tinyrs_eval.prompts import ChatTemplate, load_template


logger = logging.getLogger(__name__)

OPENED_PER_BENCHMARK = 16  # images per benchmark opened with PIL (header only, no decode)
SHOWN_PER_BENCHMARK = 3  # problem examples quoted per benchmark


def image_problem(sample: Sample, open_header: bool) -> str | None:
    """Why this sample's image cannot be used, or None. Reads the file's ends only (and its header if asked)."""
    if sample.path_error:
        return sample.path_error
    path = sample.image_path
    if not path.is_file():
        return f"image not found: {path}"
    try:
        truncated = truncation_problem(path)
    except OSError as exc:
        return f"image unreadable: {path}: {exc.strerror or exc}"
    if truncated:
        return f"image cut short: {path}: {truncated}"
    if open_header:
        try:
            with Image.open(path) as im:
                return size_problem(path, *im.size)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            return f"image unreadable: {path}: {type(exc).__name__}: {exc}"
    return None


def check_images(bench: Benchmark, samples: list[Sample]) -> tuple[str | None, int]:
    """One problem line for the benchmark's unusable images (None when all are fine) and how many were opened."""
    step = max(1, len(samples) // OPENED_PER_BENCHMARK)
    opened = set(range(0, len(samples), step)[:OPENED_PER_BENCHMARK])
    bad = []
    for i, sample in enumerate(samples):
        problem = image_problem(sample, i in opened)
        if problem:
            bad.append(f"record {sample.index}: {problem}")
    if not bad:
        return None, len(opened)
    shown = "; ".join(bad[:SHOWN_PER_BENCHMARK]) + (
        f" (+{len(bad) - SHOWN_PER_BENCHMARK} more)" if len(bad) > SHOWN_PER_BENCHMARK else ""
    )
    return f"task {bench.key}: {len(bad)} of {len(samples)} image(s) unusable: {shown}", len(opened)


def _describe(fingerprint: dict[str, Any]) -> str:
    """The model part of the cache key, short: the hub id and commit, or the folder, its file count and a hash."""
    if "hub" in fingerprint:
        return f"{fingerprint['hub']}@{fingerprint['revision']}"
    if "files" in fingerprint:
        digest = hashlib.sha256(json.dumps(fingerprint["files"]).encode()).hexdigest()[:12]
        return f"{fingerprint['path']} ({len(fingerprint['files'])} file(s), sha256 {digest})"
    return str(fingerprint.get("path"))


def dry_run(cfg: RunConfig) -> tuple[list[str], list[str]]:
    """The report (effective settings, then what was checked) and the problems found, one line each."""
    problems: list[str] = []
    checks: list[str] = []
    try:
        backends.check_available(cfg.model_type, require_cuda=False)
    except EvalError as exc:
        problems.append(str(exc))
    cuda = backends._cuda_available()
    if cfg.model_type != "hf" and not cuda:
        checks.append(f"note: no CUDA GPU here; --model_type {cfg.model_type} needs one when the run starts")
    benches: list[Benchmark] = []
    try:
        benches = parse_tasks(cfg.task)
    except EvalError as exc:
        problems.append(str(exc))
    template: ChatTemplate | None = None
    try:
        template = load_template(cfg.reasoning_config)
    except EvalError as exc:
        problems.append(str(exc))
    model_problems, model_notes = check_model(cfg.model_name_or_path)
    problems += model_problems
    checks += model_notes
    n_before = len(problems)
    loaded = preflight(cfg.data_root, benches, cfg.limit, cfg.allow_external_image_paths, problems=problems)
    if len(problems) == n_before:
        n = sum(len(v) for v in loaded.values())
        checks.append(f"data: {len(loaded)} benchmark file(s) in {cfg.data_root}, {n} records valid")
    for bench in benches:
        if bench.key not in loaded:
            continue
        problem, n_opened = check_images(bench, loaded[bench.key])
        if problem:
            problems.append(problem)
        else:
            n = len(loaded[bench.key])
            checks.append(
                f"images of {bench.key}: {n} present, inside the data root, none cut short; {n_opened} opened"
            )
    settings: dict[str, Any] = dict(cfg.to_dict())
    if template is not None:
        fingerprint = settings_fingerprint(cfg, template)
        settings["run_name (cache key)"] = make_run_name(cfg, template, fingerprint)
        settings["model fingerprint"] = _describe(fingerprint["model"])
        settings["system prompt"] = (template.meta_instruction or "(none)")[:120]
    settings["device"] = "CUDA GPU(s) visible" if cuda else "no GPU: the hf backend runs on CPU"
    report = ["dry run: effective settings"]
    report += [f"  {key}: {value}" for key, value in settings.items()]
    report.append("dry run: checks")
    report += [f"  ok: {line}" if not line.startswith("note:") else f"  {line}" for line in checks]
    report += [f"  PROBLEM: {line}" for line in problems]
    report.append(
        "dry run: no model loaded, nothing written; " + (f"{len(problems)} problem(s)" if problems else "all present")
    )
    return report, problems


def dry_run_main(cfg: RunConfig) -> int:
    """Print the report to stdout; on problems one ``error:`` line on stderr and exit status 1."""
    report, problems = dry_run(cfg)
    sys.stdout.write("\n".join(report) + "\n")
    if problems:
        sys.stderr.write(f"error: dry run found {len(problems)} problem(s): " + "; ".join(problems) + "\n")
        return EXIT_FAILURE
    return 0
