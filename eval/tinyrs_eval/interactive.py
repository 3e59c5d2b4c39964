"""One model, one image, a conversation: what ``tinyrs-eval infer`` and ``tinyrs-eval chat`` share.

The model is loaded by the benchmark runner's transformers backend (same processor, dtype, stop words and greedy
settings) and prompts are built as the benchmarks build them (``prompts.build_query`` + the chat template), so an
answer here is the answer a benchmark run would score. Streaming uses transformers' TextIteratorStreamer.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from tinyrs_eval import boxes, metrics
from tinyrs_eval.backends import GenerationSettings, Request
from tinyrs_eval.constants import REASONING_SYSTEM_PROMPT
from tinyrs_eval.errors import ConfigError
from tinyrs_eval.prompts import DEFAULT_TEMPLATE, IMAGE_PLACEHOLDER, ChatTemplate, build_query, load_template


logger = logging.getLogger(__name__)

# Task choices: name -> benchmark task type whose tag is added (None: the question is sent as typed).
TASKS: dict[str, str | None] = {"cls": "cls", "vqa": "vqa", "vg": "bbox", "free": None}
TASK_LABELS = {
    "cls": "Classification {CLS}",
    "vqa": "Question answering {VQA}",
    "vg": "Grounding {VG}",
    "free": "Free text (no tag)",
}
REASONING_TEMPLATE = ChatTemplate(meta_instruction=REASONING_SYSTEM_PROMPT)


def _offline() -> bool:
    return any(
        os.environ.get(k, "").lower() in ("1", "true", "yes") for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def check_model_source(name: str) -> None:
    """Fail early, in one line, for a model that cannot be loaded here: a missing folder, a folder without
    config.json, or (offline) a hub id that is not in the local Hugging Face cache."""
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(f"{name}: not a checkpoint folder (no config.json)")
        return
    looks_like_path = name.startswith((".", "/", "~")) or path.exists() or name.count("/") != 1
    if looks_like_path:
        raise ConfigError(f"model folder not found: {name}")
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(name, "config.json"), str):
        return
    if _offline():
        raise ConfigError(
            f"{name} is not a local folder and has not been downloaded into the Hugging Face cache; offline mode "
            f"(HF_HUB_OFFLINE=1) downloads nothing: run `hf download {name}` on a connected machine first, "
            "or pass a local checkpoint folder"
        )


def split_output(raw: str) -> tuple[str, str]:
    """(reasoning, answer) of a possibly partial output: the reasoning block's text and the extracted answer.

    While the answer block is still open (streaming), its text so far is the answer.
    """
    raw = raw or ""
    reasoning = ""
    if "<reasoning>" in raw:
        inner = raw.split("<reasoning>", 1)[1]
        reasoning = inner.split("</reasoning>", 1)[0]
        if "</reasoning>" not in inner:
            return reasoning.strip(), ""
    if "<answer>" in raw and "</answer>" not in raw.rsplit("<answer>", 1)[1]:
        return reasoning.strip(), raw.rsplit("<answer>", 1)[1].strip()
    return reasoning.strip(), metrics.extract_answer(raw)


def parse_output(raw: str, size: tuple[int, int] | None, task: str) -> dict[str, Any]:
    """The JSON fields of one answer: answer, reasoning, boxes (grounding and free text), raw, malformed."""
    reasoning, answer = split_output(raw)
    found: list[dict[str, Any]] = []
    if size and (task == "vg" or (task == "free" and "[" in answer)):
        found = boxes.answer_boxes(answer, size)
    return {
        "answer": answer,
        "reasoning": reasoning,
        "boxes": found,
        "raw": raw,
        "malformed": metrics.is_malformed(raw),
    }


@dataclass
class Turn:
    query: str
    raw: str


def make_query(task: str, question: str, prompt_style: str = "tinyrs") -> str:
    """The user text: the benchmark prompt of that task type (tag added), or the question unchanged for free text."""
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    task_type = TASKS[task]
    if task_type is None:
        return question.strip()
    return build_query(task_type, question, prompt_style)


def render_conversation(template: ChatTemplate, history: list[Turn], query: str) -> str:
    """The generation prompt for a multi-turn chat about one image: the image goes with the first user turn.

    With no history this is exactly ``template.render(query)``, the benchmark prompt.
    """
    if not history:
        return template.render(query)
    prompt = ""
    if template.meta_instruction is not None:
        prompt += f"{template.system}{template.meta_instruction}{template.eosys}"
    for i, turn in enumerate(history):
        image = IMAGE_PLACEHOLDER if i == 0 else ""
        prompt += f"{template.user}{image}{turn.query}{template.eoh}{template.assistant}{turn.raw}"
        prompt += f"{template.eoa}{template.separator}"
    return prompt + f"{template.user}{query}{template.eoh}{template.assistant}"


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class ChatModel:
    """A loaded checkpoint that answers about an image, whole (``generate``) or token by token (``stream``)."""

    def __init__(
        self,
        model_path: str,
        *,
        max_new_tokens: int = 512,
        device: str = "auto",
        dtype: str = "auto",
        prompt_style: str = "tinyrs",
        reasoning_config: str | None = None,
    ):
        from tinyrs_eval.backends.hf import HFBackend

        check_model_source(model_path)
        self.model_path = model_path
        self.prompt_style = prompt_style
        self.reasoning_template = REASONING_TEMPLATE if reasoning_config is None else load_template(reasoning_config)
        settings = GenerationSettings(max_new_tokens=max_new_tokens)
        self.backend = HFBackend(model_path, settings, DEFAULT_TEMPLATE, dtype=dtype, device=resolve_device(device))
        self._lock = threading.Lock()

    def template(self, reasoning: bool) -> ChatTemplate:
        return self.reasoning_template if reasoning else DEFAULT_TEMPLATE

    def prompt(self, history: list[Turn], query: str, reasoning: bool) -> str:
        return render_conversation(self.template(reasoning), history, query)

    def generate(self, image: Image.Image, prompt: str) -> str:
        with self._lock:
            return self.backend.generate([Request(prompt=prompt, query="", image=image)])[0]

    def stream(self, image: Image.Image, prompt: str) -> Iterator[str]:
        """The decoded output so far, after each new piece of text (the last value is the whole output)."""
        import torch
        from transformers import TextIteratorStreamer

        backend = self.backend
        streamer = TextIteratorStreamer(
            backend.processor.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600
        )
        inputs = backend.processor(text=[prompt], images=[image], return_tensors="pt").to(backend.device)
        failure: list[BaseException] = []

        def _run() -> None:
            try:
                with torch.inference_mode():
                    backend.model.generate(**inputs, **backend.gen_kwargs, streamer=streamer)
            except BaseException as exc:  # reported to the reader below
                failure.append(exc)
                streamer.end()

        with self._lock:
            worker = threading.Thread(target=_run, daemon=True)
            worker.start()
            text = ""
            for piece in streamer:
                if piece:
                    text += piece
                    yield text
            worker.join()
        if failure:
            raise RuntimeError(f"generation failed: {type(failure[0]).__name__}: {failure[0]}") from failure[0]
        if not text:
            yield text
