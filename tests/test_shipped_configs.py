"""Every shipped YAML and JSON config parses (a typo must break the build, not a cluster job)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml


ROOT = Path(__file__).resolve().parents[1]
CONFIG_FILES = sorted(
    p
    for pattern in (
        "*/configs/**/*.yaml",
        "*/configs/**/*.yml",
        "*/configs/**/*.json",
        "environment*.yaml",
        "*/environment*.yaml",
    )
    for p in ROOT.glob(pattern)
    if ".venv" not in p.parts
)


def test_configs_exist():
    assert len(CONFIG_FILES) >= 3


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_config_parses(path: Path):
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    assert isinstance(data, dict) and data, f"{path} is empty or not a mapping"


@pytest.mark.parametrize(
    "path", [p for p in CONFIG_FILES if "deepspeed" in p.parts], ids=lambda p: str(p.relative_to(ROOT))
)
def test_deepspeed_configs_have_no_optimizer_or_scheduler(path: Path):
    # Such blocks silently replace the Trainer's optimizer (the original lost vision_lr/merger_lr this way).
    data = json.loads(path.read_text(encoding="utf-8"))
    assert "optimizer" not in data and "scheduler" not in data
    assert data["zero_optimization"]["stage"] in (2, 3)
