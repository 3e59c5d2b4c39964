"""lmdeploy backend (GPU only): one pipeline, batched requests, generation settings passed as ``gen_config=``.

The original passed ``generation_config=``, a keyword lmdeploy swallows, so its settings never applied (anchors 2.3-6).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from tinyrs_eval.backends import GenerationSettings, Request
from tinyrs_eval.errors import ConfigError
from tinyrs_eval.prompts import ChatTemplate


logger = logging.getLogger(__name__)


def build_prompts(requests: list[Request]) -> list[tuple[str, Any]]:
    """lmdeploy VL prompts: ``(user text, PIL image)`` tuples; the engine applies the chat template and puts the
    image tokens before the text, as Qwen2-VL expects."""
    return [(r.query, r.image) for r in requests]


def build_generation_config(lmdeploy: Any, settings: GenerationSettings, template: ChatTemplate) -> Any:
    kwargs: dict[str, Any] = {
        "max_new_tokens": settings.max_new_tokens,
        "do_sample": settings.do_sample,
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "skip_special_tokens": True,
        "stop_words": list(template.stop_words),
    }
    if settings.do_sample:
        kwargs["random_seed"] = settings.seed
    return lmdeploy.GenerationConfig(**kwargs)


def build_engine_config(lmdeploy: Any, engine: str, session_len: int, dtype: str, tp: int) -> Any:
    if dtype == "float32":
        raise ConfigError("lmdeploy runs in float16 or bfloat16; use --dtype auto, bfloat16 or float16")
    if engine == "pytorch":
        return lmdeploy.PytorchEngineConfig(session_len=session_len, dtype=dtype, tp=tp)
    if engine == "turbomind":
        return lmdeploy.TurbomindEngineConfig(session_len=session_len, dtype=dtype, tp=tp)
    raise ConfigError(f"unknown --lmdeploy_engine {engine!r}; choose pytorch or turbomind")


class LmdeployBackend:
    name = "lmdeploy"

    def __init__(
        self,
        model_path: str,
        settings: GenerationSettings,
        template: ChatTemplate,
        *,
        template_path: str | Path,
        dtype: str = "auto",
        engine: str = "pytorch",
        session_len: int = 8192,
        tp: int = 1,
        **_: Any,
    ):
        import lmdeploy

        if settings.beam_size != 1:
            raise ConfigError("--beam_size > 1 is not supported by the lmdeploy backend; use --model_type hf")
        backend_config = build_engine_config(lmdeploy, engine, session_len, dtype, tp)
        # from_json on a file path (a JSON string longer than a file name makes lmdeploy raise).
        chat_template_config = lmdeploy.ChatTemplateConfig.from_json(str(template_path))
        self.gen_config = build_generation_config(lmdeploy, settings, template)
        logger.info("lmdeploy %s engine: %s; %s", engine, backend_config, self.gen_config)
        self.pipe = lmdeploy.pipeline(
            model_path, backend_config=backend_config, chat_template_config=chat_template_config, log_level="WARNING"
        )

    def generate(self, requests: list[Request]) -> list[str]:
        if not requests:
            return []
        responses = self.pipe(build_prompts(requests), gen_config=self.gen_config)
        if not isinstance(responses, list):
            responses = [responses]
        return [r.text for r in responses]

    def close(self) -> None:
        close = getattr(self.pipe, "close", None)
        if callable(close):
            close()
