"""The README.md model card written into every GRPO output folder, in place of TRL's stock card.

TRL's card names the base model only when it is a hub id and otherwise says "fine-tuned version of [None]"; it does
not say which data, rewards or settings made the checkpoint. This card names the base model, the data, the recipe
(config file and the settings that decide a GRPO run) and the stage, so a folder found later explains itself.
Nothing secret goes in: the judge key is never an argument, and the card lists settings, not the command line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinyrs_grpo import __version__


STAGE = "GRPO, TinyRS-R1 recipe (TinyRS-CoT -> TinyRS-R1)"
PAPER = "https://arxiv.org/abs/2505.12099"


@dataclass
class ModelCard:
    """What the card states; ``settings`` keeps its order (name -> value)."""

    base_model: str
    dataset: str
    train_rows: int | None
    recipe: str | None
    settings: dict[str, Any] = field(default_factory=dict)

    def render(self, steps: int) -> str:
        """The README.md text (hub metadata block, then the card) after ``steps`` optimiser steps."""
        meta = ["---", "library_name: transformers", "pipeline_tag: image-text-to-text"]
        if is_hub_id(self.base_model):
            meta.append(f"base_model: {self.base_model}")
        if is_hub_id(self.dataset):
            meta += ["datasets:", f"- {self.dataset}"]
        meta += ["tags:", "- tinyrs", "- tinyrs-r1", "- grpo", "- trl", "- remote-sensing", "- qwen2-vl", "---"]
        rows = f", {self.train_rows} training rows after the data check" if self.train_rows is not None else ""
        recipe = f"`{self.recipe}` plus command-line flags" if self.recipe else "command-line flags only (no --config)"
        table = [
            ("stage", STAGE),
            ("base model", f"`{self.base_model}`"),
            ("data", f"`{self.dataset}`{rows}"),
            ("recipe", recipe),
            ("steps trained", str(steps)),
            *((name, f"`{value}`") for name, value in self.settings.items()),
            ("written by", f"tinyrs-grpo {__version__} (TRL GRPOTrainer)"),
        ]
        lines = [
            *meta,
            "",
            f"# TinyRS-R1 (GRPO) from {Path(self.base_model).name or self.base_model}",
            "",
            f"This checkpoint is the GRPO stage of the [TinyRS-R1]({PAPER}) recipe: `{self.base_model}` trained with "
            f"group relative policy optimisation on `{self.dataset}`, rewarded by {_rewards(self.settings)}.",
            "",
            "| | |",
            "|---|---|",
            *(f"| {name} | {value} |" for name, value in table),
            "",
            "## Use",
            "",
            "It answers in the reasoning format `<reasoning> ... </reasoning><answer> ... </answer>` when prompted "
            "with the reasoning system prompt of docs/data-format.md. Evaluate it with the reasoning template:",
            "",
            "```bash",
            "tinyrs-eval run --model_type hf --model_path THIS_FOLDER --task all \\",
            "    --reasoning_config eval/configs/qwen2_thinking_template.json",
            "```",
            "",
        ]
        return "\n".join(lines)

    def write(self, folder: str | os.PathLike, steps: int) -> Path:
        path = Path(folder) / "README.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.render(steps), encoding="utf-8")
        return path


def _rewards(settings: dict[str, Any]) -> str:
    return " + ".join(str(name) for name in settings.get("reward_funcs", [])) or "its reward functions"


def is_hub_id(name: str) -> bool:
    """A name that reads as ``owner/name`` on the hub rather than as a local path."""
    return (
        bool(name)
        and not Path(name).expanduser().exists()
        and not name.startswith((".", "/", "~"))
        and name.count("/") <= 1
    )


def model_card(
    script_args: Any,
    training_args: Any,
    model_args: Any,
    recipe: str | None,
    train_rows: int | None,
    pixel_bounds: tuple[Any, Any] = (None, None),
) -> ModelCard:
    """The card of a GRPO run from its parsed arguments, the rows it trains on and the pixel bounds in force."""
    weights = training_args.reward_weights
    judge = script_args.resolved_judge()
    settings = {
        "reward_funcs": list(script_args.reward_funcs),
        "reward_weights": list(weights) if weights is not None else "1.0 each",
        "judge": "none (open-ended rows dropped)" if judge == "none" else script_args.judge_model,
        "beta": training_args.beta,
        "loss_type": training_args.loss_type,
        "use_bias_correction_kl": training_args.use_bias_correction_kl,
        "scale_rewards": training_args.scale_rewards,
        "num_generations": training_args.num_generations,
        "max_completion_length": training_args.max_completion_length,
        "temperature": training_args.temperature,
        "learning_rate": training_args.learning_rate,
        "lr_scheduler_type": getattr(training_args.lr_scheduler_type, "value", training_args.lr_scheduler_type),
        "max_steps": training_args.max_steps,
        "num_train_epochs": training_args.num_train_epochs,
        "per_device_train_batch_size": training_args.per_device_train_batch_size,
        "gradient_accumulation_steps": training_args.gradient_accumulation_steps,
        "world_size": training_args.world_size,
        "min_pixels / max_pixels": f"{pixel_bounds[0]} / {pixel_bounds[1]}",
        "seed": training_args.seed,
    }
    return ModelCard(
        base_model=str(model_args.model_name_or_path),
        dataset=str(script_args.dataset_name),
        train_rows=train_rows,
        recipe=recipe,
        settings=settings,
    )
