"""Checkpoints written by transformers 4.50 (the released TinyRS models) load in every stage of this stack.

The fixture in tests/fixtures/released_checkpoint/ was made by the real transformers 4.50.3 (make_fixture.py, see
its README): flat config.json, old weight names with a tied lm_head, bf16 weights, preprocessor_config.json with
min_pixels 3136 / max_pixels 12544, chat_template.json and the old tokenizer files. Next to it are the inputs,
float32 logits and greedy continuations 4.50 computed, so the cross-version checks compare with real 4.50 numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from helpers import free_port, subprocess_env


FIXTURE = Path(__file__).resolve().parent / "fixtures" / "released_checkpoint"
CHECKPOINT = FIXTURE / "checkpoint"
REFERENCE = FIXTURE / "reference"
MIN_PIXELS, MAX_PIXELS = 3136, 12544
IMAGES = ("inside_84x112.png", "above_224x224.png")  # 48 patches as is; 224x224 is resized to 112x112 (64)
LOGITS_ATOL = 5e-4  # |logits| reach 33; float32 round-off between versions measured 9e-5


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def meta() -> dict:
    return json.loads((REFERENCE / "reference.json").read_text())


@pytest.fixture(scope="module")
def ref_tensors() -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(REFERENCE / "reference.safetensors"))


@pytest.fixture(scope="module")
def fixture_model():
    from transformers import AutoModelForImageTextToText

    return AutoModelForImageTextToText.from_pretrained(CHECKPOINT, dtype=torch.float32).eval()


def reference_inputs(ref_tensors: dict, image: str, image_token_id: int) -> dict[str, torch.Tensor]:
    """The exact model inputs 4.50's processor made (transformers 5 also wants ``mm_token_type_ids``)."""
    key = Path(image).stem
    input_ids = ref_tensors[f"{key}.input_ids"][None]
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "pixel_values": ref_tensors[f"{key}.pixel_values"],
        "image_grid_thw": ref_tensors[f"{key}.image_grid_thw"],
        "mm_token_type_ids": (input_ids == image_token_id).long(),
    }


def processor_inputs(processor, meta: dict, image: str) -> dict[str, torch.Tensor]:
    from PIL import Image

    with Image.open(REFERENCE / image) as img:
        return processor(text=[meta["text"]], images=[img.convert("RGB")], return_tensors="pt")


def assert_bounds(processor, where: str) -> None:
    size = processor.image_processor.size
    assert (size["shortest_edge"], size["longest_edge"]) == (MIN_PIXELS, MAX_PIXELS), f"{where}: {size}"


# ---- the fixture is what 4.50 writes ----------------------------------------------------------------------------


def test_fixture_has_the_transformers_4_50_layout(meta):
    from safetensors import safe_open

    config = json.loads((CHECKPOINT / "config.json").read_text())
    assert config["transformers_version"].startswith("4.50.") and meta["transformers_version"].startswith("4.50.")
    assert "text_config" not in config and config["hidden_size"] == 64  # flat text settings
    assert config["rope_scaling"]["mrope_section"] == [2, 3, 3] and config["tie_word_embeddings"] is True
    preprocessor = json.loads((CHECKPOINT / "preprocessor_config.json").read_text())
    assert (preprocessor["min_pixels"], preprocessor["max_pixels"]) == (MIN_PIXELS, MAX_PIXELS)
    # As the original GRPO saved them: the bounds as attributes, ``size`` left at Qwen2-VL-2B's 3136..12845056.
    assert preprocessor["size"] == {"shortest_edge": MIN_PIXELS, "longest_edge": 12845056}
    assert meta["effective_size_in_4_50"] == {"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS}
    files = {p.name for p in CHECKPOINT.iterdir()}
    assert {"chat_template.json", "vocab.json", "merges.txt", "added_tokens.json", "special_tokens_map.json"} <= files
    assert not files & {"chat_template.jinja", "processor_config.json", "video_preprocessor_config.json"}
    with safe_open(str(CHECKPOINT / "model.safetensors"), framework="pt") as f:
        keys = set(f.keys())
        dtypes = {f.get_tensor(k).dtype for k in keys}
    assert "model.embed_tokens.weight" in keys and "visual.merger.mlp.0.weight" in keys  # pre-4.52 names
    assert "lm_head.weight" not in keys and dtypes == {torch.bfloat16}
    size = sum(p.stat().st_size for p in FIXTURE.rglob("*") if p.is_file())
    assert size < 2 * 1024 * 1024, f"fixture is {size} bytes; keep it under 2 MiB"


# ---- cross-version numbers --------------------------------------------------------------------------------------


@pytest.mark.parametrize("image", IMAGES)
def test_logits_match_transformers_4_50(fixture_model, ref_tensors, image):
    model = fixture_model
    assert model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()  # still tied
    with torch.no_grad():
        logits = model(**reference_inputs(ref_tensors, image, model.config.image_token_id)).logits[0]
    torch.testing.assert_close(logits, ref_tensors[f"{Path(image).stem}.logits"], atol=LOGITS_ATOL, rtol=0)


def test_processor_keeps_bounds_and_matches_transformers_4_50(meta, ref_tensors):
    from transformers import AutoImageProcessor, AutoProcessor

    processor = AutoProcessor.from_pretrained(CHECKPOINT)
    assert_bounds(processor, "AutoProcessor")
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": meta["prompt"]}]}]
    assert processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) == meta["text"]
    assert processor.tokenizer.eos_token == "<|im_end|>" and processor.tokenizer.pad_token == "<|endoftext|>"
    for image in IMAGES:
        key = Path(image).stem
        inputs = processor_inputs(processor, meta, image)
        assert torch.equal(inputs["input_ids"][0], ref_tensors[f"{key}.input_ids"]), image
        assert inputs["image_grid_thw"][0].tolist() == meta["images"][image]["grid_thw"], image
        # No resize: identical. Resized: torchvision's bicubic differs from 4.50's PIL one by about a grey level.
        atol = 1e-5 if image == IMAGES[0] else 0.03
        torch.testing.assert_close(inputs["pixel_values"], ref_tensors[f"{key}.pixel_values"], atol=atol, rtol=0)
    # The PIL backend is 4.50's image processor: the resized image matches exactly.
    pil = AutoImageProcessor.from_pretrained(CHECKPOINT, backend="pil")
    assert (pil.size["shortest_edge"], pil.size["longest_edge"]) == (MIN_PIXELS, MAX_PIXELS)
    from PIL import Image

    with Image.open(REFERENCE / IMAGES[1]) as img:
        pixels = pil(images=[img.convert("RGB")], return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(pixels, ref_tensors[f"{Path(IMAGES[1]).stem}.pixel_values"], atol=1e-5, rtol=0)


def test_resaved_by_our_stack_gives_the_same_logits(fixture_model, meta, ref_tensors, tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(CHECKPOINT)  # dtype from the config: bfloat16
    assert model.dtype == torch.bfloat16
    model.save_pretrained(tmp_path)
    AutoProcessor.from_pretrained(CHECKPOINT).save_pretrained(tmp_path)
    assert "text_config" in json.loads((tmp_path / "config.json").read_text())  # now in the transformers 5 layout
    resaved = AutoModelForImageTextToText.from_pretrained(tmp_path, dtype=torch.float32).eval()
    processor = AutoProcessor.from_pretrained(tmp_path)
    assert_bounds(processor, "re-saved processor")
    for image in IMAGES:
        inputs = processor_inputs(processor, meta, image)
        with torch.no_grad():
            torch.testing.assert_close(resaved(**inputs).logits, fixture_model(**inputs).logits, atol=0, rtol=0)


# ---- every stage loads it ---------------------------------------------------------------------------------------


def sft_records(path: Path) -> Path:
    records = [
        {
            "id": f"r{i}",
            "image": image,
            "conversations": [
                {"from": "human", "value": "<image>\n{CLS} What is in the image?"},
                {"from": "gpt", "value": answer},
            ],
        }
        for i, (image, answer) in enumerate(zip(IMAGES, ("farmland", "water")))
    ]
    path.write_text(json.dumps(records))
    return path


def run_sft(output_dir: Path, data: Path, *extra: str) -> None:
    from tinyrs_sft.train import cli

    argv = [
        "--model_id", str(CHECKPOINT), "--data_path", str(data), "--image_folder", str(REFERENCE),
        "--output_dir", str(output_dir), "--use_cpu", "True", "--report_to", "none",
        "--per_device_train_batch_size", "2", "--max_steps", "2", "--learning_rate", "1e-3",
        "--logging_steps", "1", "--save_strategy", "no", "--disable_tqdm", "True",
        "--dataloader_num_workers", "0", "--seed", "0", *extra,
    ]  # fmt: skip
    assert cli(argv) == 0  # the `tinyrs-sft train` / `python -m tinyrs_sft.train` entry point


def test_sft_trains_from_released_checkpoint_and_keeps_its_bounds(meta, tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from tinyrs_sft.model import load_processor

    assert_bounds(load_processor(str(CHECKPOINT)), "tinyrs_sft.model.load_processor")
    out = tmp_path / "sft"
    run_sft(out, sft_records(tmp_path / "train.json"), "--tune_merger", "True")
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    assert [e["step"] for e in history if "loss" in e] == [1, 2]
    assert all(torch.isfinite(torch.tensor(e["loss"])) for e in history if "loss" in e)
    processor = AutoProcessor.from_pretrained(out)
    assert_bounds(processor, "SFT output")
    model = AutoModelForImageTextToText.from_pretrained(out, dtype=torch.float32).eval()
    assert model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    inputs = processor_inputs(processor, meta, IMAGES[1])
    assert inputs["image_grid_thw"][0].tolist() == [1, 8, 8]  # 224x224 still resized to the checkpoint's bound
    with torch.no_grad():
        assert torch.isfinite(model(**inputs).logits).all()


def test_lora_on_released_checkpoint_merges_with_its_bounds(meta, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from tinyrs_sft.merge_lora import merge_lora

    out = tmp_path / "lora"
    run_sft(
        out, sft_records(tmp_path / "train.json"), "--learning_rate", "1e-2", "--lora_enable", "True",
        "--freeze_llm", "True", "--freeze_vision_tower", "True", "--tune_merger", "False", "--lora_rank", "4",
        "--lora_alpha", "8", "--lora_dropout", "0.0",
    )  # fmt: skip
    assert (out / "adapter_config.json").is_file()
    merged_dir = tmp_path / "merged"
    merge_lora(out, merged_dir, dtype="float32")
    processor = AutoProcessor.from_pretrained(merged_dir)
    assert_bounds(processor, "merged checkpoint")
    inputs = processor_inputs(processor, meta, IMAGES[1])
    base = AutoModelForImageTextToText.from_pretrained(CHECKPOINT, dtype=torch.float32)
    merged = AutoModelForImageTextToText.from_pretrained(merged_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        base_logits = base.eval()(**inputs).logits
        unmerged_logits = PeftModel.from_pretrained(base, str(out)).eval()(**inputs).logits
        merged_logits = merged(**inputs).logits
    assert not torch.allclose(base_logits, unmerged_logits, atol=1e-3)  # the adapter learned something
    torch.testing.assert_close(merged_logits, unmerged_logits, atol=LOGITS_ATOL, rtol=0)


def test_grpo_keeps_the_checkpoint_bounds_and_trains(tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from tinyrs_grpo.model import load_processor
    from tinyrs_grpo.train import main, make_parser

    assert_bounds(load_processor(str(CHECKPOINT)), "tinyrs_grpo.model.load_processor")
    out = tmp_path / "grpo"
    args = [
        "--model_name_or_path", str(CHECKPOINT), "--dataset_name", str(FIXTURE.parent / "grpo_rows.jsonl"),
        "--output_dir", str(out), "--use_cpu", "true", "--bf16", "false", "--gradient_checkpointing", "false",
        "--report_to", "none", "--per_device_train_batch_size", "2", "--num_generations", "2",
        "--max_completion_length", "8", "--max_steps", "2", "--learning_rate", "1e-3", "--logging_steps", "1",
        "--reward_funcs", "accuracy", "format", "--judge", "none", "--seed", "0", "--disable_tqdm", "true",
        "--save_strategy", "no", "--temperature", "2.0",
    ]  # fmt: skip
    script_args, training_args, model_args = make_parser().parse_args_and_config(args=args)
    trainer = main(script_args, training_args, model_args)
    assert trainer.state.global_step == 2
    # The checkpoint's generation_config (top_k 1, top_p 0.001, as Qwen2-VL-2B-Instruct) must not make GRPO's
    # sampling greedy: the two completions of the last prompt differ.
    completions = list(trainer._logs["completion"])
    assert len(completions) == 2 and completions[0] != completions[1], completions
    assert_bounds(AutoProcessor.from_pretrained(out), "GRPO output")
    model = AutoModelForImageTextToText.from_pretrained(out, dtype=torch.float32)
    assert model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()


def test_grpo_dry_run_reports_the_bounds_training_uses(tmp_path):
    """4.x files keep ``size`` and top-level ``min_pixels``/``max_pixels`` apart; the top-level keys win on load."""
    from transformers import AutoProcessor

    from tinyrs_grpo.dry_run import checkpoint_pixel_bounds
    from tinyrs_grpo.model import load_processor, pixel_bounds

    assert checkpoint_pixel_bounds(str(CHECKPOINT)) == pixel_bounds(load_processor(str(CHECKPOINT)))
    assert checkpoint_pixel_bounds(str(CHECKPOINT)) == (MIN_PIXELS, MAX_PIXELS)
    # Qwen2-VL-2B-Instruct's own file has no ``size`` at all.
    hub_style = json.loads((CHECKPOINT / "preprocessor_config.json").read_text())
    del hub_style["size"]
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(hub_style))
    assert checkpoint_pixel_bounds(str(tmp_path)) == (MIN_PIXELS, MAX_PIXELS)
    # A transformers 5 save (processor_config.json) of the same processor.
    resaved = tmp_path / "resaved"
    AutoProcessor.from_pretrained(CHECKPOINT).save_pretrained(resaved)
    assert checkpoint_pixel_bounds(str(resaved)) == (MIN_PIXELS, MAX_PIXELS)


def test_eval_hf_backend_generates_what_transformers_4_50_generated(meta):
    from PIL import Image

    from tinyrs_eval.backends import GenerationSettings, Request
    from tinyrs_eval.backends.hf import HFBackend
    from tinyrs_eval.prompts import DEFAULT_TEMPLATE

    # The checkpoint's generation_config says do_sample with top_k 1 (as Qwen2-VL-2B-Instruct); --do_sample False wins.
    backend = HFBackend(str(CHECKPOINT), GenerationSettings(max_new_tokens=8), DEFAULT_TEMPLATE, dtype="float32")
    assert_bounds(backend.processor, "tinyrs_eval HFBackend")
    prompt = DEFAULT_TEMPLATE.render(meta["prompt"])
    assert prompt == meta["text"]
    requests = []
    for image in IMAGES:
        with Image.open(REFERENCE / image) as img:
            requests.append(Request(prompt=prompt, query=meta["prompt"], image=img.convert("RGB")))
    # One batch: the two images give 12 and 16 visual tokens, so the shorter prompt is left-padded.
    assert backend.generate(requests) == [meta["images"][image]["greedy_text"] for image in IMAGES]
    assert [backend.generate([r]) for r in requests] == [[meta["images"][image]["greedy_text"]] for image in IMAGES]
    backend.close()


@pytest.mark.slow
def test_sft_under_zero3_keeps_the_released_weights_and_bounds(meta, ref_tensors, tmp_path):
    """The paper's recipe (ZeRO-3) on a tied-embedding 4.50 checkpoint: with learning rate 0 the gathered, saved
    weights must still give 4.50's logits (a lost or untied lm_head, or mangled names, would not)."""
    import subprocess
    import sys

    from transformers import AutoModelForImageTextToText, AutoProcessor

    env = subprocess_env(DS_ACCELERATOR="cpu", RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
                         MASTER_PORT=str(free_port()))  # fmt: skip
    out = tmp_path / "zero3"
    cmd = [
        sys.executable, "-m", "tinyrs_sft.train",
        "--deepspeed", str(FIXTURE.parents[2] / "sft" / "configs" / "deepspeed" / "zero3.json"),
        "--model_id", str(CHECKPOINT), "--data_path", str(sft_records(tmp_path / "train.json")),
        "--image_folder", str(REFERENCE), "--output_dir", str(out), "--use_cpu", "True", "--report_to", "none",
        "--max_steps", "2", "--per_device_train_batch_size", "2", "--learning_rate", "0", "--vision_lr", "0",
        "--merger_lr", "0", "--tune_merger", "True", "--logging_steps", "1", "--save_strategy", "no",
        "--disable_tqdm", "True",
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert_bounds(AutoProcessor.from_pretrained(out), "ZeRO-3 SFT output")
    model = AutoModelForImageTextToText.from_pretrained(out, dtype=torch.float32).eval()
    assert model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    for image in IMAGES:
        with torch.no_grad():
            logits = model(**reference_inputs(ref_tensors, image, model.config.image_token_id)).logits[0]
        torch.testing.assert_close(logits, ref_tensors[f"{Path(image).stem}.logits"], atol=LOGITS_ATOL, rtol=0)
