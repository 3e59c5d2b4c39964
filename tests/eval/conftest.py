"""Fixtures of the tinyrs_eval tests: the demo data_root and a fake lmdeploy (helpers: tests/helpers)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from helpers import FakeLmdeploy


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
def fake_lmdeploy(monkeypatch):
    """Install a fake lmdeploy and pretend CUDA is present."""
    fake = FakeLmdeploy()
    monkeypatch.setitem(sys.modules, "lmdeploy", fake.module)
    import tinyrs_eval.backends as backends

    monkeypatch.setattr(backends, "_cuda_available", lambda: True)
    return fake
