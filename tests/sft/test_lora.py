"""LoRA fixes S8 (``lora_bias``, incl. ``lora_only``) and S9 (fully trained parts saved once as ``modules_to_save``,
really trained, and restored by the merge)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from helpers import run_sft, simple_record, write_json


PEFT_PREFIX = "base_model.model."


def lora_model(model_dir, bias: str):
    from transformers import AutoModelForImageTextToText

    from tinyrs_sft.model import apply_lora, configure_trainable

    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32)
    configure_trainable(model, freeze_vision_tower=True, freeze_llm=True, tune_merger=True)
    return apply_lora(
        model, rank=4, alpha=8, dropout=0.0, bias=bias, use_dora=False, exclude=["lm_head", "embed_tokens"],
        vision_lora=False, num_lora_modules=-1, modules_to_save=["merger"],
    )  # fmt: skip


@pytest.mark.parametrize("bias", ["none", "all", "lora_only"])
def test_lora_bias_marks_the_documented_biases_trainable(tiny_model_dir, bias):
    model = lora_model(tiny_model_dir, bias)
    lora_layers = {n.rsplit(".lora_A", 1)[0] for n, _ in model.named_parameters() if ".lora_A." in n}
    assert lora_layers, "no LoRA layer"
    trainable_biases = set()
    for name, param in model.named_parameters():
        if name.endswith("bias") and param.requires_grad and ".modules_to_save." not in name:
            trainable_biases.add(name)
    lora_biases = {f"{layer}.base_layer.bias" for layer in lora_layers} & {n for n, _ in model.named_parameters()}
    assert lora_biases, "the tiny model's LoRA layers should have biases (q/k/v projections)"
    if bias == "none":
        assert trainable_biases == set()
    elif bias == "lora_only":  # exactly the biases of the layers that carry LoRA (the original crashed here)
        assert trainable_biases == lora_biases
    else:  # every bias of the model, frozen parts included (peft's meaning of "all", as in the original)
        everything = {n for n, _ in model.named_parameters() if n.endswith("bias") and ".original_module." not in n}
        assert trainable_biases == everything - {n for n in everything if ".modules_to_save." in n}
        assert any(".visual.blocks." in n for n in trainable_biases)


def test_lora_only_biases_and_merger_are_trained_saved_and_merged(tiny_model_dir, data_dir, tmp_path):
    from transformers import AutoModelForImageTextToText

    from tinyrs_sft.cli import main as cli_main

    data = write_json(data_dir / "train.json", [simple_record(i, image=f"{img}.png") for i, img in enumerate("abc")])
    out = tmp_path / "lora"
    run_sft(
        tiny_model_dir, data, data_dir / "images", out,
        "--max_steps", "3", "--learning_rate", "2e-2", "--lora_enable", "True", "--freeze_llm", "True",
        "--freeze_vision_tower", "True", "--tune_merger", "True", "--lora_bias", "lora_only",
        "--lora_rank", "4", "--lora_alpha", "8", "--lora_dropout", "0.0",
    )  # fmt: skip
    adapter = load_file(out / "adapter_model.safetensors")
    base = dict(AutoModelForImageTextToText.from_pretrained(tiny_model_dir, dtype=torch.float32).named_parameters())

    def base_name(key: str) -> str:
        return key.removeprefix(PEFT_PREFIX).replace(".base_layer.", ".")

    merger = {k: v for k, v in adapter.items() if ".visual.merger." in k}
    biases = {k: v for k, v in adapter.items() if k.endswith(".base_layer.bias")}
    # S9: the merger is saved with the adapter, once, and it trained; nothing else of the base is in the file.
    assert merger and all(base_name(k) in base for k in merger)
    assert any(not torch.equal(v, base[base_name(k)]) for k, v in merger.items()), "merger did not train"
    assert not [k for k in adapter if "lora_" not in k and k not in merger and k not in biases]
    # S8: the biases of the LoRA layers are saved and trained.
    assert biases and any(not torch.equal(v, base[base_name(k)]) for k, v in biases.items()), "biases did not train"

    merged_dir = tmp_path / "merged"
    argv = ["merge-lora", "--adapter_path", str(out), "--output_dir", str(merged_dir), "--dtype", "float32"]
    assert cli_main(argv) == 0
    merged = dict(AutoModelForImageTextToText.from_pretrained(merged_dir, dtype=torch.float32).named_parameters())
    for key, value in {**merger, **biases}.items():
        torch.testing.assert_close(merged[base_name(key)], value, msg=lambda m, key=key: f"{key}: {m}")
    # Frozen parts stay as they were (the vision tower's own biases were not trainable under lora_only).
    name = next(n for n in base if ".visual.blocks." in n and n.endswith("bias"))
    torch.testing.assert_close(merged[name], base[name])
