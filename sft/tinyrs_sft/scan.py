"""The start-up data check of a training run: once per run (not once per rank), and not again on a resume.

Every record is checked before step 1 (structure, placeholders, the image's header and end, see ``records.py``).
With several ranks the records are split into one contiguous shard per rank; each rank checks its shard and the
results are gathered (``torch.distributed.all_gather_object``), so every rank trains on the same list and each image
is read once per start, not once per rank.

The report is cached in the output folder (``data_check.json``), keyed by the data file's resolved path, size and
modification time and by the check settings. A restart or resume with an unchanged data file reads it instead of
scanning. An image that changes without its data file changing is not noticed by the cache; the data loader's own
check (``SupervisedDataset``) catches one that became unreadable.
"""

from __future__ import annotations

import json
import logging
import os
from array import array
from pathlib import Path
from typing import Any

from tinyrs_sft.check_data import ScanReport, scan_records
from tinyrs_sft.records import MediaPolicy, RecordSource


logger = logging.getLogger(__name__)

CACHE_NAME = "data_check.json"
CACHE_VERSION = 1
MAX_STORED_ERRORS = 100  # the cache keeps the first messages; training logs only those anyway


def cache_key(data_path: str | os.PathLike, policy: MediaPolicy, verify_images: bool) -> dict[str, Any]:
    """What the report depends on: the data file (path, size, mtime) and the check settings."""
    path = Path(data_path).resolve()
    stat = path.stat()
    return {
        "version": CACHE_VERSION,
        "data_path": str(path),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "image_folder": str(Path(policy.image_folder).resolve()),
        "allow_external_paths": policy.allow_external_paths,
        "max_image_pixels": policy.max_image_pixels,
        "verify_images": verify_images,
    }


def load_cached_report(output_dir: str | os.PathLike, key: dict[str, Any]) -> ScanReport | None:
    """The cached report for ``key``, or None (no cache, another key, or an unreadable file)."""
    path = Path(output_dir) / CACHE_NAME
    if not path.is_file():
        return None
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached.get("key") != key:
            logger.info("data check cache %s is for another data file or other settings: scanning again", path)
            return None
        total = int(cached["total"])
        keep = bytearray(b"\x01") * total
        for i in cached["bad"]:
            keep[int(i)] = 0
        errors = [str(e) for e in cached["errors"]]
    except (OSError, ValueError, KeyError, TypeError, IndexError) as err:
        logger.warning("data check cache %s is unreadable (%s): scanning again", path, err)
        return None
    good = array("q", (i for i, k in enumerate(keep) if k))
    return ScanReport(path=Path(key["data_path"]), total=total, good=good, errors=errors)


def save_report(output_dir: str | os.PathLike, key: dict[str, Any], report: ScanReport) -> Path:
    """Write the report atomically (a killed write leaves the previous file or none)."""
    keep = bytearray(report.total)
    for i in report.good:
        keep[i] = 1
    bad = [i for i, k in enumerate(keep) if not k]
    payload = {"key": key, "total": report.total, "bad": bad, "errors": report.errors[:MAX_STORED_ERRORS]}
    path = Path(output_dir) / CACHE_NAME
    tmp = path.with_name(f".{CACHE_NAME}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload), encoding="utf-8")
    os.replace(tmp, path)
    return path


def shard_bounds(total: int, rank: int, world_size: int) -> tuple[int, int]:
    """The contiguous index range ``[start, stop)`` that ``rank`` checks; the ranges cover ``range(total)`` once."""
    return total * rank // world_size, total * (rank + 1) // world_size


def _distributed() -> tuple[int, int]:
    """(rank, world size) of an initialised torch.distributed group, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _all_gather(obj: Any, world_size: int) -> list[Any]:
    import torch.distributed as dist

    gathered: list[Any] = [None] * world_size
    dist.all_gather_object(gathered, obj)
    return gathered


def scan_once(
    source: RecordSource, policy: MediaPolicy, verify_images: bool, output_dir: str | os.PathLike | None = None
) -> tuple[ScanReport, bool]:
    """The report of the whole file, each record checked by one rank only; ``(report, from_cache)``.

    All ranks of an initialised process group must call this together (it gathers).
    """
    rank, world_size = _distributed()
    key = cache_key(source.path, policy, verify_images)
    cached = load_cached_report(output_dir, key) if output_dir is not None else None
    if world_size > 1 and not all(_all_gather(cached is not None, world_size)):
        cached = None  # every rank must take the same path, or the gather below would hang
    if cached is not None:
        return cached, True
    start, stop = shard_bounds(len(source), rank, world_size)
    part = scan_records(source, policy, verify_images=verify_images, start=start, stop=stop)
    if world_size == 1:
        return part, False
    report = ScanReport(path=source.path, total=len(source))
    for good, errors in _all_gather((part.good, part.errors), world_size):  # in rank order = index order
        report.good.extend(good)
        report.errors.extend(errors)
    logger.info("data check: %d records per rank over %d ranks", stop - start, world_size)
    return report, False
