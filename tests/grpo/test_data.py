"""Dataset loading and pre-flight checks (tinyrs_grpo.data)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import datasets
import pytest

from helpers import grpo_row, png_bytes, save_grpo_dataset
from tinyrs_grpo.data import (
    DatasetError,
    build_prompt,
    load_grpo_dataset,
    prepare_split,
    prompt_token_count,
    select_split,
)
from tinyrs_grpo.text import REASONING_SYSTEM_PROMPT


def test_demo_dataset_loads_and_keeps_its_prompt(demo_data_dir: Path) -> None:
    raw = load_grpo_dataset(str(demo_data_dir / "grpo"))
    assert set(raw) == {"train", "test"}
    prepared, report = prepare_split(raw["train"], "train", judge_enabled=True)
    assert report.rows_out == len(raw["train"]) and not report.bad_rows
    row = prepared[0]
    assert row["prompt"][0]["content"][0]["text"] == REASONING_SYSTEM_PROMPT
    assert [p["type"] for p in row["prompt"][1]["content"]] == ["image", "text"]
    assert len(row["solution"]) == 4 and row["solution"][0] in ("0", "1", "2")
    assert row["image"].size[0] > 0


def test_prompt_built_from_problem_when_absent(tmp_path: Path) -> None:
    path = save_grpo_dataset(tmp_path / "d", [grpo_row("1", "yes", "{VQA} Is there a ship?")])
    prepared, _ = prepare_split(load_grpo_dataset(str(path))["train"], judge_enabled=False)
    assert prepared[0]["prompt"] == build_prompt("{VQA} Is there a ship?")
    assert prepared[0]["prompt"][0]["content"][0]["text"] == REASONING_SYSTEM_PROMPT


def test_single_saved_dataset_becomes_train_split(tmp_path: Path) -> None:
    """The original indexed a saved Dataset with ['train'] and crashed (G14)."""
    features = datasets.Features(
        {
            "image": datasets.Image(),
            "problem": datasets.Value("string"),
            "solution": datasets.List(datasets.Value("string")),
        }
    )
    datasets.Dataset.from_list([grpo_row("1", "yes")], features=features).save_to_disk(str(tmp_path / "single"))
    raw = load_grpo_dataset(str(tmp_path / "single"))
    assert list(raw) == ["train"]
    with pytest.raises(DatasetError, match="available splits: \\['train'\\]"):
        select_split(raw, "test")


def _json_records(image_dir: Path) -> list[dict]:
    image_dir.mkdir(parents=True, exist_ok=True)
    (image_dir / "a.png").write_bytes(png_bytes())
    return [
        {
            "image": "imgs/a.png",
            "problem": "{VQA} Is there a ship?",
            "solution": [1, "yes", "{VQA} Is there a ship?", ""],
        },
        {
            "image": "imgs/a.png",
            "problem": "{VG} the tank",
            "solution": {"answer_type": 2, "answer": "[1, 2, 30, 40]"},
        },
    ]


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_json_and_jsonl_with_integer_codes(tmp_path: Path, suffix: str) -> None:
    records = _json_records(tmp_path / "imgs")
    path = tmp_path / f"data{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(records))
    else:
        path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    prepared, report = prepare_split(load_grpo_dataset(str(path))["train"], judge_enabled=False)
    assert [r["solution"][:2] for r in prepared] == [["1", "yes"], ["2", "[1, 2, 30, 40]"]]
    assert prepared[1]["solution"][2] == "{VG} the tank"  # question defaults to the problem
    assert report.answer_types == {"1": 1, "2": 1}


def test_json_image_from_base64_copy(tmp_path: Path) -> None:
    b64 = base64.b64encode(png_bytes()).decode()
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"problem": "q", "solution": ["1", "yes", "q", b64]}]))
    prepared, _ = prepare_split(load_grpo_dataset(str(path))["train"], judge_enabled=False)
    assert prepared[0]["image"].size == (56, 56)


def test_missing_local_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file"):
        load_grpo_dataset(str(tmp_path / "nope.json"))


def _bad_rows() -> list[dict]:
    good = grpo_row("1", "yes")
    broken_image = dict(grpo_row("1", "yes"), image={"bytes": b"not an image", "path": None})
    return [
        good,  # 0
        dict(good, problem="   "),  # 1 empty problem
        dict(good, solution=["1"]),  # 2 malformed solution
        dict(good, solution=["7", "yes", "q", ""]),  # 3 unknown answer type
        broken_image,  # 4 undecodable image
        dict(good, image=None),  # 5 missing image
        dict(good, solution=["2", "[[10, 10, 5, 5]]", "q", ""]),  # 6 reversed ground-truth box
        dict(good, solution=["1", " . ", "q", ""]),  # 7 empty exact answer
        good,  # 8
    ]


def test_bad_rows_stop_before_training_naming_the_row(tmp_path: Path) -> None:
    path = save_grpo_dataset(tmp_path / "bad", _bad_rows())
    with pytest.raises(DatasetError) as info:
        prepare_split(load_grpo_dataset(str(path))["train"], "train", judge_enabled=False)
    message = str(info.value)
    assert "7 bad row(s)" in message and "--skip_bad_rows" in message
    for expected in (
        "row 1: empty problem",
        "row 2: malformed solution",
        "row 3: unknown answer_type '7'",
        "row 4: undecodable image",
        "row 5: missing image",
        "row 6: answer_type 2 without a valid",
        "row 7: answer_type 1 with an empty answer",
    ):
        assert expected in message


def test_skip_bad_rows_counts_them(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = save_grpo_dataset(tmp_path / "bad", _bad_rows())
    prepared, report = prepare_split(
        load_grpo_dataset(str(path))["train"], "train", judge_enabled=False, skip_bad_rows=True
    )
    assert len(prepared) == 2 and len(report.bad_rows) == 7
    assert [i for i, _ in report.bad_rows] == [1, 2, 3, 4, 5, 6, 7]
    assert "skipping split 'train': 7 bad row(s)" in caplog.text


def test_judge_none_drops_open_ended_rows_with_a_count(mixed_grpo_dir: Path, caplog) -> None:
    raw = load_grpo_dataset(str(mixed_grpo_dir))["train"]
    prepared, report = prepare_split(raw, judge_enabled=False)
    assert report.dropped_open_ended == 3 and len(prepared) == 5
    assert {r["solution"][0] for r in prepared} == {"1", "2"}
    assert "dropped 3 open-ended" in caplog.text
    kept, report = prepare_split(raw, judge_enabled=True)
    assert len(kept) == 8 and report.dropped_open_ended == 0


def test_max_prompt_length_drops_and_never_truncates(tiny_model_dir: Path, tmp_path: Path) -> None:
    from tinyrs_grpo.model import load_processor

    processor = load_processor(str(tiny_model_dir), min_pixels=3136, max_pixels=112 * 112)
    rows = [grpo_row("1", "yes", "short"), grpo_row("1", "yes", "long " * 200)]
    raw = load_grpo_dataset(str(save_grpo_dataset(tmp_path / "d", rows)))["train"]
    short_len = prompt_token_count(processor, build_prompt("short"), 56, 56)
    # the count matches what the processor really produces, image tokens included
    from PIL import Image

    messages = [dict(m, content=[dict(p) for p in m["content"]]) for m in build_prompt("short")]
    messages[1]["content"][0] = {"type": "image", "image": Image.new("RGB", (56, 56))}
    real = processor.apply_chat_template([messages], add_generation_prompt=True, tokenize=True, return_dict=True)
    assert short_len == len(real["input_ids"][0])
    prepared, report = prepare_split(raw, judge_enabled=False, processor=processor, max_prompt_length=short_len)
    assert len(prepared) == 1 and report.dropped_too_long == 1
    assert prepared[0]["problem"] == "short"


def test_missing_columns(tmp_path: Path) -> None:
    ds = datasets.Dataset.from_dict({"problem": ["q"]})
    with pytest.raises(DatasetError, match="missing column"):
        prepare_split(ds, judge_enabled=False)


def test_conversation_columns_are_refused(tmp_path: Path) -> None:
    raw = load_grpo_dataset(str(save_grpo_dataset(tmp_path / "d", [grpo_row("1", "yes")])))["train"]
    with pytest.raises(DatasetError, match="'messages'"):
        prepare_split(raw.add_column("messages", ["hi"]), judge_enabled=False)


def test_null_prompt_rows_are_built_from_problem(tmp_path: Path) -> None:
    rows = [grpo_row("1", "yes", "first"), grpo_row("1", "no", "second")]
    raw = load_grpo_dataset(str(save_grpo_dataset(tmp_path / "d", rows)))["train"]
    prompts = [build_prompt("given"), None]
    raw = raw.add_column("prompt", prompts)
    prepared, _ = prepare_split(raw, judge_enabled=False)
    assert prepared["prompt"] == [build_prompt("given"), build_prompt("second")]
