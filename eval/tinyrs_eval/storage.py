"""Per-sample JSONL files: append-and-flush per batch, resume, per-rank shards merged by rank 0.

Layout inside ``<output_dir>/<run_name>/``: ``<json stem>.jsonl`` holds the merged records of a benchmark (sorted by
``index``); ``<json stem>.part-<rank>-of-<world>.jsonl`` are the files ranks append to while running. A rerun reads
both kinds (any world size), so nothing finished is lost and nothing is written twice.
"""

from __future__ import annotations

import errno
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tinyrs_eval.errors import ConfigError


logger = logging.getLogger(__name__)


def merged_path(run_dir: Path, stem: str) -> Path:
    return run_dir / f"{stem}.jsonl"


def part_path(run_dir: Path, stem: str, rank: int, world_size: int) -> Path:
    return run_dir / f"{stem}.part-{rank}-of-{world_size}.jsonl"


def part_files(run_dir: Path, stem: str) -> list[Path]:
    return sorted(run_dir.glob(f"{stem}.part-*-of-*.jsonl"))


def read_jsonl(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Complete records of a JSONL file and the byte length of its complete part.

    A last line without its newline, or that does not parse, is a write cut short (killed process): it is left out
    and will be redone. A bad line elsewhere means the file was damaged otherwise: that is an error.
    """
    if not path.exists():
        return [], 0
    data = path.read_bytes()
    records: list[dict[str, Any]] = []
    good = 0
    lines = data.split(b"\n")
    for lineno, line in enumerate(lines, 1):
        is_last = lineno == len(lines)
        if is_last:  # the text after the final newline: empty for a complete file, else a truncated record
            if line.strip():
                logger.warning("%s: ignoring an incomplete last line (%d bytes); it will be redone", path, len(line))
            break
        if not line.strip():
            good += len(line) + 1
            continue
        try:
            rec = json.loads(line)
            if not isinstance(rec, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            if lineno == len(lines) - 1 and not lines[-1]:
                # last newline-terminated line is corrupt: treat as truncated as well
                logger.warning("%s:%d: ignoring an unreadable last line (%s); it will be redone", path, lineno, exc)
                break
            raise ConfigError(f"{path}:{lineno}: corrupt record ({exc}); delete it or use --force_inference") from exc
        records.append(rec)
        good += len(line) + 1
    return records, good


def read_all(run_dir: Path, stem: str) -> dict[int, dict[str, Any]]:
    """All finished records of a benchmark (merged file and every part file), by sample index; first one wins."""
    out: dict[int, dict[str, Any]] = {}
    for path in [merged_path(run_dir, stem), *part_files(run_dir, stem)]:
        records, _ = read_jsonl(path)
        for rec in records:
            idx = rec.get("index")
            if not isinstance(idx, int):
                raise ConfigError(f"{path}: record without an integer 'index'; delete it or use --force_inference")
            out.setdefault(idx, rec)
    return out


class JsonlAppender:
    """Appends records to a JSONL file and flushes after every batch. Cuts off a truncated tail first."""

    def __init__(self, path: Path):
        self.path = path
        _, good = read_jsonl(path)
        if path.exists() and path.stat().st_size != good:
            with open(path, "r+b") as f:
                f.truncate(good)
        self._fh = open(path, "a", encoding="utf-8")

    def write(self, records: Iterable[dict[str, Any]]) -> None:
        try:
            for rec in records:
                self._fh.write(json.dumps(rec) + "\n")
            self._fh.flush()  # survives a killed process; no fsync per batch (power loss is not the concern here)
        except OSError as exc:  # disk full / file too large: name the file (a rerun repairs a cut last line)
            raise OSError(exc.errno, exc.strerror, str(self.path)) from exc

    def close(self) -> None:
        try:
            self._fh.close()
        except OSError as exc:  # the unflushed tail of a failed write, already reported by write()
            logger.warning("%s: closing after a failed write: %s", self.path, exc)

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def merge(run_dir: Path, stem: str) -> dict[int, dict[str, Any]]:
    """Fold the part files into the merged file (sorted by index, atomically replaced), then delete the parts."""
    records = read_all(run_dir, stem)
    target = merged_path(run_dir, stem)
    tmp = target.with_suffix(".jsonl.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for idx in sorted(records):
            f.write(json.dumps(records[idx]) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
    for part in part_files(run_dir, stem):
        part.unlink()
    return records


def remove_predictions(run_dir: Path, stem: str) -> None:
    for path in [merged_path(run_dir, stem), *part_files(run_dir, stem)]:
        if path.exists():
            path.unlink()


SETTINGS_FILE = "settings.json"


def check_settings(run_dir: Path, settings: dict[str, Any], force_inference: bool) -> None:
    """Refuse to reuse predictions made with other settings or other weights under the same run name.

    A derived run name hashes the settings, so this only fires for an explicit ``--run_name`` (or a folder written
    by hand): e.g. a model retrained into the same folder. Folders written before settings.json existed are not
    checked.

    Raises:
        ConfigError: naming the run folder, what differs and the two ways out.
    """
    path = run_dir / SETTINGS_FILE
    if force_inference or not path.is_file():
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable ({exc}); delete it or use --force_inference true") from exc
    new = json.loads(json.dumps(settings))  # tuples -> lists, as stored
    if old == new:
        return
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k)) if isinstance(old, dict) else ["all"]
    what = ", ".join("model weights" if k == "model" else k for k in keys)
    raise ConfigError(
        f"{run_dir}: its predictions were made with a different {what} (retrained into the same folder?); "
        "rerun with --force_inference true to discard them, or choose another --run_name"
    )


# Errors that mean "the output folder cannot take more data"; reported in one line by run.cli().
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}


def check_writable(folder: Path) -> None:
    """Create ``folder`` and write (then remove) a probe file in it.

    Raises:
        ConfigError: naming the folder (read-only file system, permission denied, disk full, not a folder).
    """
    probe = folder / f".tinyrs-write-test-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as f:
            f.write(b"\0" * 64)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise ConfigError(f"cannot write to --output_dir {folder.parent}: {exc.strerror or exc}") from exc
    finally:
        try:
            probe.unlink()
        except OSError:
            pass
