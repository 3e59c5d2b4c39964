"""The lmdeploy adapter of tinyrs-eval loads the Qwen2-VL-2B-shaped checkpoint on a GPU and answers every request;
skipped where lmdeploy is missing (its ~102 MiB wheel is over the 64 MiB that can be carried)."""

from __future__ import annotations

import json

import pytest


pytestmark = pytest.mark.gpu


def test_lmdeploy_backend_generates_one_text_per_request(cuda, real_model_dir, scene_images, tmp_path):
    pytest.importorskip("lmdeploy")
    from tinyrs_eval.backends import GenerationSettings, Request, create_backend
    from tinyrs_eval.prompts import load_template

    template = load_template(None)
    template_path = tmp_path / "chat_template.json"
    template_path.write_text(json.dumps(template.to_dict()), encoding="utf-8")
    backend = create_backend(
        "lmdeploy",
        model_path=str(real_model_dir),
        settings=GenerationSettings(max_new_tokens=8),
        template=template,
        template_path=template_path,
        dtype="bfloat16",
        engine="pytorch",
        session_len=4096,
        tp=1,
    )
    try:
        queries = ["{CLS} Classify the scene.", "{VQA} Is there a plane? Answer yes or no."]
        requests = [Request(prompt=template.render(q), query=q, image=im) for q, im in zip(queries, scene_images)]
        outputs = backend.generate(requests)
    finally:
        backend.close()
    assert len(outputs) == len(requests)
    assert all(isinstance(text, str) for text in outputs)
