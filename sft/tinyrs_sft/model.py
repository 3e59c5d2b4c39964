"""Model and processor loading, freezing policy, LoRA/QLoRA.

The model class comes from the checkpoint's ``config.json`` (``model_type``) through ``AutoModelForImageTextToText``,
never from substrings of the path (the original chose Qwen2 vs Qwen2.5 by looking for "Qwen2.5" in the id).
"""

from __future__ import annotations

import importlib.util
import logging
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

from tinyrs_sft.constants import SUPPORTED_MODEL_TYPES


logger = logging.getLogger(__name__)

# Keep in sync with docs/data-format.md (the official Qwen2-VL chat template); used only when a checkpoint has none.
QWEN2VL_CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}<|im_start|>system\n"
    "You are a helpful assistant.<|im_end|>\n"
    "{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: "
    "{% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% endif %}"
)


def compute_dtype(bf16: bool, fp16: bool) -> torch.dtype:
    """fp16 if requested, else bf16 if requested, else fp32 (as the original)."""
    if fp16:
        return torch.float16
    if bf16:
        return torch.bfloat16
    return torch.float32


def attention_implementation(disable_flash_attn2: bool) -> str:
    """flash_attention_2 when allowed, installed and on CUDA; sdpa otherwise (with a log line saying why)."""
    if disable_flash_attn2:
        return "sdpa"
    if importlib.util.find_spec("flash_attn") is None:
        logger.warning("flash-attn is not installed; using sdpa attention")
        return "sdpa"
    if not torch.cuda.is_available():
        logger.warning("no CUDA device; using sdpa attention instead of flash-attention 2")
        return "sdpa"
    return "flash_attention_2"


def check_model_type(model_id: str, cache_dir: str | None = None) -> Any:
    """Load the checkpoint config and refuse model types this trainer does not know."""
    config = AutoConfig.from_pretrained(model_id, cache_dir=cache_dir)
    if config.model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(
            f"{model_id}: model_type {config.model_type!r} is not supported (supported: {list(SUPPORTED_MODEL_TYPES)})"
        )
    return config


def load_processor(model_id: str, cache_dir: str | None = None) -> Any:
    processor = AutoProcessor.from_pretrained(model_id, cache_dir=cache_dir)
    if not getattr(processor, "chat_template", None):
        logger.warning("%s has no chat template; using the official Qwen2-VL template", model_id)
        processor.chat_template = QWEN2VL_CHAT_TEMPLATE
    processor.tokenizer.padding_side = "right"
    return processor


def quantization_config(bits: int, dtype: torch.dtype, double_quant: bool, quant_type: str) -> Any:
    """bitsandbytes config for QLoRA (vision tower kept in full precision, as in the original)."""
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ImportError(f"bits={bits} needs bitsandbytes: pip install 'tinyrs-sft[qlora]'")
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=bits == 4,
        load_in_8bit=bits == 8,
        llm_int8_skip_modules=["visual", "lm_head"],
        bnb_4bit_compute_dtype=dtype,
        bnb_4bit_use_double_quant=double_quant,
        bnb_4bit_quant_type=quant_type,
    )


def load_model(
    model_id: str,
    dtype: torch.dtype,
    disable_flash_attn2: bool = False,
    cache_dir: str | None = None,
    bits: int = 16,
    double_quant: bool = True,
    quant_type: str = "nf4",
) -> nn.Module:
    """Load a Qwen2-VL / Qwen2.5-VL checkpoint with the class its config names."""
    config = check_model_type(model_id, cache_dir)
    kwargs: dict[str, Any] = {"dtype": dtype, "attn_implementation": attention_implementation(disable_flash_attn2)}
    if bits in (4, 8):
        kwargs["quantization_config"] = quantization_config(bits, dtype, double_quant, quant_type)
    model = AutoModelForImageTextToText.from_pretrained(model_id, config=config, cache_dir=cache_dir, **kwargs)
    set_use_cache(model.config, False)
    if bits in (4, 8):
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    logger.info(
        "loaded %s (%s, %s, attention=%s)", model_id, type(model).__name__, dtype, kwargs["attn_implementation"]
    )
    return model


def set_use_cache(config: Any, value: bool) -> None:
    """Set ``use_cache`` where the config has it (top level and/or ``text_config``, depending on the version)."""
    for cfg in (config, getattr(config, "text_config", None)):
        if cfg is not None and "use_cache" in cfg.to_dict():
            cfg.use_cache = value


def configure_trainable(model: nn.Module, freeze_vision_tower: bool, freeze_llm: bool, tune_merger: bool) -> None:
    """Original freezing policy: LLM+lm_head follow ``freeze_llm``; the vision tower ``freeze_vision_tower``; the
    merger follows ``tune_merger`` regardless of the vision tower."""
    for name, param in model.named_parameters():
        if "merger" in name:
            param.requires_grad_(tune_merger)
        elif "visual" in name:
            param.requires_grad_(not freeze_vision_tower)
        else:
            param.requires_grad_(not freeze_llm)


def lora_target_modules(
    model: nn.Module, exclude: list[str], vision_lora: bool, num_lora_modules: int = -1
) -> list[str]:
    """Names of the Linear/Embedding modules that get LoRA (original rule), skipping ``exclude`` substrings, the vision
    tower unless ``vision_lora`` and the merger always; ``num_lora_modules > 0`` keeps the last N."""
    skip = list(exclude) + ["merger"] + ([] if vision_lora else ["visual"])
    names = [
        name
        for name, module in model.named_modules()
        if isinstance(module, (nn.Linear, nn.Embedding)) and not any(s in name for s in skip)
    ]
    if num_lora_modules > 0:
        names = names[-num_lora_modules:]
    return names


def apply_lora(
    model: nn.Module,
    rank: int,
    alpha: int,
    dropout: float,
    bias: str,
    use_dora: bool,
    exclude: list[str],
    vision_lora: bool,
    num_lora_modules: int,
    modules_to_save: list[str],
) -> nn.Module:
    """Wrap the model with peft LoRA adapters. Parts that stay fully trainable (merger, unfrozen vision tower) are
    ``modules_to_save`` so they are saved with the adapter and restored by the merge."""
    from peft import LoraConfig, get_peft_model

    targets = lora_target_modules(model, exclude, vision_lora, num_lora_modules)
    if not targets:
        raise ValueError("no module matches the LoRA target rule; check --lora_namespan_exclude / --num_lora_modules")
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        bias=bias,
        use_dora=use_dora,
        target_modules=targets,
        modules_to_save=modules_to_save or None,
        task_type="CAUSAL_LM",
    )
    logger.info("LoRA on %d modules (r=%d, alpha=%d, dora=%s)", len(targets), rank, alpha, use_dora)
    return get_peft_model(model, config)
