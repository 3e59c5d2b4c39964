"""A corrupt image met during GRPO training is skipped and counted, or stops the run with one line
(tinyrs_grpo.guard). The skip case inside a real training run is in test_batching.py."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from helpers import damaged_png, noisy_png, write_json_dataset
from tinyrs_grpo.data import load_grpo_dataset, prepare_split
from tinyrs_grpo.guard import CORRUPT_LOG, CorruptImageError, corrupt_total, guard_images


@pytest.fixture
def three_rows(tmp_path: Path):
    """a.png, b.png (complete file, broken pixel data: passes the pre-training check), c.png."""
    images = {"a.png": noisy_png(0), "b.png": damaged_png(1), "c.png": noisy_png(2)}
    data = write_json_dataset(tmp_path / "data", images, ["a.png", "b.png", "c.png"])
    return prepare_split(load_grpo_dataset(str(data))["train"], "train", judge_enabled=False)


def test_skip_replaces_the_row_consistently_and_counts_it(three_rows, tmp_path: Path, caplog) -> None:
    dataset, report = three_rows
    guarded = guard_images(dataset, "train", "skip", source_rows=[10, 11, 12], output_dir=str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="tinyrs_grpo.guard"):
        batch = guarded.__getitems__([1, 1, 0, 1])  # one prompt's copies (as RepeatSampler hands them) + another
    # row 1 is replaced by the next good row, row 2, for every copy of it
    assert [row["problem"] for row in batch] == [f"{{VQA}} question {i}?" for i in (2, 2, 0, 2)]
    assert all(row["image"].size == (56, 56) for row in batch)  # decoded PIL images
    assert guarded[1]["problem"] == "{VQA} question 2?" and guarded[0]["problem"] == "{VQA} question 0?"
    warnings = [r.getMessage() for r in caplog.records if "corrupt image" in r.getMessage()]
    assert len(warnings) == 1 and "row 11" in warnings[0] and "b.png" in warnings[0]  # once, source row and file
    assert [r["row"] for r in corrupt_total(str(tmp_path))] == [11]
    assert len((tmp_path / CORRUPT_LOG).read_text().splitlines()) == 1


def test_stop_raises_one_line(three_rows) -> None:
    dataset, _ = three_rows
    guarded = guard_images(dataset, "train", "stop")
    assert guarded[0]["problem"] == "{VQA} question 0?"
    with pytest.raises(CorruptImageError) as info:
        guarded.__getitems__([0, 1])
    message = str(info.value)
    assert "\n" not in message and "row 1: corrupt image" in message and "b.png" in message


def test_training_stops_with_one_line_on_a_corrupt_image(tiny_model_dir: Path, tmp_path: Path, capfd):
    """--on_corrupt_image stop: the run ends at the corrupt image with one line and exit 1, no traceback."""
    from tinyrs_grpo.cli import main

    images = {"a.png": noisy_png(0), "b.png": damaged_png(1)}
    data = write_json_dataset(tmp_path / "data", images, ["a.png", "b.png"])
    argv = ["train", "--model_name_or_path", str(tiny_model_dir), "--dataset_name", str(data), "--output_dir",
            str(tmp_path / "out"), "--use_cpu", "true", "--report_to", "none", "--judge", "none",
            "--reward_funcs", "format", "--per_device_train_batch_size", "4", "--num_generations", "2",
            "--max_completion_length", "4", "--max_pixels", str(56 * 56), "--max_steps", "1",
            "--on_corrupt_image", "stop", "--disable_tqdm", "true"]  # fmt: skip
    assert main(argv) == 1
    err = capfd.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("tinyrs-grpo train: error:")]
    assert len(lines) == 1 and "split 'train' row 1: corrupt image" in lines[0] and "b.png" in lines[0]
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_corrupt_total_counts_distinct_rows(tmp_path: Path) -> None:
    records = [{"split": "train", "row": r, "message": "m"} for r in (3, 5, 3)]
    (tmp_path / CORRUPT_LOG).write_text("\n".join(json.dumps(r) for r in records) + "\n{broken")
    assert sorted(r["row"] for r in corrupt_total(str(tmp_path))) == [3, 5]
