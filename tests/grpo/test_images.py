"""Image checks before GRPO training and in check-data: the data-root path policy (refused rows are counted bad
rows with a reason), files cut short caught without decoding, ``--verify_images`` for the full decode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import damaged_png, grpo_row, noisy_png, save_grpo_dataset, write_json_dataset
from tinyrs_grpo.cli import main as cli_main
from tinyrs_grpo.data import DatasetError, check_split, load_grpo_dataset, prepare_split


def test_image_paths_outside_the_data_root_are_counted_bad_rows(tmp_path: Path) -> None:
    outside = tmp_path / "outside.png"
    outside.write_bytes(noisy_png(1))
    data = write_json_dataset(tmp_path / "data", {"ok.png": noisy_png(0)}, ["ok.png", "../outside.png", str(outside)])
    split = load_grpo_dataset(str(data))["train"]
    with pytest.raises(DatasetError) as info:
        prepare_split(split, "train", judge_enabled=False)
    message = str(info.value)
    assert "2 bad row(s)" in message
    assert "row 1: image path '../outside.png' points outside" in message and "row 2: image path" in message
    assert "--allow_external_image_paths" in message

    report = check_split(split, "train", judge_enabled=False, skip_bad_rows=True)  # skipped and counted
    assert report.kept == [0] and [i for i, _ in report.bad_rows] == [1, 2]

    allowed = load_grpo_dataset(str(data), allow_external_image_paths=True)["train"]
    prepared, report = prepare_split(allowed, "train", judge_enabled=False)
    assert report.kept == [0, 1, 2] and "_tinyrs_image_refused" not in prepared.column_names


def test_build_data_counts_refused_records(tmp_path: Path) -> None:
    from tinyrs_grpo.build_data import build_grpo_dataset

    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "a.png").write_bytes(noisy_png(0))
    (tmp_path / "outside.png").write_bytes(noisy_png(1))
    turns = [{"from": "human", "value": "<image>\n{VQA} Q?"}, {"from": "gpt", "value": "yes"}]
    records = [{"id": n, "image": n, "conversations": turns} for n in ("a.png", "../outside.png")]
    (tmp_path / "sft.json").write_text(json.dumps(records))
    summary = build_grpo_dataset(tmp_path / "sft.json", folder, tmp_path / "out", skip_bad_rows=True)
    assert summary["skipped_records"] == 1 and summary["splits"] == {"train": 1}


@pytest.mark.parametrize("embedded", [False, True], ids=["file", "embedded"])
def test_cut_short_images_are_caught_without_decoding(tmp_path: Path, embedded: bool) -> None:
    good, cut = noisy_png(0), noisy_png(1)[:-300]
    if embedded:
        rows = [dict(grpo_row("1", "yes"), image={"bytes": data, "path": None}) for data in (good, cut)]
        split = load_grpo_dataset(str(save_grpo_dataset(tmp_path / "d", rows)))["train"]
    else:
        split = load_grpo_dataset(
            str(write_json_dataset(tmp_path / "d", {"g.png": good, "c.png": cut}, ["g.png", "c.png"]))
        )
        split = split["train"]
    report = check_split(split, "train", judge_enabled=False, skip_bad_rows=True)
    assert report.kept == [0]
    assert report.bad_rows[0][0] == 1 and "truncated image" in report.bad_rows[0][1]
    assert "IEND" in report.bad_rows[0][1]


def test_verify_images_decodes_fully(tmp_path: Path) -> None:
    data = write_json_dataset(tmp_path / "d", {"g.png": noisy_png(0), "x.png": damaged_png(1)}, ["g.png", "x.png"])
    split = load_grpo_dataset(str(data))["train"]
    assert check_split(split, "train", judge_enabled=False).kept == [0, 1]  # ends intact: the cheap check passes
    report = check_split(split, "train", judge_enabled=False, skip_bad_rows=True, verify_images=True)
    assert report.kept == [0] and "undecodable image" in report.bad_rows[0][1] and "x.png" in report.bad_rows[0][1]


def test_check_data_reports_cut_short_and_damaged_images(tmp_path: Path, capsys) -> None:
    images = {
        "g.png": noisy_png(0),
        "c.png": noisy_png(1)[:-300],
        "x.png": damaged_png(2),
    }
    data = write_json_dataset(tmp_path / "d", images, ["g.png", "c.png", "x.png", "../up.png"])
    assert cli_main(["check-data", "--dataset_name", str(data)]) == 1
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if "grpo.json: split 'train' row" in line]
    assert len(lines) == 2 and "row 1: truncated image" in lines[0] and "row 3: image path" in lines[1]
    summary = json.loads(captured.out)["train"]
    assert summary["usable"] == 2 and summary["image_paths_outside_data_root"] == 1

    assert cli_main(["check-data", "--dataset_name", str(data), "--verify_images"]) == 1
    err = capsys.readouterr().err
    assert "row 2: undecodable image" in err and "x.png" in err
