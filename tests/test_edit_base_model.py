"""scripts/edit_base_model.py: the edits touch exactly what they claim, and the tied match scores as intended."""

from __future__ import annotations

import shutil

import edit_base_model as edit
import pytest
import torch


@pytest.fixture()
def tiny_model(tiny_model_dir):
    from transformers import AutoModelForImageTextToText

    return AutoModelForImageTextToText.from_pretrained(tiny_model_dir, dtype=torch.float32)


def _attention(model, layer):
    return model.model.language_model.layers[layer].self_attn


def test_still_dims_are_the_slow_rotary_pairs(tiny_model):
    inv_freq = tiny_model.model.language_model.rotary_emb.inv_freq
    dims = edit.still_dims(tiny_model)
    half = inv_freq.numel()
    assert dims and len(dims) % 2 == 0
    assert all(float(inv_freq[d % half]) < edit.STILL_BELOW for d in dims)
    assert float(inv_freq[0]) >= edit.STILL_BELOW and 0 not in dims  # the fastest pair turns


def test_tie_qk_shares_query_and_key_on_still_dims_only(tiny_model):
    config = tiny_model.config.text_config
    head_dim = config.hidden_size // config.num_attention_heads
    per_group = config.num_attention_heads // config.num_key_value_heads
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    edit.tie_query_key(tiny_model, layers=[1], kv_groups=[0], std=0.08, seed=0)
    dims = edit.still_dims(tiny_model)
    attention = _attention(tiny_model, 1)
    key = attention.k_proj.weight[dims]
    for head in range(per_group):
        assert torch.equal(attention.q_proj.weight[[head * head_dim + d for d in dims]], key)
    # Everything else is untouched: other layers, other groups' rows, the turning dims.
    after = tiny_model.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed == {
        "model.language_model.layers.1.self_attn.q_proj.weight",
        "model.language_model.layers.1.self_attn.k_proj.weight",
    }
    q_rows = {head * head_dim + d for head in range(per_group) for d in dims}
    untouched_q = [r for r in range(attention.q_proj.weight.shape[0]) if r not in q_rows]
    untouched_k = [r for r in range(attention.k_proj.weight.shape[0]) if r not in dims]
    prefix = "model.language_model.layers.1.self_attn"
    assert torch.equal(attention.q_proj.weight[untouched_q], before[f"{prefix}.q_proj.weight"][untouched_q])
    assert torch.equal(attention.k_proj.weight[untouched_k], before[f"{prefix}.k_proj.weight"][untouched_k])
    # The point of the edit: a vector's query scores far above its typical score against other vectors' keys, which
    # the untied projections of another group (the negative control) do not do.
    x = torch.randn(64, config.hidden_size, generator=torch.Generator().manual_seed(0))
    off_diagonal = ~torch.eye(64, dtype=torch.bool)

    def own_score_margin(query_rows, key_rows) -> float:
        with torch.no_grad():
            scores = (x @ attention.q_proj.weight[query_rows].T) @ (x @ attention.k_proj.weight[key_rows].T).T
        return float(scores.diagonal().mean() / scores[off_diagonal].std())

    assert own_score_margin(dims, dims) > 2.5
    assert abs(own_score_margin([per_group * head_dim + d for d in dims], [head_dim + d for d in dims])) < 1.0


def test_tie_qk_refuses_a_model_without_still_pairs(tiny_model):
    tiny_model.model.language_model.rotary_emb.inv_freq.fill_(1.0)
    with pytest.raises(ValueError, match="no rotary pair"):
        edit.tie_query_key(tiny_model, layers=[0], kv_groups=[0], std=0.08, seed=0)


def test_scale_multiplies_the_language_model_only(tiny_model):
    before = {k: v.clone() for k, v in tiny_model.state_dict().items()}
    edit.scale_language_model(tiny_model, 2.5)
    after = tiny_model.state_dict()
    for name, value in after.items():
        scaled = value.dim() == 2 and ("language_model" in name or name.startswith("lm_head"))
        assert torch.equal(value, before[name] * 2.5 if scaled else before[name]), name
    assert any("language_model" in n and v.dim() == 2 for n, v in after.items())


def test_cli_writes_a_loadable_copy_without_stage_files(tiny_model_dir, tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    source = tmp_path / "base"
    shutil.copytree(tiny_model_dir, source)
    (source / "DONE").write_text("stage marker\n")
    (source / "log.txt").write_text("stage log\n")
    out = tmp_path / "scaled"
    assert edit.main(["scale", str(source), str(out), "--factor", "0.5"]) == 0
    assert not (out / "DONE").exists() and not (out / "log.txt").exists()
    AutoProcessor.from_pretrained(out)
    model = AutoModelForImageTextToText.from_pretrained(out, dtype=torch.float32)
    original = AutoModelForImageTextToText.from_pretrained(source, dtype=torch.float32)
    assert torch.equal(model.lm_head.weight, original.lm_head.weight * 0.5)
    with pytest.raises(SystemExit):
        edit.main(["scale", str(out), str(out), "--factor", "2"])
