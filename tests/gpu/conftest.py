"""Fixtures of the GPU tests (tests/gpu, marker ``gpu``): each test skips itself without CUDA.

The root conftest already skips items marked ``gpu`` when CUDA is absent; the ``cuda`` fixture repeats the check so a
run from another root still skips instead of failing. ``real_model_dir`` is the Qwen2-VL-2B-shaped checkpoint that
scripts/gpu_check.sh builds once and names in ``GPU_CHECK_MODEL``; without it the fixture builds one (about a minute).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[2]
FIXTURE_IMAGES = REPO / "tests" / "fixtures" / "images"


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.fixture
def cuda():
    if not _cuda_available():
        pytest.skip("needs a CUDA GPU")
    import torch

    return torch.device("cuda")


@pytest.fixture(scope="session")
def real_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real-shape checkpoint: $GPU_CHECK_MODEL, else built by benchmarks/gpu_check.py --build-model."""
    if not _cuda_available():
        pytest.skip("needs a CUDA GPU")
    given = os.environ.get("GPU_CHECK_MODEL")
    if given and (Path(given) / "gpu_check_model.json").is_file():
        return Path(given)
    folder = tmp_path_factory.mktemp("qwen2vl-2b-shape")
    builder = str(REPO / "benchmarks" / "gpu_check.py")
    subprocess.run([sys.executable, builder, "--build-model", str(folder)], check=True)
    return folder


@pytest.fixture
def scene_images():
    from PIL import Image

    names = ["scene_112x84.png", "scene_84x112.png", "scene_56.png"]
    return [Image.open(FIXTURE_IMAGES / n).convert("RGB") for n in names]
