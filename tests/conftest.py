"""Shared fixtures: offline environment, GPU auto-skip, the tiny Qwen2-VL checkpoint and the demo data."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import FakeOpenAIServer, serve_openai, single_torch_thread


REPO_ROOT = Path(__file__).resolve().parents[1]

# Tests never touch the network, whoever runs them (make test sets these too).
for _name, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "WANDB_MODE": "disabled",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_name, _value)
# DeepSpeed picks its accelerator at import time; without a GPU it must be told to use the CPU.
if shutil.which("nvidia-smi") is None:
    os.environ.setdefault("DS_ACCELERATOR", "cpu")


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _cuda_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete tiny Qwen2-VL checkpoint folder built offline by tinyrs_demo.tiny_model."""
    from tinyrs_demo.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen2vl"), preset="tiny", seed=0)


@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic remote-sensing data (small scale) written by tinyrs_demo.writers."""
    from tinyrs_demo.writers import build_demo_data

    return build_demo_data(tmp_path_factory.mktemp("demo-data"), seed=0, scale="small")


@pytest.fixture
def one_thread() -> Iterator[None]:
    """torch on one CPU thread for the test, restored afterwards (tests/sft, tests/reliability and tests/learning
    use it for every test; module-scoped fixtures use ``helpers.single_torch_thread`` directly)."""
    with single_torch_thread():
        yield


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAIServer]:
    """The fake OpenAI-compatible server (tinyrs_demo.fake_openai) on 127.0.0.1 for one test: set
    ``openai_server.behaviour = lambda question, attempt: {...}``, pass ``openai_server.base_url`` to the client."""
    with serve_openai() as server:
        yield server
