"""End-to-end training on the tiny model (CPU, in-process): learning, checkpoints, resume, bad data, LoRA merge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from helpers import run_sft, simple_record, write_json
from tinyrs_sft.records import DataError


CHECKPOINT_FILES = {
    "model.safetensors",
    "config.json",
    "generation_config.json",
    "chat_template.jinja",
    "tokenizer.json",
    "tokenizer_config.json",
    "processor_config.json",
}


def losses(output_dir: Path) -> list[tuple[int, float]]:
    state = json.loads((output_dir / "trainer_state.json").read_text())
    return [(e["step"], e["loss"]) for e in state["log_history"] if "loss" in e]


def test_loss_falls_when_overfitting(tiny_model_dir, data_dir, tmp_path):
    records = [simple_record(i, image=img, answer=ans) for i, (img, ans) in enumerate(
        [("a.png", "green field"), ("b.png", "red roof"), ("c.png", "blue lake"), (None, "no image")]
    )]  # fmt: skip
    data = write_json(data_dir / "train.json", records)
    out = tmp_path / "out"
    run_sft(
        tiny_model_dir, data, data_dir / "images", out,
        "--max_steps", "40", "--learning_rate", "5e-3", "--per_device_train_batch_size", "4",
        "--lr_scheduler_type", "constant",
    )  # fmt: skip
    history = losses(out)
    first, last = history[0][1], sum(loss for _, loss in history[-5:]) / 5
    assert last < 0.5 * first, history
    # The final folder is a complete checkpoint that loads and generates.
    assert CHECKPOINT_FILES <= {p.name for p in out.iterdir()}


def test_checkpoint_reloads_and_generates(tiny_model_dir, data_dir, tmp_path):
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    data = write_json(data_dir / "train.json", [simple_record(i) for i in range(4)])
    out = tmp_path / "out"
    run_sft(
        tiny_model_dir, data, data_dir / "images", out,
        "--max_steps", "2", "--save_strategy", "steps", "--save_steps", "1", "--image_max_pixels", "3136",
    )  # fmt: skip
    for folder in (out / "checkpoint-1", out / "checkpoint-2", out):
        assert CHECKPOINT_FILES <= {p.name for p in folder.iterdir()}, folder
    # The model card names the base model, the data, the recipe and the stage (read from the {CLS} records).
    card = (out / "README.md").read_text()
    assert f"base_model: {tiny_model_dir}\n" in card and f"`{data}` (4 records used)" in card
    assert "**Stage**: instruction SFT (`sft`; read from the data: 4 of 4 sampled records carry a task tag" in card
    assert "**Recipe**: flags only" in card and "**Training**: 2 optimizer steps, final training loss" in card
    assert "param group llm: trained, lr 5e-05" in card and "param group merger: trained, lr 5e-05" in card
    assert "global batch 2 = 2 per device x 1 accumulation x 1 processes" in card and "max_steps 2" in card
    assert "loss normalisation global_tokens" in card and "DeepSpeed: not used" in card
    model = AutoModelForImageTextToText.from_pretrained(out)
    processor = AutoProcessor.from_pretrained(out)
    assert model.config.text_config.use_cache is True
    assert processor.image_processor.size["longest_edge"] == 3136  # the training bounds travel with the checkpoint
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is this?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[Image.open(data_dir / "images" / "b.png")], return_tensors="pt")
    assert int(inputs["image_grid_thw"].prod()) == 16  # 112x112 resized to 56x56 by the stored bounds
    generated = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert generated.shape[1] > inputs["input_ids"].shape[1]


def test_resume_continues_from_saved_step(tiny_model_dir, data_dir, tmp_path):
    data = write_json(data_dir / "train.json", [simple_record(i) for i in range(8)])
    out = tmp_path / "out"
    common = ("--save_strategy", "steps", "--save_steps", "2", "--learning_rate", "1e-3")
    run_sft(tiny_model_dir, data, data_dir / "images", out, "--max_steps", "2", *common)
    assert (out / "checkpoint-2").is_dir()
    # Second run, same output_dir, longer schedule: picks up checkpoint-2 automatically.
    run_sft(tiny_model_dir, data, data_dir / "images", out, "--max_steps", "4", *common)
    steps = [step for step, _ in losses(out)]
    assert steps == [1, 2, 3, 4]  # steps 1-2 come from the first run's state, not trained again
    assert json.loads((out / "trainer_state.json").read_text())["global_step"] == 4
    # Explicit --resume_from_checkpoint wins over the newest checkpoint.
    run_sft(
        tiny_model_dir, data, data_dir / "images", out, "--max_steps", "4",
        "--resume_from_checkpoint", str(out / "checkpoint-2"), *common,
    )  # fmt: skip
    assert [step for step, _ in losses(out)] == [1, 2, 3, 4]


def test_bad_data_stops_training_before_the_model_loads(tiny_model_dir, data_dir, tmp_path):
    data = write_json(data_dir / "train.json", [simple_record(0), simple_record(1, image="missing.png")])
    with pytest.raises(DataError, match=r"1 of 2 records are bad \(first: .*record 1 \(id='r1'\): image not found"):
        run_sft(tiny_model_dir, data, data_dir / "images", tmp_path / "out", "--max_steps", "1")
    assert not (tmp_path / "out").exists()


def test_skip_bad_samples_skips_and_counts(tiny_model_dir, data_dir, tmp_path, caplog):
    data = write_json(data_dir / "train.json", [simple_record(0), simple_record(1, image="missing.png")])
    with caplog.at_level("INFO", logger="tinyrs_sft"):
        run_sft(
            tiny_model_dir, data, data_dir / "images", tmp_path / "out", "--max_steps", "1",
            "--skip_bad_samples", "True",
        )  # fmt: skip
    assert "skipping 1 bad records of 2" in caplog.text
    assert "record 1 (id='r1'): image not found" in caplog.text
    assert "param group vision" in caplog.text and "trainable of" in caplog.text


def test_lora_train_and_merge_matches_unmerged(tiny_model_dir, data_dir, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    from tinyrs_sft.cli import main as cli_main
    from tinyrs_sft.collator import SupervisedCollator
    from tinyrs_sft.data import SupervisedDataset, VisionBounds
    from tinyrs_sft.model import load_processor
    from tinyrs_sft.records import MediaPolicy, RecordSource

    data = write_json(data_dir / "train.json", [simple_record(i, image=f"{img}.png") for i, img in enumerate("abc")])
    out = tmp_path / "lora"
    run_sft(
        tiny_model_dir, data, data_dir / "images", out,
        "--max_steps", "4", "--learning_rate", "1e-2", "--lora_enable", "True", "--freeze_llm", "True",
        "--freeze_vision_tower", "True", "--lora_rank", "4", "--lora_alpha", "8", "--lora_dropout", "0.0",
    )  # fmt: skip
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()

    processor = load_processor(str(tiny_model_dir))
    ds = SupervisedDataset(
        RecordSource(data), processor, MediaPolicy(data_dir / "images"), VisionBounds(), max_seq_length=4096
    )
    batch = SupervisedCollator(processor.tokenizer)([ds[0], ds[1]])
    batch.pop("labels")
    base = AutoModelForImageTextToText.from_pretrained(tiny_model_dir, dtype=torch.float32)
    with torch.no_grad():
        base_logits = base(**batch).logits
        unmerged = PeftModel.from_pretrained(base, str(out)).eval()
        unmerged_logits = unmerged(**batch).logits
    assert not torch.allclose(base_logits, unmerged_logits, atol=1e-4)  # the adapter (and merger) learned something

    for dtype, atol in (("float32", 1e-5), ("bfloat16", 0.15)):
        merged_dir = tmp_path / f"merged-{dtype}"
        assert (
            cli_main(["merge-lora", "--adapter_path", str(out), "--output_dir", str(merged_dir), "--dtype", dtype])
            == 0
        )
        assert CHECKPOINT_FILES <= {p.name for p in merged_dir.iterdir()}
        merged = AutoModelForImageTextToText.from_pretrained(merged_dir)
        assert merged.dtype == getattr(torch, dtype)
        with torch.no_grad():
            merged_logits = merged.float()(**batch).logits
        torch.testing.assert_close(merged_logits, unmerged_logits, atol=atol, rtol=0)
