"""The pre-training row check, once per run: on the main process only, cached next to the output.

Checking every row reads every image's header and tail (``tinyrs_grpo.data.check_split``). Under a multi-GPU
launcher each rank would do it again; here the main process checks (or reads a cached result) and broadcasts the
report, so the other ranks only wait. The result is cached in ``OUTPUT_DIR/data_check/<split>.json``, keyed by the
dataset files' sizes and modification times and by every setting that changes the result; a rerun or a resume of
the same run over the same files starts at once. Hub datasets (no local files to key on) are checked every time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tinyrs_grpo.data import DatasetError, SplitReport


logger = logging.getLogger(__name__)

CACHE_FOLDER = "data_check"
CACHE_VERSION = 1


def dataset_files(name: str | None) -> list[Path] | None:
    """The local files a dataset is read from (a JSON/JSONL file, or every file of a save_to_disk folder); None
    for a hub id."""
    if not name:
        return None
    path = Path(name)
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and "cache-" not in p.name)
    return None


def cache_key(files: list[Path], settings: dict[str, Any]) -> str:
    """Hash of the files' paths, sizes and mtimes and of the check's settings."""
    entries = []
    for path in files:
        stat = path.stat()
        entries.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    payload = {"version": CACHE_VERSION, "files": entries, "settings": settings}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def cached_scan(
    scan: Callable[[], SplitReport],
    dataset_name: str | None,
    split: str,
    settings: dict[str, Any],
    output_dir: str,
    verdict: Callable[[SplitReport], None] = lambda report: None,
) -> SplitReport:
    """``scan()``'s report from the cache when the dataset files and settings are unchanged, else ``scan()``.

    ``verdict(report)`` runs on either (it raises for bad rows that are not skipped); only a report it accepts is
    cached, so a refused run writes nothing."""
    files = dataset_files(dataset_name)
    if files is None:
        report = scan()
        verdict(report)
        return report
    key = cache_key(files, settings)
    cache = Path(output_dir) / CACHE_FOLDER / f"{split}.json"
    report = None
    try:
        stored = json.loads(cache.read_text(encoding="utf-8"))
        if stored.get("key") == key:
            report = SplitReport.from_dict(stored["report"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):  # no cache, or an unreadable one: rescan
        report = None
    if report is not None:
        logger.info("data check of split %r read from %s (dataset files unchanged)", split, cache)
        verdict(report)
        return report
    report = scan()
    verdict(report)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text(json.dumps({"key": key, "settings": settings, "report": report.to_dict()}), encoding="utf-8")
        os.replace(tmp, cache)
    except OSError as exc:  # a cache that cannot be written costs a rescan next time, nothing else
        logger.warning("could not cache the data check in %s: %s", cache, exc)
    return report


def check_once(check: Callable[[], SplitReport]) -> SplitReport:
    """Run ``check`` on the main process and hand its report (or its DatasetError) to every process."""
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    state = PartialState()
    if state.num_processes == 1:
        return check()
    result: list[Any] = [None]
    if state.is_main_process:
        try:
            result = [("ok", check().to_dict())]
        except DatasetError as exc:
            result = [("error", str(exc))]
    broadcast_object_list(result, from_process=0)
    status, value = result[0]
    if status == "error":
        raise DatasetError(value)
    report = SplitReport.from_dict(value)
    if not state.is_main_process:
        logger.debug("data check of split %r received from the main process", report.split)
    return report
