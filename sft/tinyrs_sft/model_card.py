"""The model card (``README.md``) written next to the final weights: what was trained from what, and how.

It names the base model, the data, the recipe (``--config`` file and the effective settings: learning rate of each
parameter group, epochs and steps, global batch, ZeRO stage, loss normalisation, image bounds) and the TinyRS stage.
The stage is ``--training_stage`` when given, else read from a sample of the records: reasoning answers
(``<reasoning>``) mean CoT-SFT, task tags (``{CLS}``, ``{VQA}``, ``{VG}``) mean instruction SFT, neither means
pretraining (captions).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tinyrs_sft import __version__
from tinyrs_sft.dry_run import sample_indices, settings_lines
from tinyrs_sft.records import DataError, RecordSource


logger = logging.getLogger("tinyrs_sft")

CARD_NAME = "README.md"
STAGE_TITLES = {"pretraining": "pretraining", "sft": "instruction SFT", "cot_sft": "CoT-SFT"}
TASK_TAG_RE = re.compile(r"\{(?:CLS|VQA|VG)\}")
SAMPLE = 64


def _turns(record: Any) -> list[dict]:
    turns = record.get("conversations") if isinstance(record, dict) else None
    return [t for t in turns if isinstance(t, dict)] if isinstance(turns, list) else []


def infer_stage(source: RecordSource, indices: Sequence[int] | None = None) -> tuple[str, str]:
    """``(stage, why)`` from up to 64 records spread over ``indices`` (default: the whole file)."""
    pool = range(len(source)) if indices is None else indices
    picked = [pool[i] for i in sample_indices(len(pool), SAMPLE)]
    reasoning = tagged = read = 0
    for index in picked:
        try:
            turns = _turns(source[index])
        except DataError:
            continue
        read += 1
        values = [(t.get("from"), str(t.get("value", ""))) for t in turns]
        if any(role == "gpt" and "<reasoning>" in value for role, value in values):
            reasoning += 1
        elif any(role == "human" and TASK_TAG_RE.search(value) for role, value in values):
            tagged += 1
    if reasoning:
        return "cot_sft", f"{reasoning} of {read} sampled records have <reasoning> answers"
    if tagged:
        return "sft", f"{tagged} of {read} sampled records carry a task tag ({{CLS}}, {{VQA}}, {{VG}})"
    return "pretraining", f"none of {read} sampled records has a task tag or a <reasoning> answer (captions)"


def render_card(
    model_args: Any,
    data_args: Any,
    training_args: Any,
    stage: str,
    stage_source: str,
    n_records: int,
    world_size: int,
    global_step: int | None = None,
    train_loss: float | None = None,
) -> str:
    """The model card's text (YAML front matter for the hub, then Markdown)."""
    base = model_args.model_name_or_path
    title = STAGE_TITLES[stage]
    recipe = f"`{training_args.config}` with the command-line overrides" if training_args.config else "flags only"
    lines = [
        "---",
        f"base_model: {base}",
        "library_name: transformers",
        "pipeline_tag: image-text-to-text",
        f"tags: [tinyrs, remote-sensing, qwen2-vl, {stage.replace('_', '-')}]",
        "---",
        "",
        f"# {Path(training_args.output_dir).name}: TinyRS {title}",
        "",
        f"Trained with tinyrs-sft {__version__} (`tinyrs-sft train`).",
        "",
        f"- **Stage**: {title} (`{stage}`; {stage_source})",
        f"- **Base model**: `{base}`",
        f"- **Data**: `{data_args.dataset_name}` ({n_records} records used), images under "
        f"`{data_args.image_folder or 'the data file folder'}`",
        f"- **Recipe**: {recipe}",
    ]
    if model_args.use_peft:
        lines.append(
            f"- **LoRA**: r={model_args.lora_r}, alpha={model_args.lora_alpha}, dropout={model_args.lora_dropout}; "
            "this folder holds the adapter (`tinyrs-sft merge-lora` writes a full checkpoint)"
        )
    if global_step is not None:
        loss = f", final training loss {train_loss:.4f}" if train_loss is not None else ""
        lines.append(f"- **Training**: {global_step} optimizer steps{loss}")
    lines += ["", "## Settings", ""]
    for line in settings_lines(model_args, data_args, training_args, n_records, world_size):
        for dry_run_note in (" (not checked against this machine in a dry run)", " (before bad ones are dropped)"):
            line = line.replace(dry_run_note, "")
        lines.append(f"- {line}")
    lines += [
        "",
        "The full arguments are in `training_args.bin` (the pickled TrainingArguments); the loss curve is in "
        "`trainer_state.json`.",
        "",
    ]
    return "\n".join(lines)


def write_model_card(output_dir: str | Path, text: str) -> Path:
    """Write ``README.md`` into ``output_dir`` (replacing a card peft may have written there)."""
    path = Path(output_dir) / CARD_NAME
    path.write_text(text, encoding="utf-8")
    logger.info("model card written to %s", path)
    return path
