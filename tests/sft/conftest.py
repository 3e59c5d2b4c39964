"""Fixtures of the tinyrs_sft tests: a folder of tiny images and the tiny model's processor (helpers: tests/helpers).
Every test here runs torch on one thread."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import make_image


@pytest.fixture(autouse=True)
def _one_thread_for_every_test(one_thread: None) -> None:
    """The tiny model is latency-bound: two threads on a shared 2-core machine are ~20x slower than one."""


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A folder with images/a.png (56x56), images/b.png (112x112) and images/c.png (56x112)."""
    make_image(tmp_path / "images" / "a.png", (56, 56))
    make_image(tmp_path / "images" / "b.png", (112, 112), (200, 30, 30))
    make_image(tmp_path / "images" / "c.png", (56, 112), (30, 30, 200))
    return tmp_path


@pytest.fixture
def tiny_processor(tiny_model_dir: Path):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_model_dir)
