"""A corrupt image met during training never ends a long run with a traceback.

The pre-training check reads image headers and file ends, not every pixel (``--verify_images`` does), and files
can change under a running job. ``GuardedDataset`` decodes each image itself when the trainer asks for a row:

* ``on_corrupt_image="skip"`` (default): the row is replaced by the next row whose image decodes. The replacement is
  a function of the row index only, so every copy of the row (its ``num_generations`` completions, on any rank)
  gets the same replacement and the group stays whole. Each corrupt row is logged once per process with its file
  and source row, and appended to ``OUTPUT_DIR/corrupt_images.jsonl``; the total is logged at the end of training.
* ``on_corrupt_image="stop"``: ``CorruptImageError`` ends the run at once; ``tinyrs-grpo train`` prints it as one
  line (exit 1).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import datasets

from tinyrs_grpo.data import DatasetError
from tinyrs_grpo.images import decode_image, describe, error_text


logger = logging.getLogger(__name__)

CORRUPT_LOG = "corrupt_images.jsonl"


class CorruptImageError(DatasetError):
    """An image that failed to decode during training, with ``--on_corrupt_image stop``."""


class GuardedDataset(datasets.Dataset):
    """A ``datasets.Dataset`` whose ``image`` column is decoded on access, with corrupt images skipped or fatal.

    Build it with ``guard_images``; it stays a ``datasets.Dataset`` (TRL requires one) and indexes like one.
    """

    split: str = "train"
    on_corrupt: str = "skip"
    source_rows: list[int] | None = None
    log_path: str | None = None

    @property
    def corrupt(self) -> dict[int, str]:
        """Corrupt rows met by this process: dataset index -> message."""
        if "_corrupt" not in self.__dict__:
            self.__dict__["_corrupt"] = {}
        return self.__dict__["_corrupt"]

    # -- row access ------------------------------------------------------------------------------------------------
    def __getitem__(self, key: Any) -> Any:  # noqa: D105
        if isinstance(key, int):
            return self._row(key)
        if isinstance(key, (list, tuple)) and all(isinstance(k, int) for k in key):
            rows = [self._row(k) for k in key]
            return {column: [row[column] for row in rows] for column in self.column_names}
        return super().__getitem__(key)

    def __getitems__(self, keys: list) -> list:
        return [self._row(k) for k in keys]

    def _raw(self, index: int) -> dict:
        return super().__getitem__(index)

    def _row(self, index: int) -> dict:
        index = index + len(self) if index < 0 else index
        for offset in range(len(self)):
            candidate = (index + offset) % len(self)
            row = self._raw(candidate)
            try:
                row["image"] = decode_image(row["image"])
            except Exception as exc:  # noqa: BLE001 - PIL raises many types for broken files
                self._met(candidate, row["image"], exc)
                continue
            return row
        raise CorruptImageError(f"split {self.split!r}: no image of the {len(self)} rows decodes")

    def _met(self, index: int, value: Any, exc: BaseException) -> None:
        source = self.source_rows[index] if self.source_rows is not None else index
        message = f"split {self.split!r} row {source}: corrupt image ({describe(value)}): {error_text(exc)}"
        if self.on_corrupt == "stop":
            raise CorruptImageError(message + " (--on_corrupt_image skip would skip it)") from exc
        if index in self.corrupt:
            return
        self.corrupt[index] = message
        logger.warning("%s; skipped, the next good row takes its place (%d so far)", message, len(self.corrupt))
        if self.log_path:
            try:
                with open(self.log_path, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps({"split": self.split, "row": source, "message": message}) + "\n")
            except OSError as err:
                logger.warning("cannot record the corrupt image in %s: %s", self.log_path, err)


def guard_images(
    dataset: Any, split: str, on_corrupt: str, source_rows: list[int] | None = None, output_dir: str | None = None
) -> GuardedDataset:
    """Wrap a prepared split so its images are decoded on access with ``on_corrupt`` ("skip" or "stop")."""
    if on_corrupt not in ("skip", "stop"):
        raise ValueError(f"on_corrupt must be 'skip' or 'stop', got {on_corrupt!r}")
    raw = dataset.cast_column("image", datasets.Image(decode=False))
    if raw._indices is not None:  # a select()ed view: materialise it so the plain constructor sees every row
        raw = raw.flatten_indices()
    guarded = GuardedDataset(raw.data, info=raw.info, split=raw.split, fingerprint=raw._fingerprint)
    guarded.split = split
    guarded.on_corrupt = on_corrupt
    guarded.source_rows = list(source_rows) if source_rows is not None else None
    guarded.log_path = os.path.join(output_dir, CORRUPT_LOG) if output_dir else None
    return guarded


def corrupt_total(output_dir: str) -> list[dict]:
    """The distinct corrupt rows recorded in ``OUTPUT_DIR/corrupt_images.jsonl`` by every process of the run."""
    path = os.path.join(output_dir, CORRUPT_LOG)
    seen: dict[tuple, dict] = {}
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                seen.setdefault((record.get("split"), record.get("row")), record)
    except OSError:
        return []
    return list(seen.values())
