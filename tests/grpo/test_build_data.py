"""``tinyrs-grpo build-data`` (LLaVA SFT JSON -> GRPO dataset) and ``tinyrs-grpo check-data``."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from helpers import grpo_row, png_bytes, save_grpo_dataset
from tinyrs_grpo.build_data import build_grpo_dataset, infer_answer_type
from tinyrs_grpo.cli import main as cli_main
from tinyrs_grpo.data import DatasetError, build_prompt, load_grpo_dataset, prepare_split


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("[[112, 530, 205, 640]]", "2"),  # a box list
        ("[10, 20, 30, 40], [50, 60, 70, 80]", "2"),  # several boxes
        ("[1, 2, 3]", "1"),  # three numbers are not a box; short -> exact
        ("dense residential", "1"),
        ("4", "1"),
        ("yes", "1"),
        ("An aerial image of farmland crossed by a river and two roads.", "0"),  # long free text
        ("The tank at [10, 20, 30, 40] is large", "0"),  # not box-only; 8 words > the default 5 -> open-ended
        ("about 10 tanks", "1"),  # numbers inside text: not a box; 3 words -> exact
    ],
)
def test_infer_answer_type(answer: str, expected: str) -> None:
    assert infer_answer_type(answer) == expected


def _write_images(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(png_bytes())


def test_build_from_llava_records(tmp_path: Path) -> None:
    _write_images(tmp_path / "img", ["a.png", "b.png", "c.png", "d.png"])
    records = [
        {"id": "vg1", "image": "a.png", "conversations": [
            {"from": "system", "value": "ignored"},
            {"from": "human", "value": "<image>\n{VG} the storage tank"},
            {"from": "gpt", "value": "<reasoning>left side</reasoning><answer>[[112, 530, 205, 640]]</answer>"}]},
        {"id": "cls1", "image": ["b.png"], "conversations": [
            {"from": "human", "value": "<image>\n{CLS} Classify the image."}, {"from": "gpt", "value": "Forest"},
            {"from": "human", "value": "And the second turn?"}, {"from": "gpt", "value": "ignored"}]},
        {"id": "cap1", "image": "c.png", "conversations": [
            {"from": "human", "value": "Describe the image.\n<image>"},
            {"from": "gpt", "value": "An aerial image of farmland crossed by a river and two roads."}]},
        {"id": "forced", "image": "d.png", "answer_type": 0, "conversations": [
            {"from": "human", "value": "<image>What is it?"}, {"from": "gpt", "value": "airport"}]},
    ]  # fmt: skip
    data_path = tmp_path / "sft.json"
    data_path.write_text(json.dumps(records))
    summary = build_grpo_dataset(data_path, tmp_path / "img", tmp_path / "out")
    assert summary["splits"] == {"train": 4} and summary["answer_types"] == {"0": 2, "1": 1, "2": 1}
    rows = load_grpo_dataset(str(tmp_path / "out"))["train"]
    assert rows["problem"] == [
        "{VG} the storage tank",
        "{CLS} Classify the image.",
        "Describe the image.",
        "What is it?",
    ]
    assert [s[:2] for s in rows["solution"]] == [
        ["2", "[[112, 530, 205, 640]]"],  # the <answer> content of a CoT answer
        ["1", "Forest"],
        ["0", "An aerial image of farmland crossed by a river and two roads."],
        ["0", "airport"],  # explicit answer_type wins over inference
    ]
    assert rows[0]["prompt"] == build_prompt("{VG} the storage tank")
    assert base64.b64decode(rows[0]["solution"][3]) == png_bytes()  # base64 copy for the judge
    assert rows[0]["image"].size == (56, 56)  # embedded image
    prepared, report = prepare_split(rows, judge_enabled=True)
    assert report.rows_out == 4 and not report.bad_rows


def test_unusable_records_name_index_and_id(tmp_path: Path) -> None:
    _write_images(tmp_path / "img", ["a.png"])
    good = {
        "id": "ok",
        "image": "a.png",
        "conversations": [{"from": "human", "value": "<image>q"}, {"from": "gpt", "value": "yes"}],
    }
    records = [
        good,
        {"id": "text-only", "conversations": good["conversations"]},
        {"id": "missing-file", "image": "nope.png", "conversations": good["conversations"]},
        {"id": "no-answer", "image": "a.png", "conversations": [{"from": "human", "value": "<image>q"}]},
    ]  # fmt: skip
    data_path = tmp_path / "sft.jsonl"
    data_path.write_text("\n".join(json.dumps(r) for r in records))
    with pytest.raises(DatasetError) as info:
        build_grpo_dataset(data_path, tmp_path / "img", tmp_path / "out")
    message = str(info.value)
    assert "3 unusable record(s)" in message
    assert "record 1 (id text-only): no image" in message
    assert "record 2 (id missing-file): image file not found" in message
    assert "record 3 (id no-answer): needs a human turn followed by a gpt turn" in message
    summary = build_grpo_dataset(data_path, tmp_path / "img", tmp_path / "out", skip_bad_rows=True)
    assert summary["splits"] == {"train": 1} and summary["skipped_records"] == 3


def test_demo_cot_sft_to_grpo_with_test_split(demo_data_dir: Path, tmp_path: Path, capsys) -> None:
    args = ["--data_path", str(demo_data_dir / "cot_sft.json"), "--image_folder", str(demo_data_dir / "images")]
    code = cli_main(
        ["build-data", *args, "--output_dir", str(tmp_path / "grpo"), "--test_size", "0.25", "--seed", "1"]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["splits"]) == {"train", "test"} and sum(summary["splits"].values()) == 21
    assert cli_main(["check-data", "--dataset_name", str(tmp_path / "grpo")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["train"]["usable"] == summary["splits"]["train"] and report["train"]["bad_rows"] == []


def test_check_data_reports_bad_rows(tmp_path: Path, capsys) -> None:
    rows = [grpo_row("1", "yes"), dict(grpo_row("1", "yes"), solution=["9", "x", "q", ""])]
    path = save_grpo_dataset(tmp_path / "d", rows)
    assert cli_main(["check-data", "--dataset_name", str(path)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["train"]["bad_rows"] == [
        {"row": 1, "reason": "unknown answer_type '9'; expected one of ['0', '1', '2'] (str or int)"}
    ]


def test_cli_usage_and_unknown_command(capsys) -> None:
    with pytest.raises(SystemExit) as info:  # argparse prints the help and exits 0
        cli_main(["--help"])
    assert info.value.code == 0
    assert "build-data" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:  # a usage error: exit status 2, one line
        cli_main(["fly"])
    assert info.value.code == 2
