"""A bf16 training step at the Qwen2-VL-2B shape on CUDA, with images at the SFT recipe's resolution: the loss of a
random model is near ln(vocabulary) and close to fp32's, gradients reach the vision tower and the language model, the
optimizer moves the weights, and the step fits an 80 GB card."""

from __future__ import annotations

import importlib.util
import math

import pytest

from helpers import chat_texts


pytestmark = pytest.mark.gpu

QWEN2VL_2B_PARAMETERS = 2_208_985_600  # Qwen2-VL-2B-Instruct, tied embeddings counted once

QUESTIONS = ["{CLS} Classify the scene.", "{VG} the plane"]
ANSWERS = ["urban", "[[238, 268, 714, 714]]"]


def _load(model_dir, dtype, device, attn="sdpa"):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=dtype, attn_implementation=attn)
    return processor, model.to(device)


def _batch(processor, images, device):
    texts = chat_texts(processor, QUESTIONS, ANSWERS)
    processor.tokenizer.padding_side = "right"
    inputs = processor(text=texts, images=images[:2], padding=True, return_tensors="pt")
    labels = inputs["input_ids"].clone()
    labels[inputs["attention_mask"] == 0] = -100
    image_pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    labels[labels == image_pad] = -100
    inputs["labels"] = labels
    return inputs.to(device)


def test_real_shape_bf16_step(cuda, real_model_dir, scene_images):
    import torch

    processor, model32 = _load(real_model_dir, torch.float32, cuda)
    assert sum(p.numel() for p in model32.parameters()) == QWEN2VL_2B_PARAMETERS
    batch = _batch(processor, scene_images, cuda)
    image_tokens = (batch["input_ids"] == processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")).sum(dim=1)
    assert image_tokens.min().item() >= 512  # the recipe's image_min_pixels 401408: at least 512 visual tokens
    with torch.no_grad():
        loss32 = model32(**batch).loss.item()
    del model32
    torch.cuda.empty_cache()

    _, model = _load(real_model_dir, torch.bfloat16, cuda)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    model.train()
    torch.cuda.reset_peak_memory_stats()
    loss = model(**batch).loss
    assert torch.isfinite(loss)
    # A random model predicts nearly uniformly over the 151,936 rows: loss about ln(151936) = 11.9.
    assert abs(loss.item() - math.log(151936)) < 1.5
    assert loss.item() == pytest.approx(loss32, rel=2e-2)  # bf16 keeps about 3 significant digits
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert sum(g.abs().sum().item() for n, g in grads.items() if "visual" in n) > 0
    assert sum(g.abs().sum().item() for n, g in grads.items() if "language_model" in n) > 0

    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    torch.optim.AdamW(model.parameters(), lr=1e-3).step()
    changed = [n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())]
    assert len(changed) > len(before) // 2
    del before
    assert torch.cuda.max_memory_allocated() / 2**30 < 80


@pytest.mark.skipif(importlib.util.find_spec("flash_attn") is None, reason="flash-attn is not installed")
def test_flash_attention_loss_matches_sdpa(cuda, real_model_dir, scene_images):
    import torch

    processor, sdpa = _load(real_model_dir, torch.bfloat16, cuda, "sdpa")
    batch = _batch(processor, scene_images, cuda)
    with torch.no_grad():
        loss_sdpa = sdpa(**batch).loss.item()
    del sdpa
    _, flash = _load(real_model_dir, torch.bfloat16, cuda, "flash_attention_2")
    with torch.no_grad():
        loss_flash = flash(**batch).loss.item()
    assert loss_flash == pytest.approx(loss_sdpa, rel=2e-2)
