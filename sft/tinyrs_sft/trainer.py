"""The HF Trainer with TinyRS parameter groups and complete (inference-ready) checkpoints."""

from __future__ import annotations

import logging
from typing import Any

import torch
from transformers import Trainer

from tinyrs_sft.checkpoints import keep_used_weight_conversions, load_model_weights
from tinyrs_sft.model import set_use_cache
from tinyrs_sft.optim import build_param_groups, log_param_groups, offloads_optimizer


logger = logging.getLogger(__name__)


class SFTTrainer(Trainer):
    """``create_optimizer`` builds vision / merger / LLM groups (each with decay and no-decay halves), so
    ``--vision_lr``/``--merger_lr`` and the no-decay set hold under every DeepSpeed config without an optimizer block.

    ``--loss_normalization``: ``global_tokens`` keeps the Trainer's transformers-5 behaviour (it counts the supervised
    tokens of the whole global batch, ``num_items_in_batch``, and the model divides the summed token losses by it).
    ``micro_batch`` stops that count, so the model returns the mean over each micro-batch's supervised tokens and the
    Trainer divides it by the accumulation steps; data-parallel ranks average their gradients (the original).
    ``per_sample`` averages each record's token losses first and then the records of the micro-batch, so that tasks
    with one-word answers are not drowned by tasks whose answers are long (boxes, reasoning) in a multi-task mix.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if getattr(self.args, "loss_normalization", "global_tokens") in ("micro_batch", "per_sample"):
            self.model_accepts_loss_kwargs = False  # no num_items_in_batch: mean per micro-batch
            self.loss_is_scaled_for_ga = False  # ...then divided by the gradient accumulation steps
        logger.info("loss normalisation: %s", getattr(self.args, "loss_normalization", "global_tokens"))

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, **kwargs: Any):
        if getattr(self.args, "loss_normalization", "global_tokens") != "per_sample":
            return super().compute_loss(model, inputs, return_outputs=return_outputs, **kwargs)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        loss = per_sample_loss(outputs.logits, labels)
        return (loss, outputs) if return_outputs else loss

    def create_optimizer(self, model: Any = None) -> torch.optim.Optimizer:
        if self.optimizer is not None:
            return self.optimizer
        opt_model = self.model if model is None else model
        args = self.args
        groups, specs = build_param_groups(
            opt_model, args.learning_rate, args.weight_decay, vision_lr=args.vision_lr, merger_lr=args.merger_lr
        )
        log_param_groups(specs)
        ds_config = getattr(args, "hf_deepspeed_config", None)
        if self.is_deepspeed_enabled and ds_config is not None and offloads_optimizer(ds_config.config):
            # ZeRO-Offload needs DeepSpeed's CPU Adam; it honours per-group lr and weight_decay.
            from deepspeed.ops.adam import DeepSpeedCPUAdam

            self.optimizer = DeepSpeedCPUAdam(
                groups,
                lr=args.learning_rate,
                betas=(args.adam_beta1, args.adam_beta2),
                eps=args.adam_epsilon,
                weight_decay=args.weight_decay,
                adamw_mode=True,
            )
            logger.info("optimizer: DeepSpeedCPUAdam (AdamW mode) for ZeRO-Offload")
            return self.optimizer
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(args, opt_model)
        optimizer_kwargs.pop("params", None)
        self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        logger.info("optimizer: %s", optimizer_cls.__name__)
        return self.optimizer

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        # Checkpoints are inference folders: re-enable the KV cache in the saved config (training disables it).
        model = self.accelerator.unwrap_model(self.model)
        config = getattr(model, "config", None)
        # Standard tensor names under ZeRO-3 too (not model.model.*; see keep_used_weight_conversions).
        keep_used_weight_conversions(model)
        if config is not None:
            set_use_cache(config, True)
        try:
            super()._save(output_dir, state_dict=state_dict)
        finally:
            if config is not None:
                set_use_cache(config, False)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        # The Trainer's own loader silently restores nothing for Qwen2-VL under transformers 5 (see
        # tinyrs_sft.checkpoints.load_model_weights); DeepSpeed / PEFT checkpoints keep the Trainer's path.
        if not load_model_weights(self, resume_from_checkpoint, model):
            super()._load_from_checkpoint(resume_from_checkpoint, model)


def per_sample_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over the records of each record's mean next-token loss on its supervised (label != -100) tokens.

    Records without a supervised token are left out; a micro-batch without any gives a zero loss that still reaches
    every parameter (so ZeRO-3 ranks stay in step).
    """
    shift_logits = logits[:, :-1, :].float()
    shift_labels = labels[:, 1:].to(shift_logits.device)
    token_loss = torch.nn.functional.cross_entropy(
        shift_logits.reshape(-1, shift_logits.size(-1)), shift_labels.reshape(-1), ignore_index=-100, reduction="none"
    ).view(shift_labels.shape)
    counts = (shift_labels != -100).sum(dim=1)
    has_tokens = counts > 0
    if not bool(has_tokens.any()):
        return shift_logits.sum() * 0.0
    per_record = token_loss.sum(dim=1)[has_tokens] / counts[has_tokens]
    return per_record.mean()
