"""Helpers for the tinyrs_eval tests: subprocess environment, a fake backend and a fake lmdeploy module."""

from __future__ import annotations

import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest


REPO_ROOT = Path(__file__).resolve().parents[2]
EVAL_DIR = REPO_ROOT / "eval"
try:  # the package is normally pip-installed (editable); fall back to the source tree
    import tinyrs_eval  # noqa: F401
except ImportError:
    sys.path.insert(0, str(EVAL_DIR))


def subprocess_env() -> dict[str, str]:
    """Offline, one CPU thread per process (tiny models are much faster single-threaded on a busy 2-core box),
    and tinyrs_eval importable whether or not it is pip-installed."""
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        WANDB_MODE="disabled",
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join([str(EVAL_DIR), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    return env


def run_cli(args: list[str], timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "tinyrs_eval.run", *args],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nSTDOUT:\n{proc.stdout[-3000:]}\nSTDERR:\n{proc.stderr[-5000:]}")
    return proc


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="session")
def eval_data_root(demo_data_dir: Path) -> Path:
    return Path(demo_data_dir) / "eval"


@pytest.fixture
def data_copy(eval_data_root: Path, tmp_path: Path) -> Path:
    """A private copy of the demo data_root that a test may damage."""
    dst = tmp_path / "data"
    shutil.copytree(eval_data_root, dst)
    return dst


@pytest.fixture
def one_thread():
    """Run in-process model code single-threaded, restoring torch's setting afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class FakeBackend:
    """Answers from a function of the request; records what it was asked."""

    name = "fake"

    def __init__(self, answer=lambda req: "yes"):
        self.answer = answer
        self.calls: list[list[Any]] = []

    def generate(self, requests):
        self.calls.append(list(requests))
        return [self.answer(r) for r in requests]

    def close(self):
        pass


@pytest.fixture
def fake_backend_cls():
    return FakeBackend


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def helpers() -> types.SimpleNamespace:
    """The module-level helpers above, for test files (test files do not import each other or conftest)."""
    return types.SimpleNamespace(
        repo_root=REPO_ROOT,
        subprocess_env=subprocess_env,
        run_cli=run_cli,
        read_jsonl=read_jsonl,
        free_port=free_port,
    )


class FakeLmdeploy:
    """A stand-in for the lmdeploy package that records how it is called (no GPU needed)."""

    def __init__(self, answer=lambda text: "yes"):
        self.answer = answer
        self.pipeline_calls: list[tuple[tuple, dict]] = []
        self.infer_calls: list[tuple[Any, dict]] = []
        self.templates: list[dict] = []
        self.module = self._build()

    def _build(self) -> types.ModuleType:
        fake = self
        mod = types.ModuleType("lmdeploy")
        mod.__spec__ = importlib.machinery.ModuleSpec("lmdeploy", None)

        class _Config:
            def __init__(self, **kwargs):
                self.kwargs = kwargs

            def __repr__(self):
                return f"{type(self).__name__}({self.kwargs})"

        class PytorchEngineConfig(_Config):
            pass

        class TurbomindEngineConfig(_Config):
            pass

        class GenerationConfig(_Config):
            pass

        class ChatTemplateConfig(_Config):
            @classmethod
            def from_json(cls, file_or_string):
                with open(file_or_string, encoding="utf-8") as f:
                    data = json.load(f)
                fake.templates.append(data)
                return cls(**data)

        class Response:
            def __init__(self, text):
                self.text = text

        class Pipeline:
            def __call__(self, prompts, **kwargs):
                fake.infer_calls.append((prompts, kwargs))
                return [Response(fake.answer(text)) for text, _image in prompts]

            def close(self):
                pass

        def pipeline(*args, **kwargs):
            fake.pipeline_calls.append((args, kwargs))
            return Pipeline()

        mod.PytorchEngineConfig = PytorchEngineConfig
        mod.TurbomindEngineConfig = TurbomindEngineConfig
        mod.GenerationConfig = GenerationConfig
        mod.ChatTemplateConfig = ChatTemplateConfig
        mod.pipeline = pipeline
        return mod


@pytest.fixture
def fake_lmdeploy(monkeypatch):
    """Install a fake lmdeploy and pretend CUDA is present."""
    fake = FakeLmdeploy()
    monkeypatch.setitem(sys.modules, "lmdeploy", fake.module)
    import tinyrs_eval.backends as backends

    monkeypatch.setattr(backends, "_cuda_available", lambda: True)
    return fake
