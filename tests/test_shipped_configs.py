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


PAPER_SFT_RECIPES = [ROOT / "sft" / "configs" / f"{stage}.yaml" for stage in ("pretrain", "sft", "cot_sft")]
STAGE_KEYS = {"model_name_or_path", "dataset_name", "image_folder", "output_dir", "training_stage"}


def test_paper_sft_recipes_differ_only_in_their_stage():
    # One recipe per stage, one set of settings: the three stages share every training setting (the seed README ran
    # one command with a different model and data), so an edit to one cannot silently leave the others behind.
    recipes = {p.stem: yaml.safe_load(p.read_text(encoding="utf-8")) for p in PAPER_SFT_RECIPES}
    shared = [{k: v for k, v in r.items() if k not in STAGE_KEYS} for r in recipes.values()]
    assert shared[0] == shared[1] == shared[2]
    assert all(STAGE_KEYS <= set(r) for r in recipes.values())
    assert len({r["training_stage"] for r in recipes.values()}) == 3


@pytest.mark.parametrize("path", PAPER_SFT_RECIPES, ids=lambda p: p.name)
def test_paper_sft_recipe_deepspeed_and_batch(path: Path):
    recipe = yaml.safe_load(path.read_text(encoding="utf-8"))
    # ZeRO-3 without offload (sft/README.md and the root README say so; the scripts add no --deepspeed of their own).
    ds = json.loads((path.parent / recipe["deepspeed"]).read_text(encoding="utf-8"))["zero_optimization"]
    assert ds["stage"] == 3 and "offload_optimizer" not in ds and "offload_param" not in ds
    # The header states the batch the values give (scripts/_launch.sh keeps this global batch on any GPU count).
    per_device, accum = recipe["per_device_train_batch_size"], recipe["gradient_accumulation_steps"]
    stated = f"Global batch = 4 GPUs x {per_device} per device x {accum} accumulation = {4 * per_device * accum}"
    assert stated in path.read_text(encoding="utf-8") and 4 * per_device * accum == 128
    assert "lazy_preprocess" not in recipe
