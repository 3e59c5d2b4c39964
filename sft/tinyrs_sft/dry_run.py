"""``tinyrs-sft train --dry_run True``: check what the launch needs and print what it would do, loading no model.

Checked: the data file (read and indexed whole, so a syntax error anywhere is found), a sample of records spread
over the file with their images (structure, header, end of file), the model (a local folder with a supported
``config.json``, or a syntactically valid hub id, and whether it is in the local cache), the DeepSpeed config (read
and validated while parsing the arguments) and the output folder (writable, or creatable). Printed: the learning
rate and weight decay of each parameter group, epochs and steps, the global batch, precision, ZeRO stage and
offload, loss normalisation and image bounds. Nothing here needs a GPU: ``--bf16``/``--tf32`` are taken as given
(``TrainingArguments`` does not probe the device in a dry run).
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any

from tinyrs_sft.check_data import default_image_folder
from tinyrs_sft.constants import SUPPORTED_MODEL_TYPES
from tinyrs_sft.records import DataError, MediaPolicy, RecordSource, check_record, record_label, short


logger = logging.getLogger("tinyrs_sft")

SAMPLE_RECORDS = 64


def model_problem(model_id: str, cache_dir: str | None = None) -> tuple[str | None, str]:
    """``(problem or None, description)`` of ``--model_name_or_path`` without loading anything."""
    path = Path(model_id).expanduser()
    if path.is_dir():
        config = path / "config.json"
        if not config.is_file():
            return f"--model_name_or_path {model_id}: the folder has no config.json", ""
        try:
            model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
        except (OSError, ValueError, AttributeError) as err:
            return f"--model_name_or_path {model_id}: config.json is unreadable ({err})", ""
        if model_type not in SUPPORTED_MODEL_TYPES:
            supported = list(SUPPORTED_MODEL_TYPES)
            return f"--model_name_or_path {model_id}: model_type {model_type!r} is not supported ({supported})", ""
        return None, f"local folder, model_type {model_type}"
    if path.exists() or model_id.startswith(("/", "./", "../", "~")) or model_id.count("/") > 1:
        return f"--model_name_or_path {model_id}: model folder not found", ""
    from huggingface_hub import try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(model_id)
    except HFValidationError as err:
        return f"--model_name_or_path {model_id!r}: neither a model folder nor a valid hub id ({err})", ""
    cached = try_to_load_from_cache(model_id, "config.json", cache_dir=cache_dir)
    if isinstance(cached, str):
        return None, "hub id, in the local hub cache"
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return (
            f"--model_name_or_path {model_id}: not a local folder and not in the local hub cache while "
            f"HF_HUB_OFFLINE=1: download it first (hf download {model_id}), or pass the folder it was downloaded to "
            f"(hf download {model_id} --local-dir DIR)",
            "",
        )
    return None, "hub id, not in the local hub cache (downloaded at start)"


def sample_indices(total: int, n: int = SAMPLE_RECORDS) -> list[int]:
    """Up to ``n`` indices spread evenly over ``range(total)``, first and last included."""
    if total <= n:
        return list(range(total))
    return sorted({round(k * (total - 1) / (n - 1)) for k in range(n)})


def data_problems(data_args: Any) -> tuple[list[str], int | None]:
    """Problems of the data file, the image folder and a sample of the records; ``(problems, number of records or
    None when the file is unreadable)``."""
    problems = []
    folder = default_image_folder(data_args.dataset_name, data_args.image_folder)
    if not folder.is_dir():
        problems.append(f"--image_folder {short(folder)}: folder not found")
    try:
        source = RecordSource(data_args.dataset_name)
    except DataError as err:
        return [str(err), *problems], None
    if not len(source):
        return [f"{source.path}: no records", *problems], 0
    if problems:
        return problems, len(source)
    policy = MediaPolicy(folder, data_args.allow_external_image_paths, data_args.max_image_pixels)
    indices = sample_indices(len(source))
    for index in indices:
        try:
            record = source[index]
        except DataError as err:
            problems.append(str(err))
            continue
        found = check_record(record, policy, verify_images=data_args.verify_images)
        if found:
            problems.append(f"{record_label(source.path, index, record)}: {'; '.join(found)}")
    logger.info(
        "dry run: %d records in %s, %d sampled and checked with their media", len(source), source.path, len(indices)
    )
    return problems, len(source)


def output_problem(output_dir: str) -> str | None:
    """The output folder must be writable, or creatable under a writable parent."""
    path = Path(output_dir).resolve()
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        return f"--output_dir {output_dir}: {probe} is not a folder"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"--output_dir {output_dir}: {probe} is not writable"
    return None


def settings_lines(model_args: Any, data_args: Any, args: Any, n_records: int | None, world_size: int) -> list[str]:
    """The effective settings, one line each."""
    lr = args.learning_rate
    parts = {
        "llm": (lr, not model_args.freeze_llm or model_args.use_peft),
        "vision": (args.vision_lr if args.vision_lr is not None else lr, not model_args.freeze_vision_tower),
        "merger": (args.merger_lr if args.merger_lr is not None else lr, model_args.tune_merger),
    }
    lines = []
    for part, (part_lr, trained) in parts.items():
        state = "trained" if trained else "frozen"
        if part == "llm" and model_args.use_peft:
            state = f"LoRA r={model_args.lora_r} alpha={model_args.lora_alpha}"
        lines.append(
            f"param group {part}: {state}, lr {part_lr:g}, weight decay {args.weight_decay:g} "
            "(0 for biases and norm weights)"
        )
    global_batch = args.per_device_train_batch_size * args.gradient_accumulation_steps * world_size
    lines.append(
        f"global batch {global_batch} = {args.per_device_train_batch_size} per device x "
        f"{args.gradient_accumulation_steps} accumulation x {world_size} processes"
    )
    if n_records is None:
        per_epoch = "unknown (data file unreadable)"
    else:
        steps = math.ceil(n_records / global_batch)
        per_epoch = f"{steps} steps per epoch of {n_records} records (before bad ones are dropped)"
    if args.max_steps > 0:
        lines.append(f"max_steps {args.max_steps} (epochs not used); {per_epoch}")
    else:
        total = "" if n_records is None else f", about {math.ceil(steps * args.num_train_epochs)} steps in all"
        lines.append(f"epochs {args.num_train_epochs:g}: {per_epoch}{total}")
    schedule = getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)
    warmup = args.warmup_steps
    warmup_text = f"{warmup:.0%} of the steps" if 0 < warmup < 1 else f"{int(warmup)} steps"
    lines.append(f"schedule {schedule}, warmup {warmup_text}, loss normalisation {args.loss_normalization}")
    precision = "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"
    lines.append(
        f"precision {precision}, tf32 {args.tf32}, gradient checkpointing {args.gradient_checkpointing} "
        "(not checked against this machine in a dry run)"
    )
    ds = args.deepspeed if isinstance(args.deepspeed, dict) else None
    if ds:
        zero = ds.get("zero_optimization", {})
        offload = [
            f"{what} to {zero[key].get('device')}"
            for what, key in (("optimizer", "offload_optimizer"), ("parameters", "offload_param"))
            if zero.get(key, {}).get("device", "none") not in (None, "none")
        ]
        lines.append(f"DeepSpeed ZeRO stage {zero.get('stage', 0)}, offload: {', '.join(offload) or 'none'}")
    else:
        lines.append("DeepSpeed: not used")
    low, high = data_args.image_min_pixels or "processor's", data_args.image_max_pixels or "processor's"
    lines.append(f"image pixels {low}..{high}, max_seq_length {data_args.max_seq_length}")
    return lines


def dry_run(model_args: Any, data_args: Any, training_args: Any) -> list[str]:
    """Log the settings and return every problem found (empty when the launch looks ready)."""
    world_size = training_args.dry_run_world_size or int(os.environ.get("WORLD_SIZE", "1"))
    problems, n_records = data_problems(data_args)
    problem, model_desc = model_problem(model_args.model_name_or_path, model_args.cache_dir)
    if problem:
        problems.append(problem)
    else:
        logger.info("dry run: model %s: %s", model_args.model_name_or_path, model_desc)
    problem = output_problem(training_args.output_dir)
    if problem:
        problems.append(problem)
    for line in settings_lines(model_args, data_args, training_args, n_records, world_size):
        logger.info("dry run: %s", line)
    return problems
