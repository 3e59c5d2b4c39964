"""Shared helpers of the GPU tests (tests/gpu): each test skips itself without CUDA.

The root conftest already skips items marked ``gpu`` when CUDA is absent; the ``cuda`` fixture repeats the check so a
test run with ``-p no:...`` or from another root still skips instead of failing. ``GPU_CHECK_MODEL`` (set by
benchmarks/gpu/gpu_check.py) points the lmdeploy test at the real-size checkpoint instead of the tiny one.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


FIXTURE_IMAGES = Path(__file__).resolve().parents[1] / "fixtures" / "images"


@pytest.fixture
def cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    return torch.device("cuda")


@pytest.fixture
def scene_images():
    from PIL import Image

    names = ["scene_112x84.png", "scene_84x112.png", "scene_56.png"]
    return [Image.open(FIXTURE_IMAGES / n).convert("RGB") for n in names]


@pytest.fixture
def gpu_model_dir(tiny_model_dir) -> Path:
    """The checkpoint for engine tests: $GPU_CHECK_MODEL when set, else the tiny one."""
    value = os.environ.get("GPU_CHECK_MODEL")
    return Path(value) if value else tiny_model_dir


def _chat_texts(processor, questions, answers=None):
    texts = []
    for i, q in enumerate(questions):
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": q}]}]
        if answers is not None:
            messages.append({"role": "assistant", "content": [{"type": "text", "text": answers[i]}]})
        texts.append(processor.apply_chat_template(messages, add_generation_prompt=answers is None))
    return texts


@pytest.fixture
def chat_texts():
    """``chat_texts(processor, questions, answers=None)``: rendered Qwen2-VL prompts, one image each; with
    ``answers`` the assistant turn is appended (training), without it the generation prompt."""
    return _chat_texts
