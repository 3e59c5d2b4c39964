"""Where ``--model_name_or_path`` points: a local checkpoint folder or a Hugging Face hub id. Its fingerprint (part of
the run name, so predictions of other weights are never re-scored) and the checks a dry run makes.

Fingerprint:
- local folder: for every top-level file that can change the predictions (weights, ``*.json`` configs, tokenizer and
  template files) its name, size, modification time and a SHA-256 of its first MiB. Retraining into the same folder
  rewrites the weights, so the run name changes and nothing stale is reused. Reading 1 MiB per file keeps it cheap.
- hub id in the local Hugging Face cache: the commit of the cached snapshot (the snapshot folder is named by it, and a
  commit fixes every file of the repository).
- hub id not cached: the commit the hub reports for ``main`` when online (the one a download then fetches, so a
  rerun after the download keeps the same run name); offline, the literal ``<id>@main``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path
from typing import Any


logger = logging.getLogger(__name__)

HEAD_BYTES = 1 << 20
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
# Files that change what the model generates besides the weights: configs, tokenizer, processor, chat template.
CONFIG_SUFFIXES = (".json", ".jinja", ".model", ".tiktoken")
CONFIG_NAMES = ("merges.txt", "vocab.txt")
_HUB_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
_HUB_ID_RE = re.compile(rf"{_HUB_PART}/{_HUB_PART}")
_TRUE = {"1", "true", "yes", "on"}


def is_hub_id(text: str) -> bool:
    """``owner/name`` with the hub's characters (letters, digits, ``-``, ``_``, ``.``; no ``--`` or ``..``)."""
    return bool(_HUB_ID_RE.fullmatch(text)) and "--" not in text and ".." not in text


def local_folder(model_path: str) -> Path | None:
    if not model_path.strip():
        return None  # Path("") is the current folder: an empty --model_name_or_path is no folder
    path = Path(model_path).expanduser()
    return path if path.is_dir() else None


def hub_offline() -> bool:
    return any(
        os.environ.get(name, "").strip().lower() in _TRUE for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _hub_cache_dir() -> str | None:
    """HF_HUB_CACHE, else HF_HOME/hub, else None (the library default); read now, not at import time."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    return None


def cached_snapshot(repo_id: str) -> Path | None:
    """The snapshot folder of ``repo_id`` (revision main) in the local Hugging Face cache, if its config.json is
    there."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "config.json", cache_dir=_hub_cache_dir())
    except ValueError:  # an id the hub library rejects
        return None
    return Path(found).parent if isinstance(found, str) else None


def _remote_commit(repo_id: str) -> str | None:
    """The commit of ``main`` on the hub; None offline or on any failure (no network, unknown repo)."""
    if hub_offline():
        return None
    try:
        from huggingface_hub import HfApi

        return HfApi().model_info(repo_id).sha
    except Exception as exc:  # noqa: BLE001  (any hub failure only weakens the cache key; logged)
        logger.warning(
            "could not ask the hub for the commit of %s (%s); the run name uses %s@main", repo_id, exc, repo_id
        )
        return None


def _relevant(path: Path) -> bool:
    return path.is_file() and (path.suffix in WEIGHT_SUFFIXES + CONFIG_SUFFIXES or path.name in CONFIG_NAMES)


def folder_fingerprint(folder: Path) -> list[list[Any]]:
    """``[name, size, mtime_ns, sha256 of the first MiB]`` for every relevant top-level file, sorted by name."""
    out: list[list[Any]] = []
    for path in sorted(p for p in folder.iterdir() if _relevant(p)):
        stat = path.stat()
        with open(path, "rb") as f:
            head = hashlib.sha256(f.read(HEAD_BYTES)).hexdigest()[:16]
        out.append([path.name, stat.st_size, stat.st_mtime_ns, head])
    return out


def model_fingerprint(model_path: str) -> dict[str, Any]:
    """What identifies the weights behind ``model_path`` (see the module docstring)."""
    folder = local_folder(model_path)
    if folder is not None:
        return {"path": str(folder.resolve()), "files": folder_fingerprint(folder)}
    if is_hub_id(model_path):
        snapshot = cached_snapshot(model_path)
        commit = snapshot.name if snapshot is not None else _remote_commit(model_path)
        return {"hub": model_path, "revision": commit or "main"}
    return {"path": model_path}


def check_model(model_path: str) -> tuple[list[str], list[str]]:
    """Problems (each one line) and notes about ``model_path``; loads nothing."""
    problems: list[str] = []
    notes: list[str] = []
    folder = local_folder(model_path)
    if folder is not None:
        names = {p.name for p in folder.iterdir() if p.is_file()}
        weights = sorted(n for n in names if n.endswith(WEIGHT_SUFFIXES))
        if "config.json" not in names:
            problems.append(f"--model_name_or_path {folder}: no config.json in the folder (not a checkpoint folder?)")
        if not weights:
            problems.append(f"--model_name_or_path {folder}: no weight files (*.safetensors, *.bin) in the folder")
        if not problems:
            notes.append(f"model: local folder {folder.resolve()} ({len(weights)} weight file(s))")
        return problems, notes
    if model_path.strip() and Path(model_path).expanduser().exists():
        return [f"--model_name_or_path {model_path} is a file, not a checkpoint folder"], notes
    if not is_hub_id(model_path):
        problems.append(
            f"--model_name_or_path {model_path!r} is neither an existing folder nor a hub id of the form owner/name"
        )
        return problems, notes
    snapshot = cached_snapshot(model_path)
    if snapshot is not None:
        notes.append(f"model: hub id {model_path}, cached snapshot {snapshot}")
    elif hub_offline():
        problems.append(
            f"--model_name_or_path {model_path}: no such local folder, and the hub model is not in the local Hugging "
            f"Face cache while HF_HUB_OFFLINE=1: download it first (hf download {model_path}), or pass the folder "
            f"it was downloaded to (hf download {model_path} --local-dir DIR)"
        )
    else:
        notes.append(f"model: hub id {model_path}, not in the local cache: the run downloads it")
    return problems, notes
