"""The small preset's vision path hands the language model one token per 28x28 cell that tells what fills the cell.

Object-level questions (presence, grounding, counting) are answerable only if each merged visual token still says
which object kind sits in its cell. A linear probe on the tokens measures it. The demo recipe freezes the randomly
initialised vision tower because training it at the language model's rate erased this (probe 99% -> 58% after SFT,
sft/configs/cpu_demo.yaml); this test guards the untrained path itself: the preset, the image processor's patch
order and the 2x2 merge. Its control feeds the probe each image's tokens in reversed order, as a vision path that
scrambles positions would, and must fail the same check.
"""

from __future__ import annotations

import random

import pytest
import torch

from tinyrs_demo.scenes import CELL, make_scene, render
from tinyrs_demo.tiny_model import PRESETS, build_model, preset_tokenizer
from tinyrs_demo.tokenizer import build_processor
from tinyrs_demo.vocabulary import COUNTABLE_KINDS, SCENE_CLASSES


SIZE = 112  # 4x4 cells, 16 merged visual tokens
CELLS = (SIZE // CELL) ** 2
IMAGES = 160
LABELS = ("empty", *COUNTABLE_KINDS)


@pytest.fixture(scope="module")
def tokens_and_labels() -> tuple[torch.Tensor, torch.Tensor]:
    """Merged visual tokens of the untrained small preset for IMAGES demo scenes, and the kind filling each cell."""
    spec = PRESETS["small"]
    tokenizer = preset_tokenizer(spec)
    processor = build_processor(tokenizer, SIZE * SIZE, SIZE * SIZE)
    visual = build_model(spec, tokenizer, seed=0).model.visual.eval()
    rng = random.Random("test_visual_tokens")
    scenes = []
    for _ in range(IMAGES):
        kinds = rng.sample(COUNTABLE_KINDS, rng.randint(1, 3))
        counts = {k: rng.randint(1, 2) for k in kinds}
        scenes.append(make_scene(rng, (SIZE, SIZE), rng.choice(SCENE_CLASSES), counts))
    inputs = processor.image_processor(images=[render(s) for s in scenes], return_tensors="pt")
    with torch.no_grad():
        merged = visual(inputs["pixel_values"], grid_thw=inputs["image_grid_thw"]).pooler_output  # after the merger
    tokens = merged.reshape(IMAGES, CELLS, -1)
    labels = torch.zeros(IMAGES, CELLS, dtype=torch.long)
    for i, scene in enumerate(scenes):
        for obj in scene.objects:
            x1, y1, x2, y2 = obj.box
            labels[i, (y1 + y2) // 2 // CELL * (SIZE // CELL) + (x1 + x2) // 2 // CELL] = LABELS.index(obj.kind)
    return tokens, labels


def _probe_accuracy_on_objects(tokens: torch.Tensor, labels: torch.Tensor) -> float:
    """Fit a linear probe on 3/4 of the images; its accuracy on the object cells of the other 1/4."""
    torch.manual_seed(0)
    x = tokens.reshape(-1, tokens.shape[-1])
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    y = labels.reshape(-1)
    split = IMAGES * 3 // 4 * CELLS
    probe = torch.nn.Linear(x.shape[1], len(LABELS))
    optimizer = torch.optim.Adam(probe.parameters(), lr=1e-2)
    for _ in range(300):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(probe(x[:split]), y[:split]).backward()
        optimizer.step()
    with torch.no_grad():
        hit = probe(x[split:]).argmax(-1) == y[split:]
    return hit[y[split:] > 0].float().mean().item()


def test_each_visual_token_tells_which_object_fills_its_cell(tokens_and_labels) -> None:
    tokens, labels = tokens_and_labels
    accuracy = _probe_accuracy_on_objects(tokens, labels)
    assert accuracy >= 0.9, f"a linear probe names the object of {accuracy:.0%} of object cells (want >= 90%)"


def test_probe_fails_when_token_order_is_scrambled(tokens_and_labels) -> None:
    tokens, labels = tokens_and_labels
    accuracy = _probe_accuracy_on_objects(tokens.flip(1), labels)
    assert accuracy < 0.5, f"reversed token order still gave {accuracy:.0%}: the probe does not read positions"
