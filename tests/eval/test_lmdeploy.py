"""The lmdeploy adapter: request building against a fake lmdeploy module (CPU), and a real run (GPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from tinyrs_eval import run
from tinyrs_eval.backends import GenerationSettings, Request
from tinyrs_eval.backends.lmdeploy_backend import LmdeployBackend, build_prompts
from tinyrs_eval.constants import REASONING_SYSTEM_PROMPT
from tinyrs_eval.errors import ConfigError
from tinyrs_eval.prompts import load_template


THINKING = Path(__file__).resolve().parents[2] / "eval" / "configs" / "qwen2_thinking_template.json"


def test_prompts_are_text_image_tuples():
    images = [Image.new("RGB", (8, 6)), Image.new("RGB", (4, 4))]
    reqs = [Request(prompt=f"<full {i}>", query=f"{{CLS}} q{i}", image=img) for i, img in enumerate(images)]
    prompts = build_prompts(reqs)
    assert [p[0] for p in prompts] == ["{CLS} q0", "{CLS} q1"]
    assert prompts[0][1] is images[0] and prompts[1][1] is images[1]


def test_backend_passes_gen_config_keyword(fake_lmdeploy, tmp_path):
    template = load_template(THINKING)
    path = tmp_path / "t.json"
    path.write_text(json.dumps(template.to_dict()))
    settings = GenerationSettings(max_new_tokens=77, do_sample=True, temperature=0.3, top_p=0.8, seed=5)
    backend = LmdeployBackend("ckpt", settings, template, template_path=path, dtype="bfloat16", engine="turbomind")
    ((args, kwargs),) = fake_lmdeploy.pipeline_calls
    assert args == ("ckpt",)
    assert type(kwargs["backend_config"]).__name__ == "TurbomindEngineConfig"
    assert kwargs["backend_config"].kwargs == {"session_len": 8192, "dtype": "bfloat16", "tp": 1}
    assert kwargs["chat_template_config"].kwargs["meta_instruction"] == REASONING_SYSTEM_PROMPT
    out = backend.generate([Request("p", "{VQA} q ", Image.new("RGB", (4, 4)))])
    assert out == ["yes"]
    ((prompts, call_kwargs),) = fake_lmdeploy.infer_calls
    assert set(call_kwargs) == {"gen_config"}  # the keyword lmdeploy reads (the original passed generation_config=)
    assert call_kwargs["gen_config"].kwargs == {
        "max_new_tokens": 77, "do_sample": True, "temperature": 0.3, "top_p": 0.8, "skip_special_tokens": True,
        "stop_words": ["<|im_end|>"], "random_seed": 5,
    }  # fmt: skip
    with pytest.raises(ConfigError, match="float16 or bfloat16"):
        LmdeployBackend("ckpt", settings, template, template_path=path, dtype="float32")
    with pytest.raises(ConfigError, match="beam_size"):
        LmdeployBackend("ckpt", GenerationSettings(beam_size=2), template, template_path=path)


def test_run_with_fake_lmdeploy(fake_lmdeploy, eval_data_root, tmp_path):
    fake_lmdeploy.answer = lambda text: "[[0, 0, 1000, 1000]]" if text.startswith("{VG}") else "<answer>yes</answer>"
    out = tmp_path / "out"
    args = ["--model_type", "lmdeploy", "--model_name_or_path", "aybora/Qwen2-VL-TinyRS-R1", "--data_root",
            str(eval_data_root), "--output_dir", str(out), "--task", "vqa_LR-pre,rs_vg", "--limit", "5",
            "--batch_size", "2", "--reasoning_config", str(THINKING), "--max_new_tokens", "1024",
            "--log_level", "WARNING"]  # fmt: skip
    assert run.cli(args) == 0
    ((_, kwargs),) = fake_lmdeploy.pipeline_calls
    assert type(kwargs["backend_config"]).__name__ == "PytorchEngineConfig"  # the engine the original really ran
    assert fake_lmdeploy.templates[0]["meta_instruction"] == REASONING_SYSTEM_PROMPT
    sizes = [len(prompts) for prompts, _ in fake_lmdeploy.infer_calls]
    assert sizes == [2, 2, 1, 2, 2, 1]  # batched requests, two benchmarks of 5
    gen = fake_lmdeploy.infer_calls[0][1]["gen_config"].kwargs
    assert gen["max_new_tokens"] == 1024 and gen["do_sample"] is False
    texts = [text for prompts, _ in fake_lmdeploy.infer_calls for text, _ in prompts]
    assert texts[0].startswith("{VQA} ") and texts[-1].startswith("{VG} ")
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["model_type"] == "lmdeploy"
    assert results["benchmarks"]["rs_vg"]["strict"]["n"] == 5


@pytest.mark.gpu
def test_real_lmdeploy_on_gpu(tiny_model_dir, eval_data_root, tmp_path):
    """The real engine with the tiny checkpoint (set TINYRS_EVAL_GPU_MODEL to use a real Qwen2-VL checkpoint)."""
    import os

    pytest.importorskip("lmdeploy")
    model = os.environ.get("TINYRS_EVAL_GPU_MODEL", str(tiny_model_dir))
    out = tmp_path / "out"
    args = ["--model_type", "lmdeploy", "--model_name_or_path", model, "--data_root", str(eval_data_root),
            "--output_dir", str(out), "--task", "cls_aid,rs_vg", "--limit", "4", "--max_new_tokens", "16"]  # fmt: skip
    assert run.cli(args) == 0
    results = json.loads((out / "results.json").read_text())
    for bench in results["benchmarks"].values():
        assert bench["n_samples"] == 4 and bench["errors"] == 0


def test_vllm_adapter_with_a_fake_module(monkeypatch):
    import importlib.machinery
    import sys
    import types

    from tinyrs_eval.backends.vllm_backend import VllmBackend

    calls = {}
    mod = types.ModuleType("vllm")
    mod.__spec__ = importlib.machinery.ModuleSpec("vllm", None)

    class LLM:
        def __init__(self, **kwargs):
            calls["llm"] = kwargs

        def generate(self, inputs, params, use_tqdm=True):
            calls["generate"] = (inputs, params)
            out = types.SimpleNamespace(text="B")
            return [types.SimpleNamespace(outputs=[out]) for _ in inputs]

    class SamplingParams:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    mod.LLM, mod.SamplingParams = LLM, SamplingParams
    monkeypatch.setitem(sys.modules, "vllm", mod)
    template = load_template(THINKING)
    backend = VllmBackend("ckpt", GenerationSettings(max_new_tokens=9), template, dtype="bfloat16")
    image = Image.new("RGB", (4, 4))
    assert backend.generate([Request(template.render("q"), "q", image)]) == ["B"]
    inputs, params = calls["generate"]
    assert inputs == [{"prompt": template.render("q"), "multi_modal_data": {"image": image}}]
    assert params.kwargs["max_tokens"] == 9 and params.kwargs["temperature"] == 0.0
    assert params.kwargs["stop"] == ["<|im_end|>"]
    assert calls["llm"]["limit_mm_per_prompt"] == {"image": 1} and calls["llm"]["dtype"] == "bfloat16"
