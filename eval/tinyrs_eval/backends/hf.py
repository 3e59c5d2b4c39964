"""transformers backend: batched ``generate`` with left padding, on CPU or GPU."""

from __future__ import annotations

import logging
from typing import Any

import torch

from tinyrs_eval.backends import GenerationSettings, Request
from tinyrs_eval.errors import ConfigError
from tinyrs_eval.prompts import ChatTemplate


logger = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_dtype(dtype: str, device: torch.device | str) -> torch.dtype:
    """``auto``: bfloat16 on a GPU that supports it (else float16), float32 on CPU."""
    if dtype != "auto":
        return _DTYPES[dtype]
    if torch.device(device).type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


class HFBackend:
    name = "hf"

    def __init__(
        self,
        model_path: str,
        settings: GenerationSettings,
        template: ChatTemplate,
        *,
        dtype: str = "auto",
        device: Any = "cpu",
        **_: Any,
    ):
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.settings = settings
        self.device = torch.device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        try:
            self.processor = AutoProcessor.from_pretrained(model_path)
            self.model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=self.dtype)
        except OSError as exc:
            raise ConfigError(f"cannot load --model_path {model_path}: {str(exc).splitlines()[0]}") from exc
        tokenizer = self.processor.tokenizer
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            raise ConfigError(f"{model_path}: the tokenizer has no pad token; batched generation needs one")
        self.model.to(self.device).eval()
        # Stop on the template's stop words as well as the checkpoint's own eos ids.
        eos = self.model.generation_config.eos_token_id
        eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
        for word in template.stop_words:
            tid = tokenizer.convert_tokens_to_ids(word)
            if isinstance(tid, int) and tid != tokenizer.unk_token_id and tid not in eos_ids:
                eos_ids.append(tid)
        self.gen_kwargs: dict[str, Any] = {
            "max_new_tokens": settings.max_new_tokens,
            "do_sample": settings.do_sample,
            "num_beams": settings.beam_size,
            "use_cache": settings.use_cache,
            "eos_token_id": eos_ids,
            "pad_token_id": tokenizer.pad_token_id,
        }
        if settings.do_sample:
            self.gen_kwargs.update(temperature=settings.temperature, top_p=settings.top_p)
        else:  # greedy: neutralise sampling fields a checkpoint's generation_config may carry
            self.gen_kwargs.update(temperature=None, top_p=None, top_k=None)
        logger.info("hf backend: %s on %s (%s), generate %s", model_path, self.device, self.dtype, self.gen_kwargs)

    @torch.inference_mode()
    def generate(self, requests: list[Request]) -> list[str]:
        if not requests:
            return []
        inputs = self.processor(
            text=[r.prompt for r in requests],
            images=[r.image for r in requests],
            padding=True,
            return_tensors="pt",
        ).to(self.device)
        out = self.model.generate(**inputs, **self.gen_kwargs)
        new_tokens = out[:, inputs["input_ids"].shape[1] :]
        return self.processor.batch_decode(new_tokens, skip_special_tokens=True)

    def close(self) -> None:
        del self.model
