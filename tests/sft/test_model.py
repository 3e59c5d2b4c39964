"""Model loading (class from the config, attention fallback) and the original freezing policy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from tinyrs_sft.model import (
    attention_implementation,
    configure_trainable,
    load_model,
    lora_target_modules,
)
from tinyrs_sft.optim import count_parameters_by_part


@pytest.fixture(scope="module")
def tiny_model(tiny_model_dir: Path):
    return load_model(str(tiny_model_dir), torch.float32)


@pytest.mark.parametrize(
    "freeze_vision_tower, freeze_llm, tune_merger, expected",
    [
        (False, False, True, {"vision": True, "merger": True, "llm": True}),  # the README recipe: everything
        (False, False, False, {"vision": True, "merger": False, "llm": True}),  # original default: merger frozen
        (True, False, True, {"vision": False, "merger": True, "llm": True}),
        (True, True, True, {"vision": False, "merger": True, "llm": False}),  # merger-only (projector pretraining)
        (True, True, False, {"vision": False, "merger": False, "llm": False}),
    ],
)
def test_freeze_flags(tiny_model, freeze_vision_tower, freeze_llm, tune_merger, expected):
    configure_trainable(tiny_model, freeze_vision_tower, freeze_llm, tune_merger)
    counts = count_parameters_by_part(tiny_model)
    for part, trainable in expected.items():
        assert counts[part]["total"] > 0
        assert counts[part]["trainable"] == (counts[part]["total"] if trainable else 0), part
    lm_head = tiny_model.get_output_embeddings().weight
    assert lm_head.requires_grad == (not freeze_llm)


def test_attention_falls_back_to_sdpa():
    assert attention_implementation(disable_flash_attn2=True) == "sdpa"
    expected = "flash_attention_2" if (torch.cuda.is_available() and _has_flash_attn()) else "sdpa"
    assert attention_implementation(disable_flash_attn2=False) == expected


def _has_flash_attn() -> bool:
    import importlib.util

    return importlib.util.find_spec("flash_attn") is not None


def test_class_comes_from_config_not_path(tiny_model_dir: Path, tmp_path: Path):
    # A Qwen2-VL checkpoint in a folder whose name says "Qwen2.5" is still loaded as Qwen2-VL.
    misleading = tmp_path / "Qwen2.5-VL-7B-Instruct"
    shutil.copytree(tiny_model_dir, misleading)
    model = load_model(str(misleading), torch.float32)
    assert type(model).__name__ == "Qwen2VLForConditionalGeneration"


def test_qwen2_5_vl_checkpoint_loads_its_own_class(tmp_path: Path):
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    config = Qwen2_5_VLConfig(
        text_config={
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 1,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "vocab_size": 128,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]},
        },
        vision_config={"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64},
        image_token_id=120,
        video_token_id=121,
        vision_start_token_id=118,
    )
    Qwen2_5_VLForConditionalGeneration(config).save_pretrained(tmp_path / "some-checkpoint")
    model = load_model(str(tmp_path / "some-checkpoint"), torch.float32)
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"


def test_unsupported_model_type_is_refused(tiny_model_dir: Path, tmp_path: Path):
    folder = tmp_path / "other"
    shutil.copytree(tiny_model_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "llava"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="model_type 'llava' is not supported"):
        load_model(str(folder), torch.float32)


def test_lora_targets(tiny_model):
    default = lora_target_modules(tiny_model, ["lm_head", "embed_tokens"], vision_lora=False)
    assert default and all("visual" not in n and "lm_head" not in n and "embed_tokens" not in n for n in default)
    with_vision = lora_target_modules(tiny_model, ["lm_head", "embed_tokens"], vision_lora=True)
    assert any("visual" in n for n in with_vision) and not any("merger" in n for n in with_vision)
    assert (
        lora_target_modules(tiny_model, [], vision_lora=False, num_lora_modules=2)
        == lora_target_modules(tiny_model, [], vision_lora=False)[-2:]
    )
