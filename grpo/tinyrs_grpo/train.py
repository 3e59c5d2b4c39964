"""GRPO training of a Qwen2-VL checkpoint (TinyRS-CoT -> TinyRS-R1) on TRL's GRPOTrainer.

One GPU:
    tinyrs-grpo train --config grpo/configs/tinyrs_r1.yaml --model_name_or_path aybora/Qwen2-VL-TinyRS-CoT

Several GPUs, ZeRO-3 (the paper's setup, 4 x H100; the seed README's SLURM rendezvous flags work unchanged):
    torchrun --nproc_per_node 4 -m tinyrs_grpo.train --config grpo/configs/tinyrs_r1.yaml \
        --deepspeed grpo/configs/deepspeed/zero3.json
    accelerate launch --num_processes 4 -m tinyrs_grpo.train --config grpo/configs/tinyrs_r1.yaml \
        --deepspeed grpo/configs/deepspeed/zero3.json

CPU demo (tiny model, seconds):
    tinyrs-grpo train --config grpo/configs/cpu_demo.yaml --model_name_or_path TINY --dataset_name DATA/grpo

The judge key is read from OPENAI_API_KEY only; without it (and without --judge_base_url) open-ended rows are dropped.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import datasets
import transformers
from trl import GRPOConfig, GRPOTrainer, ModelConfig, TrlParser, get_peft_config

from tinyrs_grpo.callbacks import JsonlLogCallback, JudgeSummaryCallback
from tinyrs_grpo.checkpoints import (
    OutputDirError,
    check_output_dir,
    folder_size,
    load_model_weights,
    resolve_resume,
    write_error_message,
)
from tinyrs_grpo.config import GRPOScriptArguments
from tinyrs_grpo.data import BadRowError, DatasetError, load_grpo_dataset, prepare_split, select_split
from tinyrs_grpo.judge import API_KEY_ENV, Judge
from tinyrs_grpo.model import load_processor, resize_dataset_images
from tinyrs_grpo.rewards import get_reward_funcs


logger = logging.getLogger("tinyrs_grpo")


def main(script_args: GRPOScriptArguments, training_args: GRPOConfig, model_args: ModelConfig) -> GRPOTrainer:
    # ---- logging ------------------------------------------------------------------------------------------------
    log_level = training_args.get_process_log_level()
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=log_level)
    # tinyrs_grpo's own messages (data summary, judge, settings) show on the main process by default
    logger.setLevel(min(log_level, logging.INFO) if training_args.should_log else log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    if model_args.model_name_or_path is None:
        raise ValueError("--model_name_or_path is required")
    init_deepspeed_comm(training_args)

    # ---- output folder: writable, room for the model, and where to resume from (before any work) --------------
    min_free = 0 if model_args.use_peft else folder_size(model_args.model_name_or_path)
    check_output_dir(training_args.output_dir, min_free_bytes=min_free)
    checkpoint = resolve_resume(training_args.resume_from_checkpoint, training_args.output_dir)

    # ---- judge (key from OPENAI_API_KEY only) ---------------------------------------------------------------------
    judge = None
    if script_args.resolved_judge() == "openai":
        judge = Judge(
            model=script_args.judge_model,
            base_url=script_args.judge_base_url,
            concurrency=script_args.judge_concurrency,
            timeout=script_args.judge_timeout,
            max_retries=script_args.judge_max_retries,
            on_error=script_args.judge_on_error,
            temperature=script_args.judge_temperature,
            max_tokens=script_args.judge_max_tokens,
        )
    logger.info("judge: %s", judge if judge is not None else "none (open-ended rows are dropped)")

    # ---- processor (pixel bounds that really apply) ---------------------------------------------------------------
    processor = load_processor(
        model_args.model_name_or_path,
        min_pixels=script_args.min_pixels,
        max_pixels=script_args.max_pixels,
        revision=model_args.model_revision,
        trust_remote_code=training_args.trust_remote_code,
    )

    # ---- data -----------------------------------------------------------------------------------------------------
    try:
        train_dataset, eval_dataset = load_splits(script_args, training_args, processor, judge is not None)
    except (DatasetError, BadRowError) as exc:
        name = str(script_args.dataset_name)
        raise DatasetError(str(exc) if str(exc).startswith(name) else f"{name}: {exc}") from exc

    # ---- rewards --------------------------------------------------------------------------------------------------
    reward_funcs = get_reward_funcs(script_args.reward_funcs, judge=judge)

    # ---- model and trainer ------------------------------------------------------------------------------------------
    model_init_kwargs = dict(
        revision=model_args.model_revision,
        trust_remote_code=training_args.trust_remote_code,
        attn_implementation=model_args.attn_implementation,
        dtype=model_args.dtype,
    )
    model_init_kwargs.update(training_args.model_init_kwargs or {})
    training_args.model_init_kwargs = model_init_kwargs
    if training_args.per_device_train_batch_size < training_args.num_generations:
        logger.warning(
            "per_device_train_batch_size=%d counts completions in TRL, not prompts: a prompt's %d completions are "
            "spread over devices. The original's '--per_device_train_batch_size 1' (one prompt per GPU) is "
            "--per_device_train_batch_size %d here.",
            training_args.per_device_train_batch_size,
            training_args.num_generations,
            training_args.num_generations,
        )
    if training_args.remove_unused_columns:
        logger.warning("remove_unused_columns=True would hide solution/image from the rewards; forcing False")
        training_args.remove_unused_columns = False
    logger.info(
        "GRPO: loss_type=%s beta=%s num_generations=%s scale_rewards=%s epsilon=%s num_iterations=%s "
        "temperature=%s max_completion_length=%s per_device_train_batch_size=%s rewards=%s weights=%s",
        training_args.loss_type,
        training_args.beta,
        training_args.num_generations,
        training_args.scale_rewards,
        training_args.epsilon,
        training_args.num_iterations,
        training_args.temperature,
        training_args.max_completion_length,
        training_args.per_device_train_batch_size,
        script_args.reward_funcs,
        training_args.reward_weights,
    )
    callbacks = [JsonlLogCallback(os.path.join(training_args.output_dir, "train_log.jsonl"))]
    if judge is not None:
        callbacks.append(JudgeSummaryCallback(judge))
    trainer = ResumableGRPOTrainer(
        model=model_args.model_name_or_path,
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=processor,
        peft_config=get_peft_config(model_args),
        callbacks=callbacks,
    )

    # ---- train (from the newest complete checkpoint in output_dir unless --resume_from_checkpoint says otherwise) --
    if checkpoint:
        logger.info("resuming from %s", checkpoint)
    trainer.train(resume_from_checkpoint=checkpoint)

    # ---- save -------------------------------------------------------------------------------------------------------
    trainer.save_model(training_args.output_dir)
    if trainer.accelerator.is_main_process:
        processor.save_pretrained(training_args.output_dir)
    logger.info("model saved to %s", training_args.output_dir)
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.dataset_name)
    trainer.end()
    return trainer


class ResumableGRPOTrainer(GRPOTrainer):
    """GRPOTrainer whose resume really restores the policy weights.

    The Trainer's own loader restores nothing for Qwen2-VL under transformers 5 (checkpoint key names differ from
    the live module names and it loads with strict=False; see tinyrs_grpo.checkpoints.load_model_weights).
    """

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        if not load_model_weights(self, resume_from_checkpoint, model):
            super()._load_from_checkpoint(resume_from_checkpoint, model)


def load_splits(
    script_args: GRPOScriptArguments, training_args: GRPOConfig, processor: Any, judge_enabled: bool
) -> tuple[Any, Any]:
    """Load, check and normalise the train split (and the test split when evaluating)."""
    raw = load_grpo_dataset(
        script_args.dataset_name, script_args.dataset_config, script_args.allow_external_image_paths
    )
    prepare = dict(
        judge_enabled=judge_enabled,
        skip_bad_rows=script_args.skip_bad_rows,
        processor=processor,
        max_prompt_length=script_args.max_prompt_length,
    )
    with training_args.main_process_first(desc="preparing the GRPO dataset"):
        split = script_args.dataset_train_split
        train_dataset, _ = prepare_split(select_split(raw, split), split, **prepare)
        eval_dataset = None
        if training_args.eval_strategy != "no":
            split = script_args.dataset_test_split
            eval_dataset, _ = prepare_split(select_split(raw, split), split, **prepare)
        if training_args.use_vllm:  # vLLM reads the checkpoint's own pixel bounds: hand it pre-bounded images
            train_dataset = resize_dataset_images(train_dataset, processor.image_processor)
            if eval_dataset is not None:
                eval_dataset = resize_dataset_images(eval_dataset, processor.image_processor)
    return train_dataset, eval_dataset


def init_deepspeed_comm(training_args: GRPOConfig) -> None:
    """With ``--use_cpu`` under a launcher, accelerate starts torch.distributed (gloo) but not deepspeed.comm, so
    ZeRO-3's model-init context would see a world size of 1 and reject the batch sizes. Wrap the live group."""
    if not training_args.deepspeed:
        return
    _ = training_args.device  # sets up the process group
    import torch.distributed

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        import deepspeed

        if not deepspeed.comm.is_initialized():
            deepspeed.init_distributed(dist_backend=torch.distributed.get_backend())


def make_parser() -> TrlParser:
    return TrlParser((GRPOScriptArguments, GRPOConfig, ModelConfig))


def reject_key_in_config(path: str) -> None:
    """Refuse a recipe that carries the judge key (TRL would export its ``env:`` block): keys stay out of files."""
    import yaml

    with open(path, encoding="utf-8") as handle:
        config = yaml.safe_load(handle) or {}
    env = config.get("env") if isinstance(config, dict) else None
    if isinstance(env, dict) and API_KEY_ENV in env:
        raise ValueError(f"{path}: remove {API_KEY_ENV} from the env block; export it in the shell instead")


def cli(argv: Sequence[str] | None = None) -> None:
    """Parse ``--config recipe.yaml`` plus flags (flags win) and run ``main``."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if "--config" in args:
            reject_key_in_config(args[args.index("--config") + 1])
        script_args, training_args, model_args = make_parser().parse_args_and_config(args=args)
    except (ValueError, OSError) as exc:
        sys.stderr.write(f"tinyrs-grpo train: error: {exc}\n")
        raise SystemExit(2) from None
    if script_args.dry_run:
        dry_run(script_args, training_args, model_args)
        return
    try:
        main(script_args, training_args, model_args)
    except (DatasetError, OutputDirError) as exc:
        sys.stderr.write(f"tinyrs-grpo train: error: {exc}\n")
        raise SystemExit(1) from None
    except OSError as exc:
        message = write_error_message(exc)
        if message is None:
            raise
        sys.stderr.write(f"tinyrs-grpo train: error: {message}\n")
        raise SystemExit(1) from None


def dry_run(script_args: GRPOScriptArguments, training_args: GRPOConfig, model_args: ModelConfig) -> None:
    """Check what can be checked without a model or data (launch scripts use it so a renamed flag fails early)."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    if model_args.model_name_or_path is None:
        raise ValueError("--model_name_or_path is required")
    if script_args.dataset_name is None:
        raise ValueError("--dataset_name is required")
    names = [n for n in script_args.reward_funcs if n != "judge" or script_args.resolved_judge() == "openai"]
    get_reward_funcs(names or ["format"], judge=None)  # unknown reward names fail here, listing the valid ones
    logger.info(
        "dry run: model=%s dataset=%s rewards=%s loss_type=%s beta=%s num_generations=%s "
        "per_device_train_batch_size=%s max_pixels=%s output_dir=%s deepspeed=%s: arguments are valid",
        model_args.model_name_or_path,
        script_args.dataset_name,
        script_args.reward_funcs,
        training_args.loss_type,
        training_args.beta,
        training_args.num_generations,
        training_args.per_device_train_batch_size,
        script_args.max_pixels,
        training_args.output_dir,
        training_args.deepspeed,
    )


if __name__ == "__main__":
    cli()
