"""``tinyrs-grpo train --dry_run true``: check arguments and paths, print the effective settings, load nothing.

Runs on a login node without a GPU (``--use_cpu`` is implied there, so ``--bf16 true`` parses). It checks what can
go wrong before a job waits in a queue: flag names and values, reward names and weights, the model (a local folder
with a config, or a well-formed hub id), the data (the file or folder exists and loads; the first images pass the
same checks as before training, path policy included), the DeepSpeed config, and prints every setting that decides
the run. Usage errors exit 2, missing or broken paths exit 1, each as one line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from tinyrs_grpo.cliargs import UsageError, setup_logging, str2bool
from tinyrs_grpo.rewards import JUDGE_REWARD, get_reward_funcs


logger = logging.getLogger("tinyrs_grpo")

SAMPLE_ROWS = 8
_HUB_ID_RE = re.compile(r"^(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}$")


class PathError(ValueError):
    """A path that does not exist or cannot be used (exit 1)."""


def one_line(text: str) -> str:
    """A message as one line: the last meaningful line of a multi-line text (an exception re-raised by a DataLoader
    worker carries the worker's traceback before it), without a leading exception class name."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    if len(lines) <= 1:
        return lines[0] if lines else str(text)
    return re.sub(r"^[\w.]+(Error|Exception): ", "", lines[-1])


def wants_dry_run(args: list[str]) -> bool:
    """True when the command line asks for ``--dry_run`` (``--dry_run``, ``--dry_run true``, ``--dry_run=1``, any
    boolean word that the parser accepts)."""
    for i, arg in enumerate(args):
        if arg == "--dry_run":
            value = args[i + 1] if i + 1 < len(args) and not args[i + 1].startswith("--") else "true"
        elif arg.startswith("--dry_run="):
            value = arg.split("=", 1)[1]
        else:
            continue
        try:
            return str2bool(value)
        except argparse.ArgumentTypeError:  # the parser reports the bad value itself
            return False
    return False


def check_usage(script_args: Any, training_args: Any, model_args: Any) -> None:
    """Required arguments, reward names and weights: the checks that need neither a model nor data.

    Raises:
        UsageError: naming the argument.
    """
    if model_args.model_name_or_path is None:
        raise UsageError("--model_name_or_path is required")
    if script_args.dataset_name is None:
        raise UsageError("--dataset_name is required")
    names = list(script_args.reward_funcs)
    if JUDGE_REWARD in names and script_args.resolved_judge() != "openai":
        raise UsageError("reward 'judge' needs a judge: set OPENAI_API_KEY (or --judge_base_url) and --judge openai")
    try:  # unknown names and unimportable dotted paths fail here, listing the valid names
        get_reward_funcs([n for n in names if n != JUDGE_REWARD] or ["format"], reward_files=script_args.reward_module)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    weights = training_args.reward_weights
    if weights is not None and len(weights) != len(names):
        raise UsageError(f"--reward_weights has {len(weights)} values for {len(names)} reward functions {names}")


def check_model(name: str) -> str:
    """'local folder' or 'hub id' after checking that a local folder is a model folder or the id is well formed.

    Raises:
        PathError: a path that looks local but does not exist, or a folder without config.json.
        UsageError: neither a folder nor a well-formed hub id.
    """
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise PathError(f"--model_name_or_path {name}: not a model folder (no config.json)")
        return "local folder"
    if path.exists():
        raise PathError(f"--model_name_or_path {name}: not a folder")
    if name.startswith((".", "/", "~")) or name.count("/") > 1 or os.sep != "/" and os.sep in name:
        raise PathError(f"--model_name_or_path {name}: no such folder")
    if not _HUB_ID_RE.match(name) or ".." in name or "--" in name:
        raise UsageError(f"--model_name_or_path {name!r}: neither a local folder nor a valid hub id (owner/name)")
    return "hub id (not fetched in a dry run)"


def checkpoint_pixel_bounds(name: str) -> tuple[Any, Any]:
    """(min_pixels, max_pixels) saved with a local checkpoint (processor_config.json as transformers 5 writes it,
    or preprocessor_config.json), or (None, None).

    Top-level ``min_pixels``/``max_pixels`` (transformers 4.x files: the released TinyRS checkpoints, whose original
    GRPO set them without touching ``size``) override ``size``, as the image processor itself does when loading.
    """
    places = (("processor_config.json", ("image_processor",)), ("preprocessor_config.json", ()))
    for file, keys in places:
        try:
            data = json.loads((Path(name) / file).read_text(encoding="utf-8"))
            for key in keys:
                data = data.get(key) or {}
        except (OSError, ValueError, AttributeError):
            continue
        if not isinstance(data, dict):
            continue
        size = data.get("size") if isinstance(data.get("size"), dict) else {}
        low = data.get("min_pixels", size.get("shortest_edge", size.get("min_pixels")))
        high = data.get("max_pixels", size.get("longest_edge", size.get("max_pixels")))
        if low is not None or high is not None:
            return low, high
    return None, None


def check_data(script_args: Any) -> str:
    """Load the dataset (local files only) and check the first rows' images like the pre-training check does.

    Raises:
        PathError: missing file or folder, unreadable dataset, or a bad image among the first rows.
    """
    from tinyrs_grpo.data import REFUSAL_COLUMN, DatasetError, load_grpo_dataset
    from tinyrs_grpo.images import check_image
    from tinyrs_grpo.rows import BadRowError

    name = script_args.dataset_name
    path = Path(name)
    if not path.exists():
        if path.suffix.lower() in (".json", ".jsonl") or name.startswith((".", "/", "~")) or name.count("/") > 1:
            raise PathError(f"--dataset_name {name}: no such file or folder")
        if not _HUB_ID_RE.match(name):
            raise UsageError(f"--dataset_name {name!r}: neither a local file or folder nor a valid hub id")
        return "hub id (not fetched in a dry run)"
    try:
        dataset_dict = load_grpo_dataset(name, script_args.dataset_config, script_args.allow_external_image_paths)
    except DatasetError as exc:
        raise PathError(str(exc) if str(exc).startswith(name) else f"{name}: {exc}") from None
    split = script_args.dataset_train_split
    if split not in dataset_dict:
        raise PathError(f"{name}: split {split!r} not found; available splits: {sorted(dataset_dict)}")
    import datasets

    dataset = dataset_dict[split]
    sample = dataset.select(range(min(SAMPLE_ROWS, len(dataset))))
    if "image" in sample.column_names:
        sample = sample.cast_column("image", datasets.Image(decode=False))
    for index, row in enumerate(sample):
        try:
            if row.get(REFUSAL_COLUMN):
                raise BadRowError(row[REFUSAL_COLUMN])
            check_image(row.get("image"), verify=script_args.verify_images)
        except BadRowError as exc:
            raise PathError(f"{name}: split {split!r} row {index}: {exc}") from None
    splits = ", ".join(f"{k}: {len(v)} rows" for k, v in dataset_dict.items())
    return f"local ({splits}; images of the first {len(sample)} rows checked)"


def check_deepspeed(config: Any) -> str:
    """'none', or the ZeRO stage of a readable DeepSpeed JSON config.

    Raises:
        PathError: a missing or unreadable file.
    """
    if not config:
        return "none"
    if isinstance(config, dict):
        return f"ZeRO stage {config.get('zero_optimization', {}).get('stage', 0)} (inline)"
    try:
        data = json.loads(Path(config).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PathError(f"--deepspeed {config}: cannot read the DeepSpeed config ({exc})") from None
    return f"{config} (ZeRO stage {data.get('zero_optimization', {}).get('stage', 0)})"


def format_settings(
    script_args: Any, training_args: Any, model_args: Any, min_pixels: Any = None, max_pixels: Any = None
) -> str:
    """Every setting that decides the run, as ``key=value`` pairs on one line."""
    judge = script_args.resolved_judge()
    pairs = [
        ("model", model_args.model_name_or_path),
        ("dtype", model_args.dtype),
        ("dataset", script_args.dataset_name),
        ("rewards", script_args.reward_funcs),
        ("weights", training_args.reward_weights),
        ("judge", judge if judge == "none" else f"{script_args.judge_model} ({script_args.judge_prompt} prompt)"),
        ("loss_type", training_args.loss_type),
        ("beta", training_args.beta),
        ("use_bias_correction_kl", training_args.use_bias_correction_kl),
        ("num_generations", training_args.num_generations),
        ("scale_rewards", training_args.scale_rewards),
        ("epsilon", training_args.epsilon),
        ("num_iterations", training_args.num_iterations),
        ("temperature", training_args.temperature),
        ("top_k", training_args.top_k),
        ("top_p", training_args.top_p),
        ("max_prompt_length", script_args.max_prompt_length),
        ("max_completion_length", training_args.max_completion_length),
        ("per_device_train_batch_size", training_args.per_device_train_batch_size),
        ("gradient_accumulation_steps", training_args.gradient_accumulation_steps),
        ("learning_rate", training_args.learning_rate),
        ("lr_scheduler_type", getattr(training_args.lr_scheduler_type, "value", training_args.lr_scheduler_type)),
        ("num_train_epochs", training_args.num_train_epochs),
        ("max_steps", training_args.max_steps),
        ("min_pixels", min_pixels),
        ("max_pixels", max_pixels),
        ("skip_bad_rows", script_args.skip_bad_rows),
        ("verify_images", script_args.verify_images),
        ("on_corrupt_image", script_args.on_corrupt_image),
        ("bf16", training_args.bf16),
        ("gradient_checkpointing", training_args.gradient_checkpointing),
        ("deepspeed", training_args.deepspeed),
        ("output_dir", training_args.output_dir),
    ]
    return " ".join(f"{key}={value}" for key, value in pairs)


def dry_run(script_args: Any, training_args: Any, model_args: Any, implied_cpu: bool = False) -> None:
    """Check arguments and paths and log the effective settings; no model, no full data pass, no GPU needed.

    Raises:
        UsageError: bad arguments (exit 2).
        PathError: missing or broken model, data or DeepSpeed paths (exit 1).
    """
    setup_logging()
    logger.setLevel(logging.INFO)
    check_usage(script_args, training_args, model_args)
    model = check_model(model_args.model_name_or_path)
    saved = checkpoint_pixel_bounds(model_args.model_name_or_path) if model == "local folder" else (None, None)
    bounds = []
    for given, kept in zip((script_args.min_pixels, script_args.max_pixels), saved):
        bounds.append(given if given is not None else (f"{kept} (checkpoint)" if kept else "checkpoint's"))
    if all(isinstance(b, int) for b in (script_args.min_pixels, saved[1])) and script_args.min_pixels > saved[1]:
        raise UsageError(f"--min_pixels {script_args.min_pixels} is above the checkpoint's max_pixels {saved[1]}")
    data = check_data(script_args)
    deepspeed = check_deepspeed(training_args.deepspeed)
    logger.info("dry run: model %s: %s", model_args.model_name_or_path, model)
    logger.info("dry run: dataset %s: %s", script_args.dataset_name, data)
    logger.info("dry run: deepspeed: %s", deepspeed)
    if implied_cpu:
        logger.info("dry run: no GPU on this machine; parsed with --use_cpu true so that GPU-only flags are accepted")
    logger.info("dry run: %s", format_settings(script_args, training_args, model_args, *bounds))
    logger.info("dry run: arguments are valid")
