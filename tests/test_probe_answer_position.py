"""scripts/probe_answer_position.py: the probe reads what the features hold, and nothing when they hold nothing."""

from __future__ import annotations

import probe_answer_position as probe
import torch


def test_probe_reads_a_linearly_coded_label_and_not_a_random_one():
    gen = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 4, (400,), generator=gen)
    features = torch.randn(400, 32, generator=gen) + 5.0 * torch.nn.functional.one_hot(labels, 32).float()
    assert probe.probe_accuracy(features, labels) >= 0.95
    # Negative control: labels that the features do not hold stay near chance (25%).
    unrelated = torch.randint(0, 4, (400,), generator=gen)
    assert probe.probe_accuracy(features, unrelated) <= 0.45


def test_answer_position_states_on_the_tiny_checkpoint(tiny_model_dir):
    states, asked, shown = probe.answer_position_states(str(tiny_model_dir), scenes=24, seed=0)
    assert states.shape[:2] == (24, 3)  # embeddings + the tiny preset's 2 layers
    assert set(asked.tolist()) <= {0, 1, 2, 3} and set(shown.tolist()) <= {0, 1, 2, 3}
    assert len(set(asked.tolist())) > 1 and len(set(shown.tolist())) > 1
    # The answer position is the same token in every prompt: before any layer it holds nothing about the scene.
    assert torch.allclose(states[:, 0], states[:1, 0].expand_as(states[:, 0]))
    # After the layers it differs from scene to scene (the image and the question reach it).
    assert not torch.allclose(states[:, -1], states[:1, -1].expand_as(states[:, -1]))
