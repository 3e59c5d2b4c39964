"""The model card written into the output folder: the stage read from the data (or given), the recipe and settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import write_json
from tinyrs_sft.config import parse_args
from tinyrs_sft.constants import REASONING_SYSTEM_PROMPT
from tinyrs_sft.model_card import infer_stage, render_card
from tinyrs_sft.records import RecordSource


SFT_CONFIGS = Path(__file__).resolve().parents[2] / "sft" / "configs"


def turns(question: str, answer: str, system: str | None = None) -> dict:
    conversation = [{"from": "system", "value": system}] if system else []
    conversation += [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]
    return {"id": "x", "conversations": conversation}


@pytest.mark.parametrize(
    ("records", "stage"),
    [
        ([turns("<image>\nDescribe the image.", "An aerial image of a forest.")] * 3, "pretraining"),
        ([turns("<image>\n{VQA} Is there a road?", "yes"), turns("<image>\nDescribe it.", "A lake.")], "sft"),
        ([turns("<image>\n{VG} the tank", "[[1, 2, 3, 4]]")], "sft"),
        (
            [
                turns("<image>\n{CLS} Classify.", "forest"),
                turns("<image>\n{CLS} Classify.", "<reasoning>dark green</reasoning><answer>forest</answer>",
                      REASONING_SYSTEM_PROMPT),
            ],
            "cot_sft",  # one reasoning answer is enough: CoT data mixes in plain answers
        ),
        ([turns("Describe {CLS} as a word.", "a tag", "You are {VQA}")], "sft"),  # tags count in human turns only
        ([{"id": "broken"}], "pretraining"),  # nothing to go on: no tag, no reasoning
    ],
)  # fmt: skip
def test_stage_is_read_from_the_records(records, stage, tmp_path):
    source = RecordSource(write_json(tmp_path / "d.json", records))
    assert infer_stage(source)[0] == stage


def test_stage_of_the_demo_data(demo_data_dir):
    found = {
        name: infer_stage(RecordSource(demo_data_dir / f"{name}.json"))[0] for name in ("pretrain", "sft", "cot_sft")
    }
    assert found == {"pretrain": "pretraining", "sft": "sft", "cot_sft": "cot_sft"}


def test_card_of_a_paper_recipe_names_recipe_groups_batch_and_zero(tmp_path):
    recipe = SFT_CONFIGS / "cot_sft.yaml"
    model_args, data_args, training_args = parse_args(
        ["--config", str(recipe), "--output_dir", str(tmp_path / "run"), "--tf32", "False", "--use_cpu", "True"]
    )
    card = render_card(model_args, data_args, training_args, "cot_sft", "given by --training_stage", 1000, 4)
    assert (
        card.startswith("---\nbase_model: aybora/Qwen2-VL-TinyRS\n")
        and "tags: [tinyrs, remote-sensing, qwen2-vl, cot-sft]" in card
    )
    assert f"**Recipe**: `{recipe}` with the command-line overrides" in card
    assert "**Stage**: CoT-SFT (`cot_sft`; given by --training_stage)" in card
    assert "list_sft_reasoning_oversampled.json` (1000 records used)" in card
    assert "param group vision: trained, lr 2e-06" in card and "param group merger: trained, lr 1e-05" in card
    assert "global batch 128 = 16 per device x 2 accumulation x 4 processes" in card
    assert "epochs 1: 8 steps per epoch" in card and "DeepSpeed ZeRO stage 3" in card
    assert "loss normalisation micro_batch" in card and "image pixels 401408..1003520" in card
