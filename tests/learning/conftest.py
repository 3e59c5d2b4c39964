"""Fixtures of the overfit tests: a tiny model whose positions the language model can resolve, and a
constant-vision control (scenes, training and answers: tests/helpers/scenes.py). Every test runs torch on one
thread."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest


POSITIONAL_MROPE = (1, 1, 6)
POSITIONAL_THETA = 100.0


@pytest.fixture(autouse=True)
def _one_thread_for_every_test(one_thread: None) -> None:
    """Same result and speed whatever the machine's core count (the tiny model is latency-bound)."""


@pytest.fixture(scope="session")
def positional_tiny_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny preset's weights with positions the language model can resolve: MRoPE sections (1, 1, 6) and
    rope_theta 100 instead of (2, 3, 3) and 1e6 (same parameter shapes; only the rotary frequencies change).

    With 8 rotary pairs per head, (2, 3, 3) and theta 1e6 turn a key by at most 0.03 rad per image row and 2e-4 rad
    per image column, so the language model cannot tell where in the image a visual token sits: trained on the
    grounding set below it answers one or two boxes for all 16 images (loss stuck at ln(16) per answer). With these
    values a row turns the keys by 0.56 rad and a column by 0.32 rad and lower.
    """
    import shutil

    folder = tmp_path_factory.mktemp("tiny-positional") / "model"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["text_config"]["rope_parameters"].update(mrope_section=list(POSITIONAL_MROPE), rope_theta=POSITIONAL_THETA)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    return folder


@pytest.fixture
def constant_vision(monkeypatch: pytest.MonkeyPatch) -> Callable[[Path], None]:
    """Negative control: every image the SFT data loader opens is replaced by one fixed image."""

    def apply(fixed: Path) -> None:
        import tinyrs_sft.data as sft_data

        real = sft_data.load_image
        monkeypatch.setattr(sft_data, "load_image", lambda path, max_pixels: real(fixed, max_pixels))

    return apply
