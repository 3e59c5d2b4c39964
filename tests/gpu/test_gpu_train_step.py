"""bf16 training step of a Qwen2-VL on CUDA: finite loss close to fp32, gradients everywhere, weights move."""

from __future__ import annotations

import importlib.util

import pytest


pytestmark = pytest.mark.gpu

QUESTIONS = ["{CLS} Classify the scene.", "{VG} the plane"]
ANSWERS = ["urban", "[[238, 268, 714, 714]]"]


def _load(model_dir, dtype, device, attn="sdpa"):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=dtype, attn_implementation=attn)
    return processor, model.to(device)


def _batch(processor, chat_texts, images, device):
    texts = chat_texts(processor, QUESTIONS, ANSWERS)
    processor.tokenizer.padding_side = "right"
    inputs = processor(text=texts, images=images[:2], padding=True, return_tensors="pt")
    labels = inputs["input_ids"].clone()
    labels[inputs["attention_mask"] == 0] = -100
    labels[labels == processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")] = -100
    inputs["labels"] = labels
    return inputs.to(device)


def test_bf16_step_matches_fp32_and_updates_weights(cuda, tiny_model_dir, scene_images, chat_texts):
    import torch

    processor, model32 = _load(tiny_model_dir, torch.float32, cuda)
    batch = _batch(processor, chat_texts, scene_images, cuda)
    with torch.no_grad():
        loss32 = model32(**batch).loss.item()
    del model32

    _, model = _load(tiny_model_dir, torch.bfloat16, cuda)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    model.train()
    assert next(model.parameters()).dtype == torch.bfloat16
    out = model(**batch)
    loss = out.loss
    assert torch.isfinite(loss)
    # bf16 keeps about 3 significant digits: the same batch gives nearly the same loss as fp32.
    assert loss.item() == pytest.approx(loss32, rel=2e-2)
    loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    vision = [g.abs().sum().item() for n, g in grads.items() if "visual" in n]
    language = [g.abs().sum().item() for n, g in grads.items() if "language_model" in n]
    assert sum(vision) > 0 and sum(language) > 0

    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    torch.optim.AdamW(model.parameters(), lr=1e-3).step()
    changed = [n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())]
    assert len(changed) > len(before) // 2


@pytest.mark.skipif(importlib.util.find_spec("flash_attn") is None, reason="flash-attn is not installed")
def test_flash_attention_loss_matches_sdpa(cuda, tiny_model_dir, scene_images, chat_texts):
    import torch

    processor, sdpa = _load(tiny_model_dir, torch.bfloat16, cuda, "sdpa")
    batch = _batch(processor, chat_texts, scene_images, cuda)
    with torch.no_grad():
        loss_sdpa = sdpa(**batch).loss.item()
    del sdpa
    _, flash = _load(tiny_model_dir, torch.bfloat16, cuda, "flash_attention_2")
    with torch.no_grad():
        loss_flash = flash(**batch).loss.item()
    assert loss_flash == pytest.approx(loss_sdpa, rel=2e-2)
