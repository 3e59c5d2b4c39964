"""GRPO datasets given as JSON or JSONL files: records -> a ``datasets.Dataset`` with an Image column.

``image`` paths are relative to the file; a path outside the file's folder is refused unless
``allow_external_image_paths`` (the record keeps the reason in ``REFUSAL_COLUMN`` and becomes a counted bad row when
the rows are checked). A record without an image path may carry the image as base64 in ``solution[3]``.
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

from tinyrs_grpo.images import resolve_image_path
from tinyrs_grpo.rows import REFUSAL_COLUMN, SOLUTION_KEYS, BadRowError, DatasetError, normalize_prompt


logger = logging.getLogger(__name__)


def read_json_records(path: Path) -> list[dict]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from exc
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if path.suffix.lower() == ".jsonl":
        records = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DatasetError(f"{path}: line {lineno}: invalid JSON ({exc.msg})") from exc
        return records
    try:
        records = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(records, list):
        raise DatasetError(f"{path}: expected a JSON list of records, got {type(records).__name__}")
    return records


def dataset_from_json(path: Path, allow_external_image_paths: bool = False) -> Any:
    """Records -> Dataset with an Image column; values are stringified where arrow needs one type per column."""
    import datasets

    records = read_json_records(path)
    if not records:
        raise DatasetError(f"{path}: no records")
    rows, refusals = [], {}
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise DatasetError(f"{path}: record {i}: expected an object, got {type(record).__name__}")
        row = dict(record)
        image = row.get("image")
        if isinstance(image, str) and image:
            image_path, refusal = resolve_image_path(image, path.parent, allow_external_image_paths)
            row["image"] = {"path": str(image_path), "bytes": None}
            if refusal:
                row["image"], refusals[i] = None, refusal
        elif image is None:
            # No image path: fall back to the base64 copy the judge uses, when the record carries one.
            solution = row.get("solution")
            b64 = solution[3] if isinstance(solution, list) and len(solution) > 3 and solution[3] else None
            row["image"] = {"path": None, "bytes": _b64_bytes(b64, path, i)} if b64 else None
        else:
            raise DatasetError(f"{path}: record {i}: 'image' must be a path string, got {type(image).__name__}")
        solution = row.get("solution")
        if isinstance(solution, list):
            row["solution"] = ["" if v is None else str(v) for v in solution]
        elif isinstance(solution, dict):
            row["solution"] = [str(solution.get(k) or "") for k in SOLUTION_KEYS]
        if "prompt" in row:
            try:
                row["prompt"] = normalize_prompt(row["prompt"])
            except BadRowError as exc:
                raise DatasetError(f"{path}: record {i}: {exc}") from exc
        rows.append(row)
    if refusals:
        logger.warning(
            "%s: %d record(s) with an image path outside %s (reported as bad rows; first: record %d)",
            path,
            len(refusals),
            path.parent,
            min(refusals),
        )
        for i, row in enumerate(rows):
            row[REFUSAL_COLUMN] = refusals.get(i)
    try:
        dataset = datasets.Dataset.from_list(rows)
    except (TypeError, ValueError) as exc:  # pyarrow: one column holds values of different types
        raise DatasetError(f"{path}: {first_type_mismatch(records) or 'columns mix value types'} ({exc})") from exc
    if "image" in dataset.column_names:
        dataset = dataset.cast_column("image", datasets.Image())
    return dataset


def first_type_mismatch(records: list[dict]) -> str | None:
    """'record N: column C is a T, earlier records have U' for the first column whose type changes."""
    seen: dict[str, str] = {}
    for i, record in enumerate(records):
        for key, value in record.items():
            if value is None:
                continue
            kind = type(value).__name__
            if seen.setdefault(key, kind) != kind:
                return f"record {i}: {key!r} is a {kind}, earlier records have a {seen[key]}"
    return None


def _b64_bytes(image_b64: str, path: Path, index: int) -> bytes:
    try:
        return base64.b64decode(image_b64, validate=True)
    except ValueError as exc:
        raise DatasetError(f"{path}: record {index}: solution[3] is not valid base64 ({exc})") from exc
