"""Optimizer parameter groups (vision / merger / LLM learning rates, no decay on biases and norms) and the
DeepSpeed-config check that keeps them from being silently replaced (original defect S2)."""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn


logger = logging.getLogger(__name__)

_NORM_TYPES = (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.RMSNorm)


def is_norm_module(module: nn.Module) -> bool:
    """LayerNorm and RMSNorm alike, including custom/kernel classes (Qwen2RMSNorm, LigerRMSNorm, LigerLayerNorm)."""
    return isinstance(module, _NORM_TYPES) or "norm" in type(module).__name__.lower()


def no_decay_parameter_names(model: nn.Module) -> set[str]:
    """Names of parameters that get no weight decay: biases and every parameter owned by a normalisation module."""
    names: set[str] = set()
    for module_name, module in model.named_modules():
        norm = is_norm_module(module)
        for param_name, _ in module.named_parameters(recurse=False):
            full = f"{module_name}.{param_name}" if module_name else param_name
            if norm or param_name == "bias" or param_name.endswith("_bias"):
                names.add(full)
    return names


def model_part(name: str) -> str:
    """Which part a parameter belongs to: ``merger``, ``vision`` or ``llm``."""
    if "merger" in name:
        return "merger"
    if "visual" in name:
        return "vision"
    return "llm"


@dataclass
class GroupSpec:
    part: str
    decay: bool
    lr: float
    weight_decay: float
    names: list[str]


def build_param_groups(
    model: nn.Module,
    learning_rate: float,
    weight_decay: float,
    vision_lr: float | None = None,
    merger_lr: float | None = None,
) -> tuple[list[dict[str, Any]], list[GroupSpec]]:
    """Split the trainable parameters into (part x decay) groups, each with its own lr and weight decay.

    Returns the torch ``param_groups`` list and a description of each group (for logging and tests). Empty groups
    are left out.
    """
    lrs = {"vision": vision_lr or learning_rate, "merger": merger_lr or learning_rate, "llm": learning_rate}
    no_decay = no_decay_parameter_names(model)
    buckets: dict[tuple[str, bool], list[tuple[str, nn.Parameter]]] = {}
    seen: set[int] = set()
    for name, param in model.named_parameters():
        if not param.requires_grad or id(param) in seen:
            continue
        seen.add(id(param))
        buckets.setdefault((model_part(name), name not in no_decay), []).append((name, param))
    groups, specs = [], []
    for part in ("vision", "merger", "llm"):
        for decay in (True, False):
            items = buckets.get((part, decay))
            if not items:
                continue
            wd = weight_decay if decay else 0.0
            groups.append({"params": [p for _, p in items], "lr": lrs[part], "weight_decay": wd})
            specs.append(GroupSpec(part, decay, lrs[part], wd, [n for n, _ in items]))
    return groups, specs


def log_param_groups(specs: list[GroupSpec]) -> None:
    for spec in specs:
        logger.info(
            "param group %-6s %-8s: %4d tensors, lr=%.3g, weight_decay=%.3g",
            spec.part,
            "decay" if spec.decay else "no-decay",
            len(spec.names),
            spec.lr,
            spec.weight_decay,
        )


def count_parameters_by_part(model: nn.Module) -> dict[str, dict[str, int]]:
    """Total and trainable parameter counts of the vision tower, the merger and the LLM."""
    counts = {part: {"total": 0, "trainable": 0} for part in ("vision", "merger", "llm")}
    seen: set[int] = set()
    for name, param in model.named_parameters():
        if id(param) in seen:
            continue
        seen.add(id(param))
        n = param.ds_numel if hasattr(param, "ds_numel") else param.numel()
        part = model_part(name.replace("base_model.model.", ""))
        counts[part]["total"] += n
        if param.requires_grad:
            counts[part]["trainable"] += n
    return counts


def load_deepspeed_config(ds: str | dict) -> dict:
    if isinstance(ds, dict):
        return copy.deepcopy(ds)
    path = Path(ds)
    if not path.is_file():
        raise ValueError(f"--deepspeed {ds}: file not found")
    with path.open() as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"--deepspeed {ds}: not valid JSON ({err})") from err


def check_deepspeed_config(ds: str | dict, allow_optimizer: bool = False) -> dict:
    """Validate a DeepSpeed config and return it as a dict.

    An ``optimizer`` or ``scheduler`` block makes the HF Trainer use DeepSpeed's optimizer/scheduler on all trainable
    parameters, which silently drops ``vision_lr``, ``merger_lr``, the no-decay groups and ``lr_scheduler_type`` (the
    original's README recipe lost them this way). That is an error unless ``allow_optimizer``.
    ZeRO-3 configs get ``stage3_gather_16bit_weights_on_model_save`` so that saved checkpoints hold real weights.
    """
    config = load_deepspeed_config(ds)
    blocks = [key for key in ("optimizer", "scheduler") if key in config]
    if blocks and not allow_optimizer:
        raise ValueError(
            f"DeepSpeed config {ds if isinstance(ds, str) else '<dict>'} has {' and '.join(blocks)} block(s): "
            "DeepSpeed would then replace the trainer's optimizer/scheduler and silently ignore vision_lr, "
            "merger_lr, the no-weight-decay groups and lr_scheduler_type. Remove the block(s) (see "
            "sft/configs/deepspeed/) or pass --allow_deepspeed_optimizer True to accept this."
        )
    if blocks:
        logger.warning(
            "DeepSpeed config has %s block(s) and --allow_deepspeed_optimizer is set: vision_lr, merger_lr, the "
            "no-decay groups and lr_scheduler_type are NOT used",
            blocks,
        )
    zero = config.get("zero_optimization", {})
    if zero.get("stage") == 3:
        gather = zero.get("stage3_gather_16bit_weights_on_model_save", zero.get("gather_16bit_weights_on_model_save"))
        if gather is not True:
            logger.warning(
                "ZeRO-3: setting stage3_gather_16bit_weights_on_model_save=true so checkpoints hold weights"
            )
            zero.pop("gather_16bit_weights_on_model_save", None)
            zero["stage3_gather_16bit_weights_on_model_save"] = True
            config["zero_optimization"] = zero
    return config


def offloads_optimizer(config: dict) -> bool:
    """Whether a DeepSpeed config offloads optimizer states to the CPU (needs DeepSpeed's CPU Adam)."""
    device = config.get("zero_optimization", {}).get("offload_optimizer", {}).get("device", "none")
    return device not in (None, "none")
