"""GRPO dataset: loading, row validation and normalisation (docs/data-format.md, "GRPO dataset").

Columns after ``prepare_split``: ``image`` (datasets.Image), ``problem`` (str), ``prompt`` (conversational, one image
placeholder, the reasoning system prompt when the source had no prompt), ``solution`` = [answer_type, answer,
question, image_base64] as strings; other columns pass through to the reward functions.

Every problem is found before training starts: a bad row (missing, cut-short or unreadable image, an image path
outside the data root, malformed solution, unknown answer type, empty problem, unusable ground truth) stops with its
split, index and reason, or is skipped and counted with ``skip_bad_rows``. ``check_split`` finds them (the part a
multi-GPU run does once, see tinyrs_grpo.scan), ``normalize_split`` writes the kept rows.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tinyrs_grpo.images import check_image, inside_folder
from tinyrs_grpo.jsondata import dataset_from_json, read_json_records
from tinyrs_grpo.rows import REFUSAL_COLUMN, BadRowError, DatasetError, build_prompt, normalize_row
from tinyrs_grpo.text import OPEN_ENDED


__all__ = [
    "BadRowError",
    "DatasetError",
    "SplitReport",
    "build_prompt",
    "check_split",
    "grpo_features",
    "inside_folder",
    "load_grpo_dataset",
    "normalize_row",
    "normalize_split",
    "prepare_split",
    "prompt_token_count",
    "read_json_records",
    "scan_rows",
    "select_split",
]

logger = logging.getLogger(__name__)

MAX_ERRORS_SHOWN = 10
REFUSED_COLUMNS = {"messages", "chosen", "rejected", "label", "completion"}  # docs/data-format.md 3.1


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
    kept: list[int] = field(default_factory=list)  # source row indices that train

    def to_dict(self) -> dict:
        data = asdict(self)
        data["answer_types"] = dict(self.answer_types)
        data["bad_rows"] = [list(item) for item in self.bad_rows]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> SplitReport:
        data = dict(data)
        data["answer_types"] = Counter(data.get("answer_types", {}))
        data["bad_rows"] = [(int(i), str(r)) for i, r in data.get("bad_rows", [])]
        return cls(**data)

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
        return datasets.DatasetDict({"train": dataset_from_json(path, allow_external_image_paths)})
    if path.suffix.lower() in (".json", ".jsonl") or name.startswith((".", "/")):
        raise DatasetError(f"{name}: no such file or folder")
    return datasets.load_dataset(name, name=config)


def select_split(dataset_dict: Any, split: str) -> Any:
    if split not in dataset_dict:
        raise DatasetError(f"split {split!r} not found; available splits: {sorted(dataset_dict)}")
    return dataset_dict[split]


# ---------------------------------------------------------------------------------------------------------------
# Row checks and normalisation
# ---------------------------------------------------------------------------------------------------------------
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
    verify_images: bool = False,
    num_proc: int | None = None,
) -> tuple[Any, SplitReport]:
    """Validate and normalise one split for GRPOTrainer: ``check_split`` then ``normalize_split``.

    Args:
        judge_enabled: keep open-ended (type "0") rows; without a judge they are dropped and counted.
        skip_bad_rows: drop bad rows (counted, first ones logged) instead of raising.
        processor: needed for ``max_prompt_length``: rows whose prompt (text + image tokens at the processor's pixel
            bounds) is longer are dropped and counted. Prompts are never truncated.
        verify_images: fully decode every image (default: header read plus a check for files cut short).

    Raises:
        DatasetError: missing columns, or bad rows without ``skip_bad_rows`` (the first ones listed).
    """
    report = check_split(
        dataset,
        split,
        judge_enabled=judge_enabled,
        skip_bad_rows=skip_bad_rows,
        processor=processor,
        max_prompt_length=max_prompt_length,
        verify_images=verify_images,
    )
    return normalize_split(dataset, report, num_proc=num_proc), report


def check_columns(dataset: Any, split: str) -> None:
    """Raises DatasetError for missing or refused columns."""
    columns = set(dataset.column_names)
    missing = [c for c in ("image", "solution") if c not in columns]
    if "problem" not in columns and "prompt" not in columns:
        missing.append("problem (or prompt)")
    if missing:
        found = sorted(columns - {REFUSAL_COLUMN})
        raise DatasetError(f"split {split!r}: missing column(s) {missing}; found {found}")
    refused = sorted(columns & REFUSED_COLUMNS)
    if refused:
        raise DatasetError(
            f"split {split!r}: column(s) {refused} are refused (TRL treats them as conversation data); rename them"
        )


def check_split(
    dataset: Any,
    split: str = "train",
    *,
    judge_enabled: bool,
    skip_bad_rows: bool = False,
    processor: Any = None,
    max_prompt_length: int | None = None,
    verify_images: bool = False,
) -> SplitReport:
    """Check every row (images undecoded unless ``verify_images``): which rows train, which are bad and why.

    Raises:
        DatasetError: missing columns, bad rows without ``skip_bad_rows``, or no usable row left.
    """
    report = scan_rows(
        dataset,
        split,
        judge_enabled=judge_enabled,
        processor=processor,
        max_prompt_length=max_prompt_length,
        verify_images=verify_images,
    )
    log_report(report, skip_bad_rows, max_prompt_length)
    return report


def scan_rows(
    dataset: Any,
    split: str = "train",
    *,
    judge_enabled: bool,
    processor: Any = None,
    max_prompt_length: int | None = None,
    verify_images: bool = False,
) -> SplitReport:
    """The row-by-row part of ``check_split``: the report, without raising for bad rows.

    Raises:
        DatasetError: missing or refused columns.
    """
    import datasets

    check_columns(dataset, split)
    has_prompt = "prompt" in dataset.column_names
    report = SplitReport(split=split, rows_in=len(dataset))
    raw = dataset.cast_column("image", datasets.Image(decode=False))  # reads files once, memory stays flat
    for index, row in enumerate(raw):
        try:
            if row.get(REFUSAL_COLUMN):
                raise BadRowError(row[REFUSAL_COLUMN])
            width, height = check_image(row["image"], verify=verify_images)
            normalized = normalize_row(row, has_prompt)
        except BadRowError as exc:
            report.bad_rows.append((index, str(exc)))
            continue
        code = normalized["solution"][0]
        if code == OPEN_ENDED and not judge_enabled:
            report.dropped_open_ended += 1
            continue
        if max_prompt_length is not None and processor is not None:
            if prompt_token_count(processor, normalized["prompt"], width, height) > max_prompt_length:
                report.dropped_too_long += 1
                continue
        report.answer_types[code] += 1
        report.kept.append(index)
    report.rows_out = len(report.kept)
    return report


def log_report(report: SplitReport, skip_bad_rows: bool, max_prompt_length: int | None) -> None:
    """Log what was dropped; raise for bad rows (unless skipped) or when nothing is left.

    Raises:
        DatasetError: bad rows without ``skip_bad_rows`` (the first ones listed), or no usable row left.
    """
    split = report.split
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
    if not report.kept:
        first = f"; first bad row {report.bad_rows[0][0]}: {report.bad_rows[0][1]}" if report.bad_rows else ""
        raise DatasetError(f"split {split!r}: no usable rows left ({report.summary()}){first}")


def normalize_split(dataset: Any, report: SplitReport, num_proc: int | None = None) -> Any:
    """Write the normalised ``problem``, ``prompt`` and ``solution`` of the rows ``report`` keeps (the image column
    is copied, not re-encoded)."""
    if REFUSAL_COLUMN in dataset.column_names:
        dataset = dataset.remove_columns(REFUSAL_COLUMN)
    selected = dataset.select(report.kept) if len(report.kept) != len(dataset) else dataset
    columns = set(selected.column_names)
    has_prompt = "prompt" in columns
    text_columns = [c for c in ("problem", "prompt", "solution") if c in columns]

    def _normalize(*values: Any) -> dict:
        return normalize_row(dict(zip(text_columns, values)), has_prompt)

    prepared = selected.map(
        _normalize,
        input_columns=text_columns,
        num_proc=num_proc,
        desc=f"normalising {report.split}",
        features=grpo_features(selected.features),
    )
    logger.info(report.summary())
    return prepared


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
