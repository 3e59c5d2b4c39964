"""scripts/probe_attention.py: the attention it reports is measured right (a model with no query or key spreads its
attention evenly, and the probe must say so) and it runs on a demo checkpoint."""

from __future__ import annotations

import shutil

import probe_attention as probe
import pytest
import torch


def _copy_with_query_key(tiny_model_dir, folder, factor: float):
    """The tiny checkpoint with its language model's query and key projections times `factor` (0: no scores)."""
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir, dtype=torch.float32)
    with torch.no_grad():
        for layer in model.model.language_model.layers:
            for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj):
                proj.weight.mul_(factor)
                proj.bias.mul_(factor)
    shutil.copytree(tiny_model_dir, folder)
    model.save_pretrained(folder)
    return str(folder), model.config.text_config.num_hidden_layers


def test_even_attention_reads_as_uniform(tiny_model_dir, tmp_path):
    flat, layers = _copy_with_query_key(tiny_model_dir, tmp_path / "flat", 0.0)
    share, entropy, uniform = probe.answer_attention(flat, questions=3, seed=0)
    assert entropy.shape == share.shape == (layers, 4)
    # Every score is 0, so each head spreads evenly: entropy ln(n) and the image share its token fraction.
    assert torch.allclose(entropy, torch.full_like(entropy, uniform), atol=1e-3)
    assert float(share.std()) < 1e-4 and 0.0 < float(share.mean()) < 1.0


def test_larger_scores_read_as_sharper(tiny_model_dir, tmp_path):
    # The untrained tiny model is itself nearly uniform (its 0.02 init gives scores near 0); query and key 20x
    # larger must read as a clearly sharper spread, and no head can exceed the uniform entropy.
    plain = probe.answer_attention(str(tiny_model_dir), questions=2, seed=0)
    sharp_dir, _ = _copy_with_query_key(tiny_model_dir, tmp_path / "sharp", 20.0)
    sharp = probe.answer_attention(sharp_dir, questions=2, seed=0)
    for share, entropy, uniform in (plain, sharp):
        assert ((share >= 0) & (share <= 1 + 1e-6)).all() and (entropy <= uniform + 1e-3).all()
    assert float(plain[1].mean()) > plain[2] - 0.05
    assert float(sharp[1].mean()) < float(plain[1].mean()) - 0.5


def test_cli_prints_one_row_per_layer(tiny_model_dir, capsys):
    assert probe.main([str(tiny_model_dir), "--questions", "1"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line[:1].isdigit()]
    assert len(rows) == 2 and all(len(row.split("|")[1].split()) == 4 for row in rows)
    with pytest.raises(SystemExit):
        probe.main([str(tiny_model_dir), "--questions", "0"])
