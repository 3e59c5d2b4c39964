"""Chat prompts rendered with a checkpoint's processor (the GPU tests build their batches from them)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def chat_texts(processor: Any, questions: Sequence[str], answers: Sequence[str] | None = None) -> list[str]:
    """One Qwen2-VL prompt per question, each with one image: with ``answers`` the assistant turn is appended (a
    training example), without them the generation prompt (inference)."""
    texts = []
    for i, question in enumerate(questions):
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
        if answers is not None:
            messages.append({"role": "assistant", "content": [{"type": "text", "text": answers[i]}]})
        texts.append(processor.apply_chat_template(messages, add_generation_prompt=answers is None))
    return texts
