"""Chat layout, label mask, pixel bounds, truncation and batching of the SFT data pipeline (tiny tokenizer)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers import simple_record, write_json
from tinyrs_sft.collator import SupervisedCollator
from tinyrs_sft.constants import IGNORE_INDEX
from tinyrs_sft.data import SupervisedDataset, VisionBounds, apply_bounds_to_processor, encode_conversation
from tinyrs_sft.records import DataError, MediaPolicy, RecordSource


PAD4 = "<|image_pad|>" * 4


def spans(tokenizer, input_ids: list[int], labels: list[int]) -> list[tuple[str, bool]]:
    """Decode runs of positions with the same supervised flag: the layout and the mask in one readable value."""
    out: list[tuple[str, bool]] = []
    start = 0
    for i in range(1, len(input_ids) + 1):
        if i == len(input_ids) or (labels[i] != IGNORE_INDEX) != (labels[start] != IGNORE_INDEX):
            out.append((tokenizer.decode(input_ids[start:i]), labels[start] != IGNORE_INDEX))
            start = i
    return out


def make_dataset(processor, data_dir: Path, records: list, max_seq_length: int = 4096, **bounds):
    path = write_json(data_dir / "d.json", records)
    return SupervisedDataset(
        RecordSource(path),
        processor,
        MediaPolicy(image_folder=data_dir / "images"),
        VisionBounds(**bounds),
        max_seq_length,
    )


TWO_TURNS = {
    "id": "golden",
    "image": "a.png",
    "conversations": [
        {"from": "human", "value": "<image>\nWhat is this?"},
        {"from": "gpt", "value": "A farm."},
        {"from": "human", "value": "How many fields?"},
        {"from": "gpt", "value": "3"},
    ],
}


def test_golden_two_turn_layout_and_mask(tiny_processor, data_dir: Path):
    ds = make_dataset(tiny_processor, data_dir, [TWO_TURNS])
    example = ds[0]
    ids, labels = example["input_ids"].tolist(), example["labels"].tolist()
    assert spans(tiny_processor.tokenizer, ids, labels) == [
        (
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|>"
            + PAD4
            + "<|vision_end|>What is this?<|im_end|>\n<|im_start|>assistant\n",
            False,
        ),
        ("A farm.<|im_end|>", True),
        ("\n<|im_start|>user\nHow many fields?<|im_end|>\n<|im_start|>assistant\n", False),
        ("3<|im_end|>", True),
        ("\n", False),
    ]
    # Supervised labels are the tokens themselves; a 56x56 image is 4 visual tokens.
    assert all(label in (IGNORE_INDEX, tok) for tok, label in zip(ids, labels))
    assert example["image_grid_thw"].tolist() == [[1, 4, 4]]
    # Same text as the official chat template (what GRPO and evaluation render), pads expanded.
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is this?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "A farm."}]},
        {"role": "user", "content": [{"type": "text", "text": "How many fields?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "3"}]},
    ]
    rendered = tiny_processor.apply_chat_template(messages, tokenize=False)
    assert tiny_processor.tokenizer.decode(ids) == rendered.replace("<|image_pad|>", PAD4)
    # And the same ids as tokenising that whole text at once (no merge across the segment boundaries).
    whole = tiny_processor.tokenizer(rendered.replace("<|image_pad|>", PAD4), add_special_tokens=False)["input_ids"]
    assert ids == whole


def test_record_system_prompt_replaces_default(tiny_processor):
    conv = [
        {"from": "system", "value": "Think first."},
        {"from": "human", "value": "q"},
        {"from": "gpt", "value": "a"},
    ]
    ids, labels = encode_conversation(conv, tiny_processor.tokenizer)
    text = tiny_processor.tokenizer.decode(ids)
    assert text.startswith("<|im_start|>system\nThink first.<|im_end|>\n") and "helpful assistant" not in text
    assert tiny_processor.tokenizer.decode([t for t, lab in zip(ids, labels) if lab != IGNORE_INDEX]) == "a<|im_end|>"


def test_text_only_record(tiny_processor, data_dir: Path):
    example = make_dataset(tiny_processor, data_dir, [simple_record(0, image=None)])[0]
    assert "pixel_values" not in example and "image_grid_thw" not in example
    assert tiny_processor.tokenizer.convert_tokens_to_ids("<|image_pad|>") not in example["input_ids"].tolist()


def test_images_follow_placeholders_across_turns(tiny_processor, data_dir: Path):
    record = {
        "id": "mi",
        "image": ["a.png", "b.png"],  # 4 and 16 visual tokens
        "conversations": [
            {"from": "human", "value": "<image>\nfirst"},
            {"from": "gpt", "value": "x"},
            {"from": "human", "value": "<image>\nsecond"},
            {"from": "gpt", "value": "y"},
        ],
    }
    example = make_dataset(tiny_processor, data_dir, [record])[0]
    text = tiny_processor.tokenizer.decode(example["input_ids"])
    assert "user\n<|vision_start|>" + PAD4 + "<|vision_end|>first" in text
    assert "user\n<|vision_start|>" + "<|image_pad|>" * 16 + "<|vision_end|>second" in text
    assert example["image_grid_thw"].tolist() == [[1, 4, 4], [1, 8, 8]]
    assert example["pixel_values"].shape[0] == 16 + 64


def test_pixel_bounds_change_visual_token_count(tiny_processor, data_dir: Path):
    records = [simple_record(0, image="b.png")]  # 112x112: 16 visual tokens at native size
    image_pad = tiny_processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")

    def n_visual(**bounds) -> int:
        example = make_dataset(tiny_processor, data_dir, records, **bounds)[0]
        n = int((example["input_ids"] == image_pad).sum())
        assert n == int(example["image_grid_thw"].prod()) // 4
        return n

    assert n_visual() == 16
    assert n_visual(image_max_pixels=56 * 56) == 4  # downscaled to 56x56
    assert n_visual(image_min_pixels=224 * 224, image_max_pixels=224 * 224) == 64  # upscaled to 224x224
    assert n_visual(image_min_pixels=168 * 168, image_max_pixels=168 * 168) == 36


def test_bounds_are_stored_in_the_processor(tiny_processor):
    apply_bounds_to_processor(tiny_processor, VisionBounds(image_min_pixels=1000, image_max_pixels=5000))
    assert (
        tiny_processor.image_processor.size["shortest_edge"],
        tiny_processor.image_processor.size["longest_edge"],
    ) == (
        1000,
        5000,
    )
    features = tiny_processor.image_processor(images=[torch.zeros(3, 112, 112)], return_tensors="pt")
    assert features["image_grid_thw"].prod() * 14 * 14 <= 5000


def test_video_frames_follow_video_bounds(tiny_processor, data_dir: Path):
    from PIL import Image

    frames = data_dir / "images" / "clip"
    frames.mkdir()
    for k in range(4):
        Image.new("RGB", (112, 112), (10 * k, 50, 90)).save(frames / f"{k:03d}.png")
    record = {
        "id": "v",
        "video": "clip",
        "conversations": [{"from": "human", "value": "<video>\nq"}, {"from": "gpt", "value": "a"}],
    }
    video_pad = tiny_processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    counts = []
    for max_pixels in (56 * 56, 112 * 112):
        ds = make_dataset(tiny_processor, data_dir, [record], video_min_pixels=56 * 56, video_max_pixels=max_pixels)
        example = ds[0]
        counts.append(int((example["input_ids"] == video_pad).sum()))
        assert counts[-1] == int(example["video_grid_thw"].prod()) // 4
    assert counts == [2 * 4, 2 * 16]  # 4 frames -> 2 temporal patches; 56x56 -> 4 tokens, 112x112 -> 16


def test_truncation_keeps_images_and_cuts_after_them(tiny_processor, data_dir: Path):
    long_answer = " ".join(["farmland"] * 200)
    ds = make_dataset(tiny_processor, data_dir, [simple_record(0, answer=long_answer)], max_seq_length=64)
    example = ds[0]
    assert example["input_ids"].numel() == 64
    assert (example["labels"] != IGNORE_INDEX).sum() > 0
    image_pad = tiny_processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert int((example["input_ids"] == image_pad).sum()) == 4  # all visual tokens kept


def test_records_that_cannot_fit_are_skipped_and_counted(tiny_processor, data_dir: Path, caplog):
    # r0: the image itself reaches past 40 tokens (b.png: 16 tokens after a ~30-token prompt) -> skipped.
    # r1: fits. r2: the prompt alone is longer than the limit, no answer token would remain -> skipped.
    records = [
        simple_record(0, image="b.png"),
        simple_record(1, image=None, answer="ok"),
        {"id": "r2", "conversations": [{"from": "human", "value": "word " * 60}, {"from": "gpt", "value": "x"}]},
    ]
    ds = make_dataset(tiny_processor, data_dir, records, max_seq_length=40)
    assert ds.build(0) is None and ds.build(2) is None and ds.build(1) is not None
    with caplog.at_level("WARNING"):
        items = [ds[i] for i in range(3)]
    assert all(item["input_ids"].numel() <= 40 for item in items)
    assert ds.skipped.value == 2
    assert "record 0 (id='r0')" in caplog.text and "skipped" in caplog.text


def test_missing_image_at_load_time_names_the_record(tiny_processor, data_dir: Path):
    ds = make_dataset(tiny_processor, data_dir, [simple_record(0, image="gone.png")])
    with pytest.raises(DataError, match=r"d.json: record 0 \(id='r0'\): image not found"):
        ds[0]


def test_collator_pads_right_and_builds_masks(tiny_processor, data_dir: Path):
    records = [simple_record(0, image="a.png"), simple_record(1, image=None, answer="a much longer answer here")]
    ds = make_dataset(tiny_processor, data_dir, records)
    items = [ds[0], ds[1]]
    batch = SupervisedCollator(tiny_processor.tokenizer)(items)
    lengths = [it["input_ids"].numel() for it in items]
    assert batch["input_ids"].shape == (2, max(lengths))
    assert batch["attention_mask"].sum(1).tolist() == lengths
    short = lengths.index(min(lengths))
    assert (batch["labels"][short, min(lengths) :] == IGNORE_INDEX).all()
    assert batch["mm_token_type_ids"].sum().item() == 4  # the 4 image tokens of record 0
    assert batch["pixel_values"].shape[0] == 16 and batch["image_grid_thw"].tolist() == [[1, 4, 4]]


def test_vision_keepalive_adds_an_invisible_image(tiny_model_dir, tiny_processor, data_dir):
    """Multi-rank runs: a text-only batch gets one zero image token after row 0's last token; the loss is unchanged."""
    from transformers import AutoModelForImageTextToText

    records = [simple_record(0, image=None, answer="short"), simple_record(1, image=None, answer="a longer answer")]
    ds = make_dataset(tiny_processor, data_dir, records)
    items = [ds[0], ds[1]]
    plain = SupervisedCollator(tiny_processor.tokenizer)(items)
    kept = SupervisedCollator(
        tiny_processor.tokenizer, vision_keepalive=True, image_processor=tiny_processor.image_processor
    )(items)
    n0 = items[0]["input_ids"].numel()
    image_pad = tiny_processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert "pixel_values" not in plain
    assert kept["image_grid_thw"].tolist() == [[1, 2, 2]] and kept["pixel_values"].shape == (4, 1176)
    assert kept["input_ids"][0, n0] == image_pad and kept["labels"][0, n0] == IGNORE_INDEX
    assert kept["mm_token_type_ids"].sum() == 1 and kept["attention_mask"][0, : n0 + 1].all()
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir, dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(model(**kept).loss, model(**plain).loss)
    # Batches with real images are left alone.
    with_image = SupervisedCollator(
        tiny_processor.tokenizer, vision_keepalive=True, image_processor=tiny_processor.image_processor
    )([make_dataset(tiny_processor, data_dir, [simple_record(0)])[0]])
    assert with_image["image_grid_thw"].tolist() == [[1, 4, 4]]
