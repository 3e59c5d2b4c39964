"""GRPO dataset: loading, row validation and normalisation (docs/data-format.md, "GRPO dataset").

Columns after ``prepare_split``: ``image`` (datasets.Image), ``problem`` (str), ``prompt`` (conversational, one image
placeholder, the reasoning system prompt when the source had no prompt), ``solution`` = [answer_type, answer,
question, image_base64] as strings; other columns pass through to the reward functions.

Every problem is found before training starts: a bad row (missing or undecodable image, malformed solution, unknown
answer type, empty problem, unusable ground truth) stops with its split, index and reason, or is skipped and
counted with ``skip_bad_rows``.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinyrs_grpo.rewards import BOX, EXACT, OPEN_ENDED, answer_type_code
from tinyrs_grpo.text import REASONING_SYSTEM_PROMPT, normalize_answer, parse_box


logger = logging.getLogger(__name__)

MAX_ERRORS_SHOWN = 10
MAX_ASPECT_RATIO = 200  # the Qwen2-VL image processor refuses images with a larger long/short side ratio
SOLUTION_KEYS = ("answer_type", "answer", "question", "image_base64")
REFUSED_COLUMNS = {"messages", "chosen", "rejected", "label", "completion"}  # docs/data-format.md 3.1


class BadRowError(ValueError):
    """A dataset row that cannot be trained on."""


class DatasetError(ValueError):
    """A dataset that cannot be trained on (bad rows listed in the message)."""


@dataclass
class SplitReport:
    """What ``prepare_split`` kept and dropped."""

    split: str
    rows_in: int = 0
    rows_out: int = 0
    bad_rows: list[tuple[int, str]] = field(default_factory=list)
    dropped_open_ended: int = 0
    dropped_too_long: int = 0
    answer_types: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        types = ", ".join(f"type {k}: {v}" for k, v in sorted(self.answer_types.items())) or "none"
        return (
            f"split {self.split!r}: {self.rows_in} rows in, {self.rows_out} kept ({types}); dropped: "
            f"{len(self.bad_rows)} bad, {self.dropped_open_ended} open-ended (no judge), "
            f"{self.dropped_too_long} over max_prompt_length"
        )


# ---------------------------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------------------------
def load_grpo_dataset(name: str | None, config: str | None = None, allow_external_image_paths: bool = False) -> Any:
    """Load ``--dataset_name`` as a DatasetDict.

    Accepts a folder written by ``save_to_disk`` (a Dataset becomes the ``train`` split), a ``.json`` / ``.jsonl``
    file (a list or one record per line; ``image`` paths are relative to the file and must stay inside its folder
    unless ``allow_external_image_paths``; ``answer_type`` codes may be integers), or a hub dataset id.
    """
    import datasets

    if not name:
        raise DatasetError("--dataset_name is required (a save_to_disk folder, a .json/.jsonl file or a hub id)")
    path = Path(name)
    if path.is_dir():
        try:
            loaded = datasets.load_from_disk(str(path))
        except (FileNotFoundError, ValueError, OSError) as exc:
            raise DatasetError(f"{path}: not a dataset folder written by save_to_disk ({exc})") from exc
        if isinstance(loaded, datasets.Dataset):
            loaded = datasets.DatasetDict({"train": loaded})
        return loaded
    if path.is_file():
        if path.suffix.lower() not in (".json", ".jsonl"):
            raise DatasetError(f"{path}: unsupported dataset file type (expected .json or .jsonl)")
        return datasets.DatasetDict({"train": _dataset_from_json(path, allow_external_image_paths)})
    if path.suffix.lower() in (".json", ".jsonl") or name.startswith((".", "/")):
        raise DatasetError(f"{name}: no such file or folder")
    return datasets.load_dataset(name, name=config)


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


def inside_folder(name: str, folder: Path) -> Path | None:
    """``folder / name`` when that stays inside ``folder`` (no absolute path, no ``..`` escape), else None."""
    root = os.path.normpath(os.path.abspath(folder))
    candidate = os.path.normpath(os.path.join(root, name))
    if os.path.isabs(name) or os.path.commonpath([root, candidate]) != root:
        return None
    return Path(candidate)


def _dataset_from_json(path: Path, allow_external_image_paths: bool = False) -> Any:
    """Records -> Dataset with an Image column; values are stringified where arrow needs one type per column."""
    import datasets

    records = read_json_records(path)
    if not records:
        raise DatasetError(f"{path}: no records")
    rows = []
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise DatasetError(f"{path}: record {i}: expected an object, got {type(record).__name__}")
        row = dict(record)
        image = row.get("image")
        if isinstance(image, str) and image:
            image_path = inside_folder(image, path.parent)
            if image_path is None:
                if not allow_external_image_paths:
                    raise DatasetError(
                        f"{path}: record {i}: image path {image[:200]!r} points outside {path.parent} "
                        "(pass --allow_external_image_paths true to allow absolute or '..' paths)"
                    )
                image_path = Path(image) if os.path.isabs(image) else path.parent / image
            row["image"] = {"path": str(image_path), "bytes": None}
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
                row["prompt"] = _normalize_prompt(row["prompt"])
            except BadRowError as exc:
                raise DatasetError(f"{path}: record {i}: {exc}") from exc
        rows.append(row)
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


def select_split(dataset_dict: Any, split: str) -> Any:
    if split not in dataset_dict:
        raise DatasetError(f"split {split!r} not found; available splits: {sorted(dataset_dict)}")
    return dataset_dict[split]


# ---------------------------------------------------------------------------------------------------------------
# Row checks and normalisation
# ---------------------------------------------------------------------------------------------------------------
def _normalize_prompt(prompt: Any) -> list[dict]:
    """Conversational prompt with list-of-parts contents ({"type", "text"}), as arrow stores it."""
    if not isinstance(prompt, list) or not prompt:
        raise BadRowError("'prompt' must be a non-empty list of {role, content} messages")
    messages = []
    for message in prompt:
        if not isinstance(message, dict) or "role" not in message:
            raise BadRowError("'prompt' messages must be objects with 'role' and 'content'")
        content = message.get("content")
        if isinstance(content, str):
            parts = [{"type": "text", "text": content}]
        elif isinstance(content, list):
            parts = []
            for part in content:
                if not isinstance(part, dict) or part.get("type") not in ("text", "image"):
                    raise BadRowError(f"'prompt' content parts must be text or image parts, got {part!r:.80}")
                parts.append({"type": part["type"], "text": part.get("text") if part["type"] == "text" else None})
        else:
            raise BadRowError(f"'prompt' message content must be a string or a list of parts, got {content!r:.80}")
        messages.append({"role": str(message["role"]), "content": parts})
    return messages


def build_prompt(problem: str, system_prompt: str = REASONING_SYSTEM_PROMPT) -> list[dict]:
    """The conversational prompt of a row: reasoning system prompt, then the image, then the problem text."""
    return [
        {"role": "system", "content": [{"type": "text", "text": system_prompt}]},
        {"role": "user", "content": [{"type": "image", "text": None}, {"type": "text", "text": problem}]},
    ]


def _prompt_problem(prompt: list[dict]) -> str:
    texts = [p["text"] or "" for m in prompt if m["role"] == "user" for p in m["content"] if p["type"] == "text"]
    return "\n".join(t for t in texts if t).strip()


def normalize_row(row: dict, has_prompt: bool) -> dict:
    """Check one row and return its normalised ``problem``, ``prompt`` and ``solution``.

    Raises:
        BadRowError: naming the problem.
    """
    prompt = _normalize_prompt(row["prompt"]) if has_prompt and row.get("prompt") is not None else None
    problem = row.get("problem")
    if problem is None and prompt is not None:
        problem = _prompt_problem(prompt)
    if problem is not None and not isinstance(problem, str):
        raise BadRowError(f"'problem' must be a string, got {type(problem).__name__}")
    if not isinstance(problem, str) or not problem.strip():
        raise BadRowError("empty problem")
    if prompt is None:
        prompt = build_prompt(problem)
    n_images = sum(p["type"] == "image" for m in prompt for p in m["content"])
    if n_images == 0:
        for message in prompt:
            if message["role"] == "user":
                message["content"].insert(0, {"type": "image", "text": None})
                break
        else:
            raise BadRowError("'prompt' has no user message")
    elif n_images > 1:
        raise BadRowError(f"'prompt' has {n_images} image placeholders for one image")

    solution = row.get("solution")
    if isinstance(solution, dict):
        solution = [solution.get(k) for k in SOLUTION_KEYS]
    if not isinstance(solution, (list, tuple)) or not 2 <= len(solution) <= 4:
        raise BadRowError(f"malformed solution {solution!r:.80}: expected [{', '.join(SOLUTION_KEYS)}]")
    fields = list(solution) + [None] * (4 - len(solution))
    try:
        code = answer_type_code(fields[0])
    except ValueError as exc:
        raise BadRowError(str(exc)) from exc
    answer = "" if fields[1] is None else str(fields[1])
    question = str(fields[2]) if fields[2] else problem
    image_b64 = "" if fields[3] is None else str(fields[3])
    if code == EXACT and not normalize_answer(answer):
        raise BadRowError("answer_type 1 with an empty answer")
    if code == BOX:
        box = parse_box(answer)
        if box is None or box[2] <= box[0] or box[3] <= box[1]:
            raise BadRowError(f"answer_type 2 without a valid [x1, y1, x2, y2] box: {answer!r:.80}")
    return {"problem": problem, "prompt": prompt, "solution": [code, answer, question, image_b64]}


def image_size(value: Any) -> tuple[int, int]:
    """(width, height) of an undecoded ``datasets.Image`` value, after fully decoding it.

    Raises:
        BadRowError: for a missing or undecodable image.
    """
    from PIL import Image

    if value is None:
        raise BadRowError("missing image")
    if isinstance(value, Image.Image):
        return value.size
    if not isinstance(value, dict):
        raise BadRowError(f"unsupported image value of type {type(value).__name__}")
    try:
        source = io.BytesIO(value["bytes"]) if value.get("bytes") else value.get("path")
        if not source:
            raise BadRowError("missing image")
        with Image.open(source) as image:
            size = image.size
            if max(size) > MAX_ASPECT_RATIO * min(size):
                raise BadRowError(
                    f"image aspect ratio {size[0]}x{size[1]} is above {MAX_ASPECT_RATIO} (Qwen2-VL refuses)"
                )
            image.draft("RGB", (64, 64))  # JPEG: decode at reduced scale, still reads every byte
            image.load()
        return size
    except BadRowError:
        raise
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for broken files
        where = str(value.get("path") or "embedded bytes")
        where = where if len(where) <= 200 else where[:200] + f"... ({len(where)} characters)"
        reason = str(exc).splitlines()[0][:300] if str(exc) else ""
        raise BadRowError(f"undecodable image ({where}): {type(exc).__name__}: {reason}") from exc


def prompt_token_count(processor: Any, prompt: list[dict], width: int, height: int) -> int:
    """Prompt length in tokens after the processor expands the image placeholder for this image size."""
    text = processor.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    n_text = len(processor.tokenizer(text, add_special_tokens=False)["input_ids"])
    image_processor = processor.image_processor
    patches = image_processor.get_number_of_image_patches(height, width, {})
    return n_text - 1 + patches // (image_processor.merge_size**2)


def prepare_split(
    dataset: Any,
    split: str = "train",
    *,
    judge_enabled: bool,
    skip_bad_rows: bool = False,
    processor: Any = None,
    max_prompt_length: int | None = None,
    num_proc: int | None = None,
) -> tuple[Any, SplitReport]:
    """Validate and normalise one split for GRPOTrainer.

    Args:
        judge_enabled: keep open-ended (type "0") rows; without a judge they are dropped and counted.
        skip_bad_rows: drop bad rows (counted, first ones logged) instead of raising.
        processor: needed for ``max_prompt_length``: rows whose prompt (text + image tokens at the configured pixel
            bounds) is longer are dropped and counted. Prompts are never truncated.

    Raises:
        DatasetError: missing columns, or bad rows without ``skip_bad_rows`` (the first ones listed).
    """
    import datasets

    columns = set(dataset.column_names)
    missing = [c for c in ("image", "solution") if c not in columns]
    if "problem" not in columns and "prompt" not in columns:
        missing.append("problem (or prompt)")
    if missing:
        raise DatasetError(f"split {split!r}: missing column(s) {missing}; found {sorted(columns)}")
    refused = sorted(columns & REFUSED_COLUMNS)
    if refused:
        raise DatasetError(
            f"split {split!r}: column(s) {refused} are refused (TRL treats them as conversation data); rename them"
        )
    has_prompt = "prompt" in columns
    report = SplitReport(split=split, rows_in=len(dataset))

    # Pass 1: check every row (images undecoded, so this reads files once and keeps memory flat).
    raw = dataset.cast_column("image", datasets.Image(decode=False))
    keep: list[int] = []
    sizes: dict[int, tuple[int, int]] = {}
    for index, row in enumerate(raw):
        try:
            sizes[index] = image_size(row["image"])
            normalized = normalize_row(row, has_prompt)
        except BadRowError as exc:
            report.bad_rows.append((index, str(exc)))
            continue
        code = normalized["solution"][0]
        if code == OPEN_ENDED and not judge_enabled:
            report.dropped_open_ended += 1
            continue
        if max_prompt_length is not None and processor is not None:
            width, height = sizes[index]
            if prompt_token_count(processor, normalized["prompt"], width, height) > max_prompt_length:
                report.dropped_too_long += 1
                continue
        report.answer_types[code] += 1
        keep.append(index)

    if report.bad_rows:
        shown = "; ".join(f"row {i}: {reason}" for i, reason in report.bad_rows[:MAX_ERRORS_SHOWN])
        more = len(report.bad_rows) - MAX_ERRORS_SHOWN
        message = f"split {split!r}: {len(report.bad_rows)} bad row(s): {shown}"
        if more > 0:
            message += f"; ... {more} more"
        if not skip_bad_rows:
            raise DatasetError(message + " (fix them, or pass --skip_bad_rows to skip them)")
        logger.warning("skipping %s", message)
    if report.dropped_open_ended:
        logger.warning(
            "split %r: dropped %d open-ended (answer_type 0) rows because no judge is configured",
            split,
            report.dropped_open_ended,
        )
    if report.dropped_too_long:
        logger.warning(
            "split %r: dropped %d rows whose prompt exceeds max_prompt_length=%s tokens (prompts are never truncated)",
            split,
            report.dropped_too_long,
            max_prompt_length,
        )
    if not keep:
        first = f"; first bad row {report.bad_rows[0][0]}: {report.bad_rows[0][1]}" if report.bad_rows else ""
        raise DatasetError(f"split {split!r}: no usable rows left ({report.summary()}){first}")

    # Pass 2: write the normalised columns for the kept rows (the image column is copied, not re-encoded).
    selected = dataset.select(keep) if len(keep) != len(dataset) else dataset
    text_columns = [c for c in ("problem", "prompt", "solution") if c in columns]

    def _normalize(*values: Any) -> dict:
        return normalize_row(dict(zip(text_columns, values)), has_prompt)

    prepared = selected.map(
        _normalize,
        input_columns=text_columns,
        num_proc=num_proc,
        desc=f"normalising {split}",
        features=grpo_features(selected.features),
    )
    report.rows_out = len(prepared)
    logger.info(report.summary())
    return prepared, report


def grpo_features(source: Any) -> Any:
    import datasets

    features = datasets.Features(dict(source))
    features["problem"] = datasets.Value("string")
    features["prompt"] = datasets.List(
        {
            "role": datasets.Value("string"),
            "content": datasets.List({"type": datasets.Value("string"), "text": datasets.Value("string")}),
        }
    )
    features["solution"] = datasets.List(datasets.Value("string"))
    return features


def _b64_bytes(image_b64: str, path: Path, index: int) -> bytes:
    try:
        return base64.b64decode(image_b64, validate=True)
    except ValueError as exc:
        raise DatasetError(f"{path}: record {index}: solution[3] is not valid base64 ({exc})") from exc
