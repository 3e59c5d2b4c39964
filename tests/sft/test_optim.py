"""Parameter groups: vision_lr / merger_lr / learning_rate, and no weight decay on biases and all norm weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from tinyrs_sft.optim import build_param_groups, count_parameters_by_part, no_decay_parameter_names


class CustomRMSNorm(nn.Module):  # like Qwen2RMSNorm / LigerRMSNorm: not an nn.LayerNorm subclass
    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))


class ToyVLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.visual = nn.ModuleDict(
            {
                "patch_embed": nn.Linear(4, 4, bias=False),
                "norm1": nn.LayerNorm(4),
                "merger": nn.ModuleDict({"ln_q": nn.LayerNorm(4), "mlp": nn.Linear(4, 4)}),
            }
        )
        self.language_model = nn.ModuleDict(
            {"embed_tokens": nn.Embedding(10, 4), "input_layernorm": CustomRMSNorm(4), "q_proj": nn.Linear(4, 4)}
        )
        self.lm_head = nn.Linear(4, 10, bias=False)


def groups_by_key(specs):
    return {(s.part, s.decay): s for s in specs}


def test_no_decay_set_covers_biases_and_every_norm():
    names = no_decay_parameter_names(ToyVLM())
    assert names == {
        "visual.norm1.weight",
        "visual.norm1.bias",
        "visual.merger.ln_q.weight",
        "visual.merger.ln_q.bias",
        "visual.merger.mlp.bias",
        "language_model.input_layernorm.weight",
        "language_model.q_proj.bias",
    }


def test_groups_carry_vision_and_merger_lr():
    model = ToyVLM()
    groups, specs = build_param_groups(model, learning_rate=1e-5, weight_decay=0.1, vision_lr=2e-6, merger_lr=3e-5)
    by = groups_by_key(specs)
    assert by[("vision", True)].names == ["visual.patch_embed.weight"]
    assert by[("vision", False)].names == ["visual.norm1.weight", "visual.norm1.bias"]
    assert by[("merger", True)].names == ["visual.merger.mlp.weight"]
    assert set(by[("merger", False)].names) == {
        "visual.merger.ln_q.weight",
        "visual.merger.ln_q.bias",
        "visual.merger.mlp.bias",
    }
    assert set(by[("llm", True)].names) == {
        "language_model.embed_tokens.weight",
        "language_model.q_proj.weight",
        "lm_head.weight",
    }
    assert (by[("vision", True)].lr, by[("merger", True)].lr, by[("llm", True)].lr) == (2e-6, 3e-5, 1e-5)
    for spec, group in zip(specs, groups):
        assert group["lr"] == spec.lr and group["weight_decay"] == (0.1 if spec.decay else 0.0)
    n_params = sum(len(g["params"]) for g in groups)
    assert n_params == len(list(model.parameters()))


def test_frozen_parameters_are_left_out_and_lrs_default():
    model = ToyVLM()
    for p in model.visual.parameters():
        p.requires_grad_(False)
    groups, specs = build_param_groups(model, learning_rate=1e-4, weight_decay=0.0)
    assert {s.part for s in specs} == {"llm"}
    assert all(g["lr"] == 1e-4 for g in groups)


def test_scheduler_scales_each_group(tmp_path: Path):
    """The HF cosine schedule keeps the ratio between group learning rates (so vision_lr is not lost)."""
    from transformers import get_cosine_schedule_with_warmup

    groups, _ = build_param_groups(ToyVLM(), 1e-5, 0.1, vision_lr=2e-6, merger_lr=1e-5)
    opt = torch.optim.AdamW(groups)
    sched = get_cosine_schedule_with_warmup(opt, num_warmup_steps=1, num_training_steps=10)
    for _ in range(5):
        opt.step()
        sched.step()
    lrs = [g["lr"] for g in opt.param_groups]
    assert lrs[0] / lrs[-1] == pytest.approx(0.2)
    assert lrs[-1] < 1e-5


def test_tiny_model_groups_and_counts(tiny_model_dir: Path):
    from tinyrs_sft.model import configure_trainable, load_model

    model = load_model(str(tiny_model_dir), torch.float32)
    configure_trainable(model, freeze_vision_tower=False, freeze_llm=False, tune_merger=True)
    _, specs = build_param_groups(model, 1e-5, 0.1, vision_lr=2e-6, merger_lr=5e-6)
    no_decay = {n for s in specs if not s.decay for n in s.names}
    norm_weights = {f"{mod_name}.weight" for mod_name, mod in model.named_modules() if "Norm" in type(mod).__name__}
    assert norm_weights and norm_weights <= no_decay  # RMSNorm (LLM) and LayerNorm (ViT, merger) alike
    assert any("RMSNorm" in type(m).__name__ for m in model.modules())
    assert all(n.endswith("bias") or n in norm_weights for n in no_decay)
    by = groups_by_key(specs)
    assert by[("vision", True)].lr == 2e-6 and by[("merger", True)].lr == 5e-6 and by[("llm", True)].lr == 1e-5
    assert all("visual" in n and "merger" not in n for n in by[("vision", True)].names)
    counts = count_parameters_by_part(model)
    assert sum(c["total"] for c in counts.values()) == sum(p.numel() for p in model.parameters())
