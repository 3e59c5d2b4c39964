"""The 12 benchmarks (RSRM / ScoreRS layout): registry, record validation and image path resolution."""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinyrs_eval.constants import LHRS_TYPE_NAMES
from tinyrs_eval.errors import BenchmarkError
from tinyrs_eval.metrics import parse_numbers


logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Benchmark:
    key: str
    file: str
    task_type: str  # cls | vqa | bbox | lhrsbench

    @property
    def stem(self) -> str:
        return Path(self.file).stem


BENCHMARKS: dict[str, Benchmark] = {
    b.key: b
    for b in (
        Benchmark("cls_aid", "cls_AID.json", "cls"),
        Benchmark("cls_METER_ML", "cls_METER_ML.json", "cls"),
        Benchmark("cls_NWPU_RESISC45", "cls_NWPU_RESISC45.json", "cls"),
        Benchmark("cls_SIRI", "cls_SIRI_WHU.json", "cls"),
        Benchmark("cls_WHU_RS19", "cls_WHU_RS19.json", "cls"),
        Benchmark("vqa_HR-comp", "RSVQA_HR-comp_RSVQA.json", "vqa"),
        Benchmark("vqa_HR-pre", "RSVQA_HR-presence_RSVQA.json", "vqa"),
        Benchmark("vqa_LR-comp", "RSVQA_LR-comp_RSVQA.json", "vqa"),
        Benchmark("vqa_LR-pre", "RSVQA_LR-presence_RSVQA.json", "vqa"),
        Benchmark("vqa_LR-rural", "RSVQA_LR-rural_urban_RSVQA.json", "vqa"),
        Benchmark("rs_vg", "VG_DOIR_RSVG_test.json", "bbox"),
        Benchmark("lhrs_bench", "LHRS-Bench.json", "lhrsbench"),
    )
}


def _task_names() -> dict[str, Benchmark]:
    """Lower-cased benchmark keys and file stems (``cls_aid``, ``cls_AID`` -> ``cls_aid``) -> benchmark."""
    names: dict[str, Benchmark] = {}
    for bench in BENCHMARKS.values():
        names[bench.key.lower()] = bench
        names[bench.stem.lower()] = bench
    return names


def parse_tasks(value: str) -> list[Benchmark]:
    """``all``, one benchmark, or a comma-separated list (order kept, duplicates dropped). A benchmark is named by its
    key (``cls_aid``) or its file stem (``cls_AID``, also with ``.json``), in any case."""
    names = [k.strip() for k in str(value).split(",") if k.strip()]
    if not names:
        raise BenchmarkError("--task is empty; use 'all', a benchmark key or file stem, or a comma list of them")
    if [n.lower() for n in names] == ["all"]:
        return list(BENCHMARKS.values())
    lookup = _task_names()
    wanted = [n.lower().removesuffix(".json") for n in names]
    unknown = [n for n, w in zip(names, wanted) if w not in lookup]
    if unknown:
        choices = ", ".join(b.key + (f" ({b.stem})" if b.stem != b.key else "") for b in BENCHMARKS.values())
        raise BenchmarkError(f"unknown --task {', '.join(unknown)}; choose 'all' or from: {choices}")
    return list(dict.fromkeys(lookup[w] for w in wanted))


@dataclass(frozen=True)
class Sample:
    """One benchmark record, validated. ``index`` is its position in the benchmark file."""

    index: int
    image_path: Path
    question: str
    answer: str
    size: tuple[int, int] | None  # (height, width) as given in the file, if given
    types: tuple[str, ...] | None  # LHRS-Bench type ids, as written (legacy scoring matches them exactly)
    sample_id: str | None
    path_error: str | None = None  # why the image path is refused (outside --data_root); the image is not opened


def resolve_image_path(record: dict[str, Any], json_path: Path) -> Path:
    """The original resolution: absolute image_path -> image_path/image; relative -> data_root/image_path/image;
    absent -> data_root/<json file stem>/image."""
    image = record["image"]
    image_path = record.get("image_path")
    if image_path is None:
        return json_path.parent / json_path.stem / image
    if Path(image_path).is_absolute():
        return Path(image_path) / image
    return json_path.parent / image_path / image


EXTERNAL_HINT = "pass --allow_external_image_paths true to allow absolute or '..' paths"


def image_path_problem(path: Path, data_root: Path, allow_external: bool = False) -> str | None:
    """Why ``path`` may not be read: it leads outside ``data_root`` (absolute, or '..' escapes) and that is not
    allowed. The check is on the normalised path, like tinyrs_sft's --image_folder rule; symlinks are followed as
    the data's owner laid them out."""
    if allow_external:
        return None
    root = os.path.normpath(os.path.abspath(data_root))
    candidate = os.path.normpath(os.path.abspath(path))
    if os.path.commonpath([root, candidate]) == root:
        return None
    return f"image path {str(path)[:200]!r} is outside --data_root {str(data_root)!r} (refused; {EXTERNAL_HINT})"


def _where(json_path: Path, index: int, record: Any) -> str:
    rid = record.get("id") if isinstance(record, dict) else None
    return f"{json_path} record {index}" + (f" (id {rid})" if rid is not None else "")


def parse_record(record: Any, index: int, json_path: Path, task_type: str, allow_external: bool = False) -> Sample:
    """Validate one record; raise BenchmarkError naming file, index (and id) and the problem.

    An image path outside the data root (the benchmark file's folder) is not an error here: the sample carries the
    reason in ``path_error`` and is scored as an error sample, its image never opened.
    """
    where = _where(json_path, index, record)
    if not isinstance(record, dict):
        raise BenchmarkError(f"{where}: expected a JSON object, got {type(record).__name__}")
    image = record.get("image")
    if not isinstance(image, str) or not image:
        raise BenchmarkError(f"{where}: 'image' must be a non-empty string, got {image!r}")
    if "image_path" in record and not isinstance(record["image_path"], str):
        raise BenchmarkError(f"{where}: 'image_path' must be a string, got {record['image_path']!r}")
    conv = record.get("conversations")
    if not isinstance(conv, list) or len(conv) < 2:
        raise BenchmarkError(f"{where}: 'conversations' must be a list with a question and an answer turn")
    values = []
    for turn_i, turn in enumerate(conv[:2]):
        if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
            raise BenchmarkError(f"{where}: conversations[{turn_i}] has no string 'value'")
        values.append(turn["value"])
    size = record.get("size")
    if size is not None:
        ok = isinstance(size, (list, tuple)) and len(size) == 2
        ok = ok and all(isinstance(s, (int, float)) and not isinstance(s, bool) and s > 0 for s in size)
        if not ok:
            raise BenchmarkError(f"{where}: 'size' must be [height, width] with positive numbers, got {size!r}")
        size = (int(size[0]), int(size[1]))
    types = None
    if task_type == "lhrsbench":
        raw = record.get("type")
        if isinstance(raw, (str, int)):
            raw = [raw]
        if not isinstance(raw, list) or not raw or any(str(t).strip() not in LHRS_TYPE_NAMES for t in raw):
            raise BenchmarkError(f"{where}: 'type' must be a list of LHRS-Bench type ids '1'..'11', got {raw!r}")
        types = tuple(str(t) for t in raw)
    if task_type == "bbox":
        n = len(parse_numbers(values[1]))
        if n == 0 or n % 4:
            raise BenchmarkError(f"{where}: grounding answer {values[1]!r} is not a list of [x1, y1, x2, y2] boxes")
    rid = record.get("id")
    image_path = resolve_image_path(record, json_path)
    return Sample(
        index=index,
        image_path=image_path,
        question=values[0],
        answer=values[1],
        size=size,
        types=types,
        sample_id=None if rid is None else str(rid),
        path_error=image_path_problem(image_path, json_path.parent, allow_external),
    )


def _warn_about(json_path: Path, samples: list[Sample]) -> None:
    """One warning line per kind of suspicious record in a benchmark file."""
    refused = [s for s in samples if s.path_error]
    if refused:
        logger.warning(
            "%s: %d record(s) name an image outside the data root and are counted as errors (first: record %d: %s)",
            json_path,
            len(refused),
            refused[0].index,
            refused[0].path_error,
        )
    padded = [s for s in samples if s.types and any(t != t.strip() for t in s.types)]
    if padded:
        logger.warning(
            "%s: %d record(s) have LHRS-Bench type ids with surrounding spaces (first: record %d, %r): strict "
            "scoring reads them without the spaces; legacy, like the original, counts those records under no type",
            json_path,
            len(padded),
            padded[0].index,
            list(padded[0].types or ()),
        )


def load_benchmark(
    data_root: str | Path, bench: Benchmark, limit: int | None = None, allow_external: bool = False
) -> list[Sample]:
    """Read and validate a benchmark file (the first ``limit`` records if given)."""
    json_path = Path(data_root) / bench.file
    if not json_path.is_file():
        raise BenchmarkError(f"benchmark file not found for task {bench.key}: {json_path}")
    try:
        with open(json_path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:  # ValueError: invalid JSON or not UTF-8 text
        raise BenchmarkError(f"{json_path}: cannot read benchmark JSON: {exc}") from exc
    if not isinstance(data, list):
        raise BenchmarkError(f"{json_path}: expected a JSON list of records, got {type(data).__name__}")
    if limit is not None:
        data = data[:limit]
    samples = [parse_record(rec, i, json_path, bench.task_type, allow_external) for i, rec in enumerate(data)]
    _warn_about(json_path, samples)
    return samples


def preflight(
    data_root: str | Path,
    benches: list[Benchmark],
    limit: int | None = None,
    allow_external: bool = False,
    problems: list[str] | None = None,
) -> dict[str, list[Sample]]:
    """Load every selected benchmark and check its image folders exist, before any model is loaded.

    All problems are collected and raised together as one BenchmarkError; when a ``problems`` list is given they
    are appended to it instead and the benchmarks that passed are returned (the dry run reports everything).
    """
    data_root = Path(data_root)
    collect = problems
    problems = [] if collect is None else collect
    if not data_root.is_dir():
        hint = ""
        if not data_root.exists() and re.fullmatch(r"[\w-][\w.-]*/[\w.-]+", str(data_root)):
            hint = f" (a hub dataset? download it first: hf download {data_root} --repo-type dataset --local-dir DIR)"
        problems.append(f"--data_root is not a directory: {data_root}{hint}")
        if collect is None:
            raise BenchmarkError(problems[-1])
        return {}
    loaded: dict[str, list[Sample]] = {}
    n_before = len(problems)
    for bench in benches:
        try:
            samples = load_benchmark(data_root, bench, limit, allow_external)
        except BenchmarkError as exc:
            problems.append(str(exc))
            continue
        folders = {s.image_path.parent for s in samples if not s.path_error}  # refused paths are never touched
        missing = sorted(str(f) for f in folders if not f.is_dir())
        if missing:
            shown = ", ".join(missing[:3]) + (f" (+{len(missing) - 3} more)" if len(missing) > 3 else "")
            problems.append(f"image folder not found for task {bench.key}: {shown}")
            continue
        loaded[bench.key] = samples
    if collect is None and len(problems) > n_before:
        raise BenchmarkError("; ".join(problems))
    return loaded
