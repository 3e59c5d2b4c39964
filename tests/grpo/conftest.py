"""Fixtures of the tinyrs_grpo tests (helpers: tests/helpers; the fake judge server: tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import grpo_row, save_grpo_dataset


@pytest.fixture
def mixed_grpo_dir(tmp_path: Path) -> Path:
    """Eight rows: exact, box and open-ended answers, distinct images."""
    rows = [
        grpo_row("1", "yes", "{VQA} Is there a ship?", (10, 20, 30)),
        grpo_row(2, "[[100, 100, 400, 400]]", "{VG} the storage tank", (200, 20, 30)),
        grpo_row("0", "", "Describe the image.", (10, 200, 30)),
        grpo_row("1", "forest", "{CLS} Classify the image.", (10, 20, 200)),
        grpo_row("0", "", "What is happening here?", (90, 90, 90)),
        grpo_row(1, "3", "{VQA} How many buildings?", (150, 150, 20)),
        grpo_row("2", "[[0, 0, 500, 500]]", "{VG} the road", (20, 150, 150)),
        grpo_row("0", "", "Write a caption.", (150, 20, 150)),
    ]
    return save_grpo_dataset(tmp_path / "mixed_grpo", rows)
