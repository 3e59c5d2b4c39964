"""Generation on CUDA: batched left-padded prompts score like single ones (tiny model, fp32), and tinyrs-eval's hf
backend generates batched in bf16 at the Qwen2-VL-2B shape, deterministically."""

from __future__ import annotations

import pytest

from helpers import chat_texts


pytestmark = pytest.mark.gpu

QUESTIONS = [
    "{CLS} Classify the scene.",
    "{VQA} Is there a plane in the image? Answer yes or no.",
    "{VG} the ship near the top of the image",
]


def test_batched_first_token_scores_match_single_prompts(cuda, tiny_model_dir, scene_images, monkeypatch):
    """Left padding and per-sample rope positions: in fp32 each row of a padded batch scores like the row alone."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    # Exact fp32 maths (no TF32 in the patch-embedding convolution or matmuls) for a tight comparison.
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    processor.tokenizer.padding_side = "left"
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir, dtype=torch.float32).to(cuda).eval()
    texts = chat_texts(processor, QUESTIONS)
    settings = dict(max_new_tokens=4, do_sample=False, output_scores=True, return_dict_in_generate=True)

    batch = processor(text=texts, images=scene_images, padding=True, return_tensors="pt").to(cuda)
    assert (batch["attention_mask"] == 0).any(), "the prompts should need padding for this test to mean anything"
    batched = model.generate(**batch, **settings)
    for i in range(len(texts)):
        single_inputs = processor(text=[texts[i]], images=[scene_images[i]], return_tensors="pt").to(cuda)
        single = model.generate(**single_inputs, **settings)
        torch.testing.assert_close(batched.scores[0][i], single.scores[0][0], atol=2e-3, rtol=2e-3)
    new = batched.sequences[:, batch["input_ids"].shape[1] :]
    assert new.shape[0] == len(texts) and 1 <= new.shape[1] <= 4


def test_eval_hf_backend_real_shape_bf16_batched(cuda, real_model_dir, scene_images):
    import torch

    from tinyrs_eval.backends import GenerationSettings, Request, create_backend
    from tinyrs_eval.prompts import load_template

    template = load_template(None)
    backend = create_backend(
        "hf",
        model_path=str(real_model_dir),
        settings=GenerationSettings(max_new_tokens=16),
        template=template,
        template_path=None,
        dtype="bfloat16",
        device=str(cuda),
    )
    try:
        assert backend.model.device.type == cuda.type
        assert next(backend.model.parameters()).dtype == torch.bfloat16
        assert backend.model.config.text_config.hidden_size == 1536
        requests = [Request(prompt=template.render(q), query=q, image=im) for q, im in zip(QUESTIONS, scene_images)]
        first = backend.generate(requests)
        second = backend.generate(requests)
    finally:
        backend.close()
    assert len(first) == len(requests)
    assert all(isinstance(text, str) for text in first)
    assert first == second  # greedy decoding is deterministic
