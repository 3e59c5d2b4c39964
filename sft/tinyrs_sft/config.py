"""Command-line and recipe arguments: three dataclasses parsed by ``HfArgumentParser``.

``--config recipe.yaml`` gives defaults (keys are the field names; an unknown key is an error), flags on the command
line override them. The model, data and LoRA flags carry TRL's names (``--model_name_or_path``, ``--dataset_name``,
``--use_peft``, ``--lora_r``, ``--lora_alpha``, ``--output_dir``), as ``tinyrs-grpo`` does. Every flag of the
original TinyRS SFT command is accepted with the same meaning: the renamed ones as aliases (``ALIASES``, logged
once), in recipes too; flags that are accepted but do nothing say so in a warning.
"""

from __future__ import annotations

import argparse
import ast
import logging
import os
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import transformers
import yaml
from transformers import HfArgumentParser

from tinyrs_sft import __version__
from tinyrs_sft.cliargs import UsageError, canonical_keys, rewrite_aliases, unknown_flags_message
from tinyrs_sft.constants import DEFAULT_MAX_IMAGE_PIXELS
from tinyrs_sft.optim import check_deepspeed_config


logger = logging.getLogger("tinyrs_sft")

# The original TinyRS flag names -> TRL's names (the canonical ones here and in tinyrs-grpo).
ALIASES = {
    "--model_id": "--model_name_or_path",
    "--data_path": "--dataset_name",
    "--lora_enable": "--use_peft",
    "--lora_rank": "--lora_r",
}
TRAINING_STAGES = ("auto", "pretraining", "sft", "cot_sft")


class NoEffectWarning(UserWarning):
    """A flag was accepted for compatibility with the original scripts but changes nothing."""


@dataclass
class ModelArguments:
    model_name_or_path: str = field(
        default="Qwen/Qwen2-VL-2B-Instruct",
        metadata={
            "help": "Hub id or local folder of a Qwen2-VL / Qwen2.5-VL checkpoint (class read from its config).",
            "aliases": ["--model_id"],
        },
    )
    cache_dir: str | None = field(default=None, metadata={"help": "Cache folder for hub downloads."})
    disable_flash_attn2: bool = field(
        default=False, metadata={"help": "Use sdpa instead of flash-attention 2 (sdpa is also the fallback)."}
    )
    freeze_vision_tower: bool = field(default=False, metadata={"help": "Freeze the vision tower (ViT)."})
    freeze_llm: bool = field(default=False, metadata={"help": "Freeze the language model and lm_head."})
    tune_merger: bool | None = field(
        default=None,
        metadata={
            "help": "Train the vision-language merger. Default: follow the vision tower (trained unless "
            "--freeze_vision_tower); the original's default was False.",
            "nargs": "?",
            "const": True,
        },
    )
    use_peft: bool = field(
        default=False,
        metadata={"help": "Train LoRA adapters on the LLM (needs freeze_llm).", "aliases": ["--lora_enable"]},
    )
    vision_lora: bool = field(
        default=False, metadata={"help": "Also put LoRA on the vision tower (needs use_peft, freeze_vision_tower)."}
    )
    use_dora: bool = field(default=False, metadata={"help": "Use DoRA instead of plain LoRA."})
    lora_r: int = field(default=64, metadata={"help": "LoRA rank r.", "aliases": ["--lora_rank"]})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    lora_bias: str = field(default="none", metadata={"help": "LoRA bias: none, all or lora_only."})
    lora_weight_path: str = field(default="", metadata={"help": "Accepted for compatibility; has no effect."})
    lora_namespan_exclude: str | None = field(
        default=None,
        metadata={
            "help": "Module-name substrings that get no LoRA, as a Python list string \"['lm_head', 'embed_tokens']\""
            " or comma-separated. Default: lm_head,embed_tokens."
        },
    )
    num_lora_modules: int = field(default=-1, metadata={"help": "Keep only the last N LoRA target modules (-1: all)."})
    bits: int = field(default=16, metadata={"help": "16 (no quantisation), 8 or 4 (QLoRA, needs bitsandbytes)."})
    double_quant: bool = field(default=True, metadata={"help": "QLoRA: double quantisation."})
    quant_type: str = field(default="nf4", metadata={"help": "QLoRA: fp4 or nf4."})

    def __post_init__(self) -> None:
        if self.tune_merger is None:
            self.tune_merger = not self.freeze_vision_tower
        if self.use_peft and not self.freeze_llm:
            raise ValueError("use_peft=True requires freeze_llm=True (LoRA adapts a frozen LLM), as in the original")
        if self.vision_lora and not self.use_peft:
            raise ValueError("vision_lora=True requires use_peft=True")
        if self.vision_lora and not self.freeze_vision_tower:
            raise ValueError("vision_lora=True requires freeze_vision_tower=True")
        if self.bits not in (4, 8, 16):
            raise ValueError(f"bits must be 4, 8 or 16, got {self.bits}")
        if self.bits != 16 and not self.use_peft:
            raise ValueError(f"bits={self.bits} (quantised base) only works with use_peft=True")
        if self.lora_bias not in ("none", "all", "lora_only"):
            raise ValueError(f"lora_bias must be none, all or lora_only, got {self.lora_bias!r}")
        if self.quant_type not in ("nf4", "fp4"):
            raise ValueError(f"quant_type must be nf4 or fp4, got {self.quant_type!r}")
        if self.lora_weight_path:
            warnings.warn(
                "--lora_weight_path has no effect (it was unused in the original too)", NoEffectWarning, stacklevel=2
            )

    def lora_exclude_list(self) -> list[str]:
        """The parsed ``lora_namespan_exclude`` value."""
        return parse_name_list(self.lora_namespan_exclude, default=["lm_head", "embed_tokens"])


@dataclass
class DataArguments:
    dataset_name: str | None = field(
        default=None, metadata={"help": "LLaVA-style JSON list or JSONL file.", "aliases": ["--data_path"]}
    )
    image_folder: str | None = field(
        default=None, metadata={"help": "Folder the record image/video paths are relative to (default: data dir)."}
    )
    lazy_preprocess: bool = field(default=False, metadata={"help": "Accepted for compatibility; always lazy."})
    image_min_pixels: int | None = field(
        default=None, metadata={"help": "Minimum pixels per image after resizing (default: the processor's)."}
    )
    image_max_pixels: int | None = field(
        default=None, metadata={"help": "Maximum pixels per image after resizing (default: the processor's)."}
    )
    video_min_pixels: int = field(default=100352, metadata={"help": "Minimum pixels per video frame."})
    video_max_pixels: int = field(default=602112, metadata={"help": "Maximum pixels per video frame."})
    fps: float = field(default=1.0, metadata={"help": "Frames per second sampled from video files."})
    max_seq_length: int = field(
        default=32768,
        metadata={"help": "Longer records are cut after their last image token, or skipped (never cut in images)."},
    )
    skip_bad_samples: bool = field(
        default=False,
        metadata={
            "help": "Skip and count bad records instead of stopping: those found by the start-up check and those met "
            "during training (an image that became unreadable after the check), each logged with file and record."
        },
    )
    check_data: bool = field(default=True, metadata={"help": "Scan the whole data file before training."})
    verify_images: bool = field(
        default=False,
        metadata={
            "help": "Start-up check decodes every image fully (slow) instead of reading its header and its end."
        },
    )
    data_check_cache: bool = field(
        default=True,
        metadata={
            "help": "Reuse the start-up check's report saved in output_dir/data_check.json while the data file "
            "(path, size, mtime) and the check settings are unchanged (a resume does not scan again)."
        },
    )
    allow_external_image_paths: bool = field(
        default=False, metadata={"help": "Allow absolute or '..' media paths outside --image_folder."}
    )
    max_image_pixels: int = field(
        default=DEFAULT_MAX_IMAGE_PIXELS,
        metadata={"help": "Refuse images with more pixels than this before decoding (decompression-bomb guard)."},
    )
    training_stage: str = field(
        default="auto",
        metadata={
            "help": "Stage named in the model card (README.md of output_dir): pretraining, sft, cot_sft, or auto "
            "(read from the data: reasoning answers -> cot_sft, task tags -> sft, else pretraining)."
        },
    )

    def __post_init__(self) -> None:
        if self.training_stage not in TRAINING_STAGES:
            raise ValueError(f"training_stage must be one of {list(TRAINING_STAGES)}, got {self.training_stage!r}")
        if self.lazy_preprocess:
            warnings.warn("--lazy_preprocess has no effect: data is always read lazily", NoEffectWarning, stacklevel=2)
        if self.max_seq_length < 1:
            raise ValueError(f"max_seq_length must be positive, got {self.max_seq_length}")
        for name in ("image_min_pixels", "image_max_pixels", "video_min_pixels", "video_max_pixels"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if self.image_min_pixels and self.image_max_pixels and self.image_min_pixels > self.image_max_pixels:
            raise ValueError("image_min_pixels is larger than image_max_pixels")
        if self.video_min_pixels > self.video_max_pixels:
            raise ValueError("video_min_pixels is larger than video_max_pixels")


@dataclass
class TrainingArguments(transformers.TrainingArguments):
    config: str | None = field(
        default=None,
        metadata={"help": "YAML recipe: its keys give the defaults, command-line flags override them."},
    )
    vision_lr: float | None = field(
        default=None, metadata={"help": "Learning rate of the vision tower (without merger); default learning_rate."}
    )
    merger_lr: float | None = field(
        default=None, metadata={"help": "Learning rate of the merger; default learning_rate."}
    )
    dry_run: bool = field(
        default=False,
        metadata={
            "help": "Check the arguments, the data file and a sample of its images, the model folder or hub id, the "
            "DeepSpeed config and the output folder; print the effective settings; exit without loading a model "
            "(no GPU needed)."
        },
    )
    dry_run_world_size: int | None = field(
        default=None,
        metadata={"help": "Processes the real launch starts, for the dry run's global batch (default: WORLD_SIZE)"},
    )
    loss_normalization: str = field(
        default="global_tokens",
        metadata={
            "help": "global_tokens: token losses summed over the whole global batch (all accumulation steps and "
            "devices) and divided by its supervised-token count (transformers 5). micro_batch: mean over the "
            "supervised tokens of each micro-batch, averaged over accumulation steps and devices (the original, "
            "used by the paper recipes). per_sample: mean over each record's supervised tokens, then over the records "
            "(a one-word answer weighs as much as a 20-token box; the CPU demo's multi-task recipe)."
        },
    )
    allow_deepspeed_optimizer: bool = field(
        default=False,
        metadata={
            "help": "Accept a DeepSpeed config with optimizer/scheduler blocks (they replace vision_lr, merger_lr, "
            "the no-decay groups and the lr_scheduler_type)."
        },
    )
    warmup_ratio: float | None = field(
        default=None,
        metadata={
            "help": "Fraction of the steps used for linear warmup (transformers 5 folded it into warmup_steps)."
        },
    )
    optim: str = field(default="adamw_torch", metadata={"help": "Optimizer (HF names); default adamw_torch."})
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "The collator emits only model inputs; kept for compatibility."}
    )

    def __post_init__(self) -> None:
        if self.loss_normalization not in LOSS_NORMALIZATIONS:
            raise ValueError(
                f"loss_normalization must be one of {list(LOSS_NORMALIZATIONS)}, got {self.loss_normalization!r}"
            )
        if self.warmup_ratio is not None:
            if not 0 <= self.warmup_ratio < 1:
                raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
            if self.warmup_steps:
                raise ValueError("give warmup_ratio or warmup_steps, not both")
            self.warmup_steps = self.warmup_ratio
        if self.deepspeed:
            self.deepspeed = check_deepspeed_config(self.deepspeed, allow_optimizer=self.allow_deepspeed_optimizer)
        if not self.dry_run:
            super().__post_init__()
            return
        # A dry run must work on a login node without a GPU: transformers would probe the device for bf16/tf32 (and
        # refuse them on a CPU). Validate everything else as a CPU run, then restore the requested values.
        requested = {"use_cpu": self.use_cpu, "tf32": self.tf32}
        self.use_cpu, self.tf32 = True, None
        super().__post_init__()
        for name, value in requested.items():
            setattr(self, name, value)


ARG_CLASSES = (ModelArguments, DataArguments, TrainingArguments)
LOSS_NORMALIZATIONS = ("global_tokens", "micro_batch", "per_sample")


def parse_name_list(value: Any, default: list[str]) -> list[str]:
    """Parse a list given as a YAML list, a Python-literal list string or a comma-separated string."""
    if value is None:
        return list(default)
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    text = str(value).strip()
    if text.startswith("["):
        parsed = ast.literal_eval(text)
        if not isinstance(parsed, list):
            raise ValueError(f"expected a list, got {text!r}")
        return [str(v) for v in parsed]
    return [v.strip() for v in text.split(",") if v.strip()]


def known_keys() -> set[str]:
    """The recipe keys and flag names (without ``--``) of the three argument classes."""
    return {f.name for cls in ARG_CLASSES for f in fields(cls) if f.init and f.name != "config"}


def load_recipe(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML recipe (alias keys renamed to the canonical ones) and check its keys against the dataclasses.

    Raises:
        UsageError: the file is missing, not a mapping, or has an unknown key.
    """
    path = Path(path)
    try:
        with path.open() as f:
            cfg = yaml.safe_load(f) or {}
    except OSError as err:
        raise UsageError(f"--config {path}: {err.strerror or err}") from None
    except yaml.YAMLError as err:
        raise UsageError(f"--config {path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(cfg, dict):
        raise UsageError(f"{path}: a recipe must be a mapping of argument names to values")
    cfg = canonical_keys(cfg, ALIASES, str(path), logger)
    known = known_keys()
    unknown = sorted(set(cfg) - known)
    if unknown:
        hints = unknown_flags_message([f"--{k}" for k in unknown], [f"--{k}" for k in known]).split(": ", 1)[1]
        raise UsageError(
            f"{path}: unknown keys {unknown}: {hints.replace('--', '')} (keys are the command-line flag names "
            "without '--')"
        )
    ds = cfg.get("deepspeed")
    if isinstance(ds, str) and not Path(ds).exists() and (path.parent / ds).exists():
        cfg["deepspeed"] = str(path.parent / ds)
    return cfg


def build_parser(recipe: dict[str, Any] | None = None) -> HfArgumentParser:
    """The argument parser of ``tinyrs-sft train``, with the recipe's values as defaults."""
    parser = HfArgumentParser(ARG_CLASSES, prog="tinyrs-sft train", allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"tinyrs-sft {__version__}")
    if recipe:
        parser.set_defaults(**recipe)
        for action in parser._actions:
            if action.dest in recipe:
                action.required = False
    return parser


def parse_args(
    argv: list[str] | None = None,
) -> tuple[ModelArguments, DataArguments, TrainingArguments]:
    """Parse ``--config recipe.yaml`` plus command-line flags (flags win; unknown keys and flags fail).

    Raises:
        ValueError: a usage error (``UsageError`` for the command line and the recipe, ``ValueError`` from the
            dataclasses' checks), reported by ``cli`` in one line with exit status 2.
    """
    import sys

    argv = rewrite_aliases(list(sys.argv[1:] if argv is None else argv), ALIASES, logger)
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--config", default=None)
    known, rest = pre.parse_known_args(argv)
    recipe = load_recipe(known.config) if known.config else {}
    if known.config:
        recipe["config"] = known.config
    parser = build_parser(recipe)
    _, extras = parser.parse_known_args(args=rest)
    if extras:
        flags = [s for action in parser._actions for s in action.option_strings if s.startswith("--")]
        raise UsageError(unknown_flags_message(extras, flags + ["--config"]))
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=rest)
    if data_args.dataset_name is None:
        raise UsageError("--dataset_name (or its alias --data_path) is required")
    return model_args, data_args, training_args
