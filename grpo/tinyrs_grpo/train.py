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

import hashlib
import logging
import os
import sys
from collections.abc import Sequence
from functools import partial
from typing import Any

import datasets
import transformers
from trl import GRPOConfig, GRPOTrainer, ModelConfig, get_peft_config

from tinyrs_grpo import __version__
from tinyrs_grpo.callbacks import CorruptImageSummaryCallback, JsonlLogCallback, JudgeSummaryCallback
from tinyrs_grpo.checkpoints import (
    OutputDirError,
    check_output_dir,
    folder_size,
    keep_used_weight_conversions,
    load_model_weights,
    resolve_resume,
    write_error_message,
)
from tinyrs_grpo.cliargs import EXIT_FAILURE, EXIT_USAGE, UsageError, setup_logging
from tinyrs_grpo.config import GRPOScriptArguments, make_parser
from tinyrs_grpo.data import (
    BadRowError,
    DatasetError,
    load_grpo_dataset,
    log_report,
    normalize_split,
    scan_rows,
    select_split,
)
from tinyrs_grpo.dry_run import PathError, check_usage, dry_run, format_settings, one_line, wants_dry_run
from tinyrs_grpo.guard import guard_images
from tinyrs_grpo.judge import API_KEY_ENV, Judge, make_judge_reward
from tinyrs_grpo.model import load_processor, pixel_bounds, resize_dataset_images
from tinyrs_grpo.model_card import ModelCard, model_card
from tinyrs_grpo.noise import silence_known_noise
from tinyrs_grpo.rewards import get_reward_funcs
from tinyrs_grpo.scan import cached_scan, check_once


logger = logging.getLogger("tinyrs_grpo")


def main(
    script_args: GRPOScriptArguments, training_args: GRPOConfig, model_args: ModelConfig, recipe: str | None = None
) -> GRPOTrainer:
    """Train, save, and write the model card (``recipe``: the ``--config`` file the arguments came from, if any)."""
    # ---- logging ------------------------------------------------------------------------------------------------
    log_level = training_args.get_process_log_level()
    setup_logging(log_level, main_process=training_args.should_log)
    # tinyrs_grpo's own messages (data summary, judge, settings) show on the main process by default
    logger.setLevel(min(log_level, logging.INFO) if training_args.should_log else log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    check_usage(script_args, training_args, model_args)  # names and counts first: a typo costs no model load
    attach_deepspeed_to_process_group(training_args)

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
            prompt=script_args.judge_prompt,
        )
    logger.info("judge: %s", judge if judge is not None else "none (open-ended rows are dropped)")

    # ---- processor (the checkpoint's pixel bounds unless --min_pixels / --max_pixels are given) --------------------
    try:
        processor = load_processor(
            model_args.model_name_or_path,
            min_pixels=script_args.min_pixels,
            max_pixels=script_args.max_pixels,
            revision=model_args.model_revision,
            trust_remote_code=training_args.trust_remote_code,
        )
    except ValueError as exc:  # bounds that do not fit the checkpoint's, or no pixel-bounded image processor
        raise UsageError(f"{model_args.model_name_or_path}: {exc}") from None

    # ---- data -----------------------------------------------------------------------------------------------------
    try:
        train_dataset, eval_dataset = load_splits(script_args, training_args, processor, judge is not None)
    except (DatasetError, BadRowError) as exc:
        name = str(script_args.dataset_name)
        raise DatasetError(str(exc) if str(exc).startswith(name) else f"{name}: {exc}") from exc

    # ---- rewards (the judge's reward is built here and handed to the registry) -----------------------------------
    judge_reward = make_judge_reward(judge) if judge is not None else None
    reward_funcs = get_reward_funcs(script_args.reward_funcs, judge_reward, script_args.reward_module)

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
    min_pixels, max_pixels = pixel_bounds(processor)
    logger.info("GRPO: %s", format_settings(script_args, training_args, model_args, min_pixels, max_pixels))
    callbacks = [
        JsonlLogCallback(os.path.join(training_args.output_dir, "train_log.jsonl")),
        CorruptImageSummaryCallback(training_args.output_dir),
    ]
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
    trainer.card = model_card(
        script_args, training_args, model_args, recipe, len(train_dataset), (min_pixels, max_pixels)
    )

    # ---- train (from the newest complete checkpoint in output_dir unless --resume_from_checkpoint says otherwise) --
    if checkpoint:
        logger.info("resuming from %s", checkpoint)
    trainer.train(resume_from_checkpoint=checkpoint)

    # ---- save -------------------------------------------------------------------------------------------------------
    trainer.save_model(training_args.output_dir)
    if trainer.accelerator.is_main_process:
        processor.save_pretrained(training_args.output_dir)
    trainer.create_model_card()  # README.md: base model, data, recipe, stage (replaces TRL's stock card)
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

    card: ModelCard | None = None  # set by main(); TRL's stock card is written when it is None

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        if not load_model_weights(self, resume_from_checkpoint, model):
            super()._load_from_checkpoint(resume_from_checkpoint, model)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        # Standard tensor names under ZeRO-3 too (not model.model.*; see keep_used_weight_conversions).
        keep_used_weight_conversions(self.accelerator.unwrap_model(self.model))
        super()._save(output_dir, state_dict=state_dict)

    def create_model_card(self, *args: Any, **kwargs: Any) -> None:
        """Called by TRL at every checkpoint save (and by push_to_hub): write our card instead of the stock one."""
        if self.card is None:
            super().create_model_card(*args, **kwargs)
        elif self.is_world_process_zero():
            self.card.write(self.args.output_dir, steps=self.state.global_step)


def load_splits(
    script_args: GRPOScriptArguments, training_args: GRPOConfig, processor: Any, judge_enabled: bool
) -> tuple[Any, Any]:
    """Load, check and normalise the train split (and the test split when evaluating).

    The row check runs once per run, on the main process, and is cached next to the output (tinyrs_grpo.scan);
    the images of the returned splits are decoded on access with ``--on_corrupt_image`` (tinyrs_grpo.guard).
    """
    raw = load_grpo_dataset(
        script_args.dataset_name, script_args.dataset_config, script_args.allow_external_image_paths
    )
    splits = [script_args.dataset_train_split]
    if training_args.eval_strategy != "no":
        splits.append(script_args.dataset_test_split)
    prepared = []
    for split in splits:
        dataset = select_split(raw, split)
        report = check_once(partial(_checked, dataset, split, script_args, training_args, processor, judge_enabled))
        with training_args.main_process_first(desc="preparing the GRPO dataset"):
            dataset = normalize_split(dataset, report)
            if training_args.use_vllm:  # vLLM reads the checkpoint's own pixel bounds: hand it pre-bounded images
                dataset = resize_dataset_images(dataset, processor.image_processor)
        prepared.append(
            guard_images(dataset, split, script_args.on_corrupt_image, report.kept, training_args.output_dir)
        )
    return prepared[0], (prepared[1] if len(prepared) > 1 else None)


def _checked(
    dataset: Any,
    split: str,
    script_args: GRPOScriptArguments,
    training_args: GRPOConfig,
    processor: Any,
    judge_enabled: bool,
) -> Any:
    """The main process's row check of one split: cached scan, then the verdict (bad rows stop or are skipped)."""
    min_pixels, max_pixels = pixel_bounds(processor)
    settings = dict(
        split=split,
        judge_enabled=judge_enabled,
        max_prompt_length=script_args.max_prompt_length,
        min_pixels=min_pixels,
        max_pixels=max_pixels,
        verify_images=script_args.verify_images,
        allow_external_image_paths=script_args.allow_external_image_paths,
        processor=getattr(processor, "name_or_path", None) or str(processor.tokenizer.name_or_path),
        chat_template=hashlib.sha256(str(getattr(processor, "chat_template", "")).encode()).hexdigest(),
    )
    use_processor = processor if script_args.max_prompt_length is not None else None

    def scan() -> Any:
        return scan_rows(
            dataset,
            split,
            judge_enabled=judge_enabled,
            processor=use_processor,
            max_prompt_length=script_args.max_prompt_length,
            verify_images=script_args.verify_images,
        )

    def verdict(report: Any) -> None:  # bad rows stop the run (or are skipped), the drops are logged
        log_report(report, script_args.skip_bad_rows, script_args.max_prompt_length)

    return cached_scan(scan, script_args.dataset_name, split, settings, training_args.output_dir, verdict)


def attach_deepspeed_to_process_group(training_args: GRPOConfig) -> None:
    """With ``--use_cpu`` under a launcher, accelerate starts torch.distributed (gloo) but not deepspeed.comm, so
    ZeRO-3's model-init context would see a world size of 1 and reject the batch sizes. Wrap the live group.

    Only an existing process group is wrapped, with its own backend; without one (a single process, no launcher)
    nothing happens. (tinyrs_sft's ``init_deepspeed_comm`` differs: it starts deepspeed.comm itself, gloo on CPU,
    also when no group exists, hence the different name.)
    """
    if not training_args.deepspeed:
        return
    _ = training_args.device  # sets up the process group
    import torch.distributed

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        import deepspeed

        if not deepspeed.comm.is_initialized():
            deepspeed.init_distributed(dist_backend=torch.distributed.get_backend())


def reject_key_in_config(path: str) -> None:
    """Refuse a recipe that carries the judge key (TRL would export its ``env:`` block): keys stay out of files."""
    import yaml

    with open(path, encoding="utf-8") as handle:
        config = yaml.safe_load(handle) or {}
    env = config.get("env") if isinstance(config, dict) else None
    if isinstance(env, dict) and API_KEY_ENV in env:
        raise ValueError(f"{path}: remove {API_KEY_ENV} from the env block; export it in the shell instead")


def cli(argv: Sequence[str] | None = None) -> int:
    """Parse ``--config recipe.yaml`` plus flags (flags win) and run ``main`` (or the dry run).

    Every expected failure ends as one line on stderr: a usage error exits 2 (``SystemExit``), bad data, paths and
    runtime failures return 1.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if "--version" in args:
        sys.stdout.write(f"tinyrs-grpo {__version__}\n")
        return 0
    silence_known_noise()
    implied_cpu = False
    if wants_dry_run(args) and "--use_cpu" not in args and not gpu_available():
        args, implied_cpu = [*args, "--use_cpu", "true"], True  # a login node: let --bf16 true parse
    recipe = args[args.index("--config") + 1] if "--config" in args[:-1] else None
    try:
        if recipe is not None:
            reject_key_in_config(recipe)
        script_args, training_args, model_args = make_parser().parse(args)
    except (ValueError, OSError) as exc:
        raise SystemExit(fail(exc, EXIT_USAGE)) from None
    try:
        if script_args.dry_run:
            dry_run(script_args, training_args, model_args, implied_cpu=implied_cpu)
        else:
            main(script_args, training_args, model_args, recipe=recipe)
    except UsageError as exc:
        raise SystemExit(fail(exc, EXIT_USAGE)) from None
    except (DatasetError, OutputDirError, PathError) as exc:
        return fail(exc, EXIT_FAILURE)
    except OSError as exc:
        message = write_error_message(exc)
        if message is None:
            raise
        return fail(message, EXIT_FAILURE)
    return 0


def fail(error: Any, code: int) -> int:
    """Report ``error`` in one line on stderr; returns ``code``."""
    sys.stderr.write(f"tinyrs-grpo train: error: {one_line(str(error))}\n")
    return code


def gpu_available() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    sys.exit(cli())
