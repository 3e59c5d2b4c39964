"""Where a run resumes from, and whether its output folder can take the results, checked before any work.

The HF Trainer writes a ``checkpoint-N`` folder in place (weights, optimizer, scheduler, RNG states) and writes
``trainer_state.json`` last. A process killed during a save therefore leaves a folder without a readable
``trainer_state.json`` for step N (or without weights): such a folder is never resumed from. The newest complete
checkpoint is used instead, and the incomplete one is overwritten when training reaches that step again.
"""

# Keep in sync with sft/tinyrs_sft/checkpoints.py (copied on purpose: the packages never import each other).

from __future__ import annotations

import errno
import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any


logger = logging.getLogger(__name__)

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
WEIGHT_FILES = ("model.safetensors", "adapter_model.safetensors", "pytorch_model.bin", "adapter_model.bin")
WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
# Errors that mean "the output folder cannot take more data" (the CLI reports them in one line).
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}
NO_RESUME = ("false", "no", "none", "0")


class OutputDirError(OSError):
    """The output folder cannot be written, or a checkpoint to resume from is unusable."""


def checkpoint_problem(folder: str | os.PathLike) -> str | None:
    """Why ``folder`` (a ``checkpoint-N``) cannot be resumed from, or None when it is complete."""
    folder = Path(folder)
    match = CHECKPOINT_RE.match(folder.name)
    state_file = folder / "trainer_state.json"
    if not state_file.is_file():
        return "no trainer_state.json (the save was interrupted)"
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "trainer_state.json is cut short or unreadable"
    if not isinstance(state, dict) or (match and state.get("global_step") != int(match.group(1))):
        return "trainer_state.json does not belong to this step"
    if any((folder / name).is_file() for name in WEIGHT_FILES):
        return None
    for name in WEIGHT_INDEXES:
        index = folder / name
        if index.is_file():
            try:
                shards = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
            except (OSError, ValueError, KeyError, AttributeError):
                return f"{name} is cut short or unreadable"
            missing = sorted(s for s in shards if not (folder / s).is_file())
            return f"weight shard(s) missing: {missing[:3]}" if missing else None
    return "no model weights"


def last_complete_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest ``checkpoint-N`` in ``output_dir`` that is complete; incomplete newer ones are logged and skipped."""
    if not os.path.isdir(output_dir):
        return None
    found = []
    for name in os.listdir(output_dir):
        match = CHECKPOINT_RE.match(name)
        if match and os.path.isdir(os.path.join(output_dir, name)):
            found.append((int(match.group(1)), os.path.join(output_dir, name)))
    for _, path in sorted(found, reverse=True):
        problem = checkpoint_problem(path)
        if problem is None:
            return path
        logger.warning("%s is incomplete (%s): not resuming from it", path, problem)
    return None


def resolve_resume(resume: str | bool | None, output_dir: str) -> str | None:
    """The checkpoint to resume from: an explicit complete path, the newest complete one in ``output_dir``
    (default, also for ``last``/``true``), or None for ``false`` (start over)."""
    if isinstance(resume, bool):
        resume = "true" if resume else "false"
    if resume is not None and resume.strip().lower() in NO_RESUME:
        return None
    if resume is None or resume.strip().lower() in ("last", "true"):
        found = last_complete_checkpoint(output_dir)
        if found is None and resume is not None:
            raise OutputDirError(f"--resume_from_checkpoint {resume}: no complete checkpoint in {output_dir}")
        return found
    if not os.path.isdir(resume):
        raise OutputDirError(f"--resume_from_checkpoint {resume}: no such folder")
    problem = checkpoint_problem(resume)
    if problem is not None:
        raise OutputDirError(f"--resume_from_checkpoint {resume}: incomplete checkpoint ({problem})")
    return resume


def folder_size(path: str | os.PathLike) -> int:
    """Bytes of the weight files of a local model folder (0 for a hub id)."""
    path = Path(path)
    if not path.is_dir():
        return 0
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file() and p.suffix in (".safetensors", ".bin"))


def check_output_dir(output_dir: str, min_free_bytes: int = 0) -> None:
    """Create ``output_dir`` and prove it takes a file, and that its file system has ``min_free_bytes`` free.

    Raises:
        OutputDirError: naming the folder and the reason (read-only, permission, disk full, not a folder).
    """
    probe = os.path.join(output_dir, f".tinyrs-write-test-{os.getpid()}")
    try:
        os.makedirs(output_dir, exist_ok=True)
        with open(probe, "wb") as handle:
            handle.write(b"\0" * 4096)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise OutputDirError(f"cannot write to --output_dir {output_dir}: {exc.strerror or exc}") from exc
    finally:
        try:
            os.remove(probe)
        except OSError:
            pass
    free = shutil.disk_usage(output_dir).free
    if free < min_free_bytes:
        raise OutputDirError(
            f"--output_dir {output_dir}: only {free / 2**30:.2f} GiB free, saving the model needs at least "
            f"{min_free_bytes / 2**30:.2f} GiB"
        )


def write_error_message(exc: OSError) -> str | None:
    """One line for an OSError of the disk-full / read-only / permission kind (naming the file), else None."""
    if exc.errno not in WRITE_ERRNOS:
        return None
    where = exc.filename if exc.filename else "the output folder"
    return f"{where}: {exc.strerror or exc}"


def load_model_weights(trainer: Any, checkpoint: str, model: Any = None) -> bool:
    """Load a full-model checkpoint's weights into the live model the way ``from_pretrained`` reads them.

    transformers 5 saves Qwen2-VL weights under the original checkpoint key names (``visual.*``, ``model.layers.*``)
    while the live model names them ``model.visual.*``, ``model.language_model.*``; the Trainer's own resume loads
    the file with ``load_state_dict(strict=False)``, so on resume *no* weight was restored and training went on from
    the base weights with the restored optimizer state (a warning was the only sign). Reading the checkpoint through
    ``from_pretrained`` applies the key conversion; the result is loaded strictly.

    Returns False (nothing done) where the Trainer's own path is right: DeepSpeed and FSDP (their own checkpoint
    files), PEFT adapters, folders without full weights.
    """
    model = trainer.model if model is None else model
    if trainer.is_deepspeed_enabled or trainer.is_fsdp_enabled or hasattr(model, "peft_config"):
        return False
    if not any(os.path.isfile(os.path.join(checkpoint, n)) for n in ("model.safetensors", WEIGHT_INDEXES[0])):
        return False
    dtype = next(model.parameters()).dtype
    loaded = type(model).from_pretrained(checkpoint, dtype=dtype)
    model.load_state_dict(loaded.state_dict(), strict=True)
    logger.info("model weights restored from %s", checkpoint)
    return True


def keep_used_weight_conversions(model: Any) -> int:
    """Make ``save_pretrained`` write the tensor names a plain (non-ZeRO-3) load and save writes.

    ``from_pretrained`` records the key renamings it applied (``_weight_conversions``) and ``save_pretrained``
    reverses them, so that a Qwen2-VL saves as ``visual.*`` / ``model.layers.*`` / ``lm_head.weight`` however its
    modules are named. The ordinary loader records only the renamings that matched a checkpoint key; the ZeRO-3 loader
    (``transformers.integrations.deepspeed._load_state_dict_into_zero3_model``) records every candidate, among them
    the language model's prefix change and the legacy ``model.language_model.model`` rename. Reversed at save, those
    turned ``model.language_model.layers.*`` into ``model.model.layers.*`` (in the final model and in every
    checkpoint). Dropping the unused ones here, before each save, restores the ordinary loader's list.

    Returns how many renamings were dropped (0 when the model was not loaded under ZeRO-3).
    """
    dropped = 0
    for module in model.modules():
        conversions = getattr(module, "_weight_conversions", None)
        if not conversions:
            continue
        used = [c for c in conversions if not callable(getattr(c, "was_used", None)) or c.was_used()]
        if len(used) < len(conversions):
            dropped += len(conversions) - len(used)
            module._weight_conversions = used
    if dropped:
        logger.info("save: %d unused weight renaming(s) of the ZeRO-3 load dropped (standard tensor names)", dropped)
    return dropped
