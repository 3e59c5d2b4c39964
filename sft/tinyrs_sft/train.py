"""Supervised fine-tuning of Qwen2-VL / Qwen2.5-VL (TinyRS pretraining, SFT and CoT-SFT stages).

Single process (CPU or one GPU):
    tinyrs-sft train --config sft/configs/sft.yaml --model_name_or_path MODEL --dataset_name DATA.json \
        --image_folder IMAGES
    python -m tinyrs_sft.train --config sft/configs/sft.yaml ...
Several GPUs, DeepSpeed ZeRO-3 (the paper's setting, 4 x H100):
    deepspeed --num_gpus 4 --module tinyrs_sft.train --config sft/configs/pretrain.yaml \
        --deepspeed sft/configs/deepspeed/zero3.json
    torchrun --nproc_per_node 4 -m tinyrs_sft.train --config sft/configs/pretrain.yaml
    accelerate launch --num_processes 4 -m tinyrs_sft.train --config sft/configs/pretrain.yaml
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import transformers

from tinyrs_sft.check_data import ScanReport, default_image_folder
from tinyrs_sft.checkpoints import OutputDirError, check_output_dir, folder_size, resolve_resume, write_error_message
from tinyrs_sft.cliargs import EXIT_FAILURE, EXIT_USAGE, setup_logging
from tinyrs_sft.collator import SupervisedCollator
from tinyrs_sft.config import DataArguments, ModelArguments, TrainingArguments, parse_args
from tinyrs_sft.data import SupervisedDataset, VisionBounds, apply_bounds_to_processor
from tinyrs_sft.dry_run import dry_run
from tinyrs_sft.model import apply_lora, compute_dtype, configure_trainable, load_model, load_processor
from tinyrs_sft.model_card import infer_stage, render_card, write_model_card
from tinyrs_sft.optim import count_parameters_by_part
from tinyrs_sft.records import DataError, MediaPolicy, RecordSource
from tinyrs_sft.scan import CACHE_NAME, cache_key, save_report, scan_once
from tinyrs_sft.trainer import SFTTrainer


logger = logging.getLogger("tinyrs_sft")

MAX_ERRORS_LOGGED = 100


def configure_logging(training_args: TrainingArguments) -> None:
    setup_logging(logging.INFO, main_process=training_args.should_log)
    # Our own start-up report (resolved arguments, parameter counts, groups) is INFO on the main process.
    logger.setLevel(logging.INFO if training_args.should_log else logging.WARNING)
    transformers.utils.logging.set_verbosity(training_args.get_process_log_level())


def init_deepspeed_comm(training_args: TrainingArguments) -> None:
    """Make DeepSpeed's communicator see every rank before ZeRO-3 partitions the weights at load time.

    (With ``--use_cpu`` accelerate sets up torch.distributed but not deepspeed.comm, so ``zero.Init`` would count one
    rank and fail its batch-size check.)
    """
    if not training_args.deepspeed:
        return
    _ = training_args.device  # lets accelerate initialise torch.distributed first
    import deepspeed

    if not deepspeed.comm.is_initialized():
        deepspeed.init_distributed(dist_backend="gloo" if training_args.use_cpu else None)


def checked_indices(
    source: RecordSource, policy: MediaPolicy, data_args: DataArguments, output_dir: str
) -> tuple[ScanReport | None, bool]:
    """Check the whole file once per run (sharded over the ranks, or read from the output folder's cache); fail on
    bad records, or skip and count them with --skip_bad_samples. Returns ``(report, read_from_cache)``."""
    if not data_args.check_data:
        logger.warning("--check_data False: bad records will only be found when the data loader reaches them")
        return None, False
    started = time.perf_counter()
    report, cached = scan_once(
        source, policy, data_args.verify_images, output_dir if data_args.data_check_cache else None
    )
    if not report.total:
        raise DataError(f"{source.path}: no records")
    for line in report.errors[:MAX_ERRORS_LOGGED]:
        logger.error(line)
    if report.n_bad > MAX_ERRORS_LOGGED:
        logger.error("... and %d more (tinyrs-sft check-data lists them all)", report.n_bad - MAX_ERRORS_LOGGED)
    if report.n_bad and not data_args.skip_bad_samples:
        raise DataError(
            f"{source.path}: {report.n_bad} of {report.total} records are bad (first: {report.errors[0]}). Fix them "
            "(tinyrs-sft check-data lists every one) or pass --skip_bad_samples True to skip them."
        )
    if report.n_bad:
        logger.warning("skipping %d bad records of %d (--skip_bad_samples)", report.n_bad, report.total)
    how = f"read from {Path(output_dir) / CACHE_NAME}" if cached else f"{time.perf_counter() - started:.1f} s"
    logger.info("data check: %d usable records of %d in %s (%s)", len(report.good), report.total, source.path, how)
    return report, cached


def main(model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments) -> None:
    # --- logging ---
    configure_logging(training_args)
    logger.info("model arguments: %s", model_args)
    logger.info("data arguments: %s", data_args)

    # --- data check (no model needed) ---
    source = RecordSource(data_args.dataset_name)
    policy = MediaPolicy(
        image_folder=default_image_folder(data_args.dataset_name, data_args.image_folder),
        allow_external_paths=data_args.allow_external_image_paths,
        max_image_pixels=data_args.max_image_pixels,
    )
    report, cached = checked_indices(source, policy, data_args, training_args.output_dir)

    # --- output folder: writable, room for the model, and where to resume from (before the model loads) ---
    min_free = 0 if model_args.use_peft else folder_size(model_args.model_name_or_path)
    check_output_dir(training_args.output_dir, min_free_bytes=min_free)
    resume = resolve_resume(training_args.resume_from_checkpoint, training_args.output_dir)
    if report is not None and data_args.data_check_cache and not cached and training_args.process_index == 0:
        key = cache_key(source.path, policy, data_args.verify_images)
        logger.info("data check report saved to %s", save_report(training_args.output_dir, key, report))

    # --- model ---
    init_deepspeed_comm(training_args)
    dtype = compute_dtype(training_args.bf16, training_args.fp16)
    model = load_model(
        model_args.model_name_or_path,
        dtype,
        disable_flash_attn2=model_args.disable_flash_attn2,
        cache_dir=model_args.cache_dir,
        bits=model_args.bits,
        double_quant=model_args.double_quant,
        quant_type=model_args.quant_type,
    )
    configure_trainable(model, model_args.freeze_vision_tower, model_args.freeze_llm, model_args.tune_merger)
    if model_args.use_peft:
        modules_to_save = []
        if not model_args.freeze_vision_tower:
            modules_to_save.append("visual")
        elif model_args.tune_merger:
            modules_to_save.append("merger")
        model = apply_lora(
            model,
            rank=model_args.lora_r,
            alpha=model_args.lora_alpha,
            dropout=model_args.lora_dropout,
            bias=model_args.lora_bias,
            use_dora=model_args.use_dora,
            exclude=model_args.lora_exclude_list(),
            vision_lora=model_args.vision_lora,
            num_lora_modules=model_args.num_lora_modules,
            modules_to_save=modules_to_save,
        )
    for part, c in count_parameters_by_part(model).items():
        logger.info("%-6s parameters: %12d trainable of %12d", part, c["trainable"], c["total"])

    # --- processor and dataset ---
    processor = load_processor(model_args.model_name_or_path, cache_dir=model_args.cache_dir)
    bounds = VisionBounds(
        image_min_pixels=data_args.image_min_pixels,
        image_max_pixels=data_args.image_max_pixels,
        video_min_pixels=data_args.video_min_pixels,
        video_max_pixels=data_args.video_max_pixels,
        fps=data_args.fps,
    )
    apply_bounds_to_processor(processor, bounds)
    logger.info("image pixel bounds: %s", dict(processor.image_processor.size))
    dataset = SupervisedDataset(
        source,
        processor,
        policy,
        bounds,
        data_args.max_seq_length,
        indices=report.good if report is not None else None,
        skip_bad_samples=data_args.skip_bad_samples,
    )
    if data_args.training_stage != "auto":
        stage, stage_source = data_args.training_stage, "given by --training_stage"
    else:
        stage, stage_source = infer_stage(source, report.good if report is not None else None)
        stage_source = f"read from the data: {stage_source}"
    logger.info("training stage: %s (%s)", stage, stage_source)
    del report

    # --- trainer ---
    trainer = SFTTrainer(
        model=model,
        args=training_args,
        train_dataset=dataset,
        data_collator=SupervisedCollator(
            processor.tokenizer,
            vision_keepalive=training_args.world_size > 1,
            image_processor=processor.image_processor,
        ),
        processing_class=processor,
    )

    # --- train (resume from --resume_from_checkpoint, else from the newest complete checkpoint-* in output_dir) ---
    if resume:
        logger.info("resuming from %s", resume)
    trainer.train(resume_from_checkpoint=resume)
    if dataset.skipped.value:
        logger.warning(
            "%d records were skipped for max_seq_length=%d", dataset.skipped.value, data_args.max_seq_length
        )
    if dataset.unusable.value:
        logger.warning(
            "%d records were skipped during training because their data turned bad after the start-up check "
            "(--skip_bad_samples; each is logged above with file, record and problem)",
            dataset.unusable.value,
        )

    # --- save ---
    trainer.save_model(training_args.output_dir)
    trainer.save_state()
    if trainer.is_world_process_zero():
        losses = [e["train_loss"] for e in trainer.state.log_history if "train_loss" in e]
        card = render_card(
            model_args,
            data_args,
            training_args,
            stage,
            stage_source,
            n_records=len(dataset),
            world_size=training_args.world_size,
            global_step=trainer.state.global_step,
            train_loss=losses[-1] if losses else None,
        )
        write_model_card(training_args.output_dir, card)
    logger.info("saved final model to %s", training_args.output_dir)


def cli(argv: list[str] | None = None) -> int:
    """Parse and train (or dry-run). Bad arguments, bad data and an unwritable output folder end with one line on
    stderr, not a traceback: a usage error exits 2 (``SystemExit``), the others return 1."""
    try:
        model_args, data_args, training_args = parse_args(argv)
    except ValueError as err:
        sys.stderr.write(f"tinyrs-sft train: error: {err}\n")
        raise SystemExit(EXIT_USAGE) from None
    if training_args.dry_run:
        # Launch scripts use this so that a renamed flag, a missing file or a bad setting fails here, not on a cluster.
        configure_logging(training_args)
        logger.info("dry run: arguments parse\n%s\n%s", model_args, data_args)
        problems = dry_run(model_args, data_args, training_args)
        for problem in problems:
            sys.stderr.write(f"tinyrs-sft train: error: {problem}\n")
        if problems:
            sys.stderr.write(f"tinyrs-sft train: dry run found {len(problems)} problem(s)\n")
            return EXIT_FAILURE
        logger.info("dry run: arguments are valid, the paths exist and the sampled records are good")
        return 0
    try:
        main(model_args, data_args, training_args)
    except (DataError, OutputDirError) as err:
        # A DataError from a data-loader worker carries the worker's traceback text: keep its last line.
        message = str(err).strip().splitlines()[-1] if str(err).strip() else repr(err)
        message = message.removeprefix(f"{type(err).__module__}.{type(err).__name__}: ")
        sys.stderr.write(f"tinyrs-sft train: error: {message}\n")
        return EXIT_FAILURE
    except OSError as err:
        message = write_error_message(err)
        if message is None:
            raise
        sys.stderr.write(f"tinyrs-sft train: error: {message}\n")
        return EXIT_FAILURE
    return 0


if __name__ == "__main__":
    sys.exit(cli())
