"""vLLM backend (optional, GPU): the rendered prompt plus the image as multi-modal data, one batched call."""

from __future__ import annotations

import logging
from typing import Any

from tinyrs_eval.backends import GenerationSettings, Request
from tinyrs_eval.errors import ConfigError
from tinyrs_eval.prompts import ChatTemplate


logger = logging.getLogger(__name__)


def build_inputs(requests: list[Request]) -> list[dict[str, Any]]:
    return [{"prompt": r.prompt, "multi_modal_data": {"image": r.image}} for r in requests]


class VllmBackend:
    name = "vllm"

    def __init__(
        self,
        model_path: str,
        settings: GenerationSettings,
        template: ChatTemplate,
        *,
        dtype: str = "auto",
        session_len: int = 8192,
        tp: int = 1,
        **_: Any,
    ):
        from vllm import LLM, SamplingParams

        if settings.beam_size != 1:
            raise ConfigError("--beam_size > 1 is not supported by the vllm backend; use --model_type hf")
        self.llm = LLM(
            model=model_path,
            dtype=dtype,
            seed=settings.seed,
            max_model_len=session_len,
            tensor_parallel_size=tp,
            limit_mm_per_prompt={"image": 1},
        )
        self.params = SamplingParams(
            max_tokens=settings.max_new_tokens,
            temperature=settings.temperature if settings.do_sample else 0.0,
            top_p=settings.top_p if settings.do_sample else 1.0,
            stop=list(template.stop_words),
            skip_special_tokens=True,
            seed=settings.seed if settings.do_sample else None,
        )

    def generate(self, requests: list[Request]) -> list[str]:
        if not requests:
            return []
        outputs = self.llm.generate(build_inputs(requests), self.params, use_tqdm=False)
        return [o.outputs[0].text for o in outputs]

    def close(self) -> None:
        del self.llm
