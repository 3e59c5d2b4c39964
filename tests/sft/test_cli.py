"""``tinyrs-sft``: --version everywhere, booleans read alike in every subcommand, the seed flag names as aliases in
check-data, exit status 2 for usage errors and 1 for bad data or a failed run."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from helpers import simple_record, write_json
from tinyrs_sft import __version__
from tinyrs_sft.check_data import build_parser as check_data_parser
from tinyrs_sft.check_data import main as check_data_main
from tinyrs_sft.cli import main


@pytest.mark.parametrize(
    "argv", [["--version"], ["train", "--version"], ["check-data", "--version"], ["merge-lora", "--version"]]
)
def test_version(argv, capsys):
    # `tinyrs-sft --version` used to be "unknown command".
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"tinyrs-sft {__version__}"


@pytest.mark.parametrize(
    ("word", "value"), [("True", True), ("true", True), ("1", True), ("yes", True), ("False", False), ("0", False),
                        ("no", False), ("NO", False)]
)  # fmt: skip
def test_booleans_are_read_alike_in_every_subcommand(word, value, tmp_path):
    from tinyrs_sft.config import parse_args

    # check-data took only the bare flag (store_true): `--verify_images True` was an error there, not in train.
    args = check_data_parser().parse_args(
        ["--dataset_name", "d.json", "--verify_images", word, "--allow_external_image_paths", word]
    )
    assert args.verify_images is value and args.allow_external_image_paths is value
    _, data_args, _ = parse_args(
        ["--dataset_name", "d.json", "--output_dir", str(tmp_path), "--verify_images", word, "--check_data", word]
    )
    assert data_args.verify_images is value and data_args.check_data is value
    assert check_data_parser().parse_args(["--dataset_name", "d.json", "--verify_images"]).verify_images is True


def test_check_data_accepts_the_seed_flag_name(demo_data_dir: Path, caplog, capsys):
    images = ["--image_folder", str(demo_data_dir / "images")]
    data = str(demo_data_dir / "sft.json")
    assert check_data_main(["--dataset_name", data, *images]) == 0
    with caplog.at_level(logging.WARNING, logger="tinyrs_sft"):
        assert check_data_main(["--data_path", data, *images, "--verify_images", "False"]) == 0
    assert [r.getMessage() for r in caplog.records] == ["--data_path is an alias of --dataset_name"]


def test_exit_status_usage_two_data_one(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["trian"])
    assert info.value.code == 2 and "unknown command 'trian' (did you mean train?)" in capsys.readouterr().err
    assert main([]) == 2
    with pytest.raises(SystemExit) as info:
        main(["train", "--dataset_name", "d.json", "--learnin_rate", "1"])
    assert info.value.code == 2 and "did you mean --learning_rate?" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["check-data", "--dataset_name", "d.json", "--verify_image"])
    assert info.value.code == 2 and "did you mean --verify_images?" in capsys.readouterr().err
    # bad data: 1
    assert main(["check-data", "--dataset_name", str(tmp_path / "missing.json")]) == 1
    bad = write_json(tmp_path / "bad.json", [simple_record(0, image="nowhere.png")])
    assert main(["check-data", "--dataset_name", str(bad)]) == 1
    # merge-lora on a folder that is no LoRA output: one line, 1, no traceback
    capsys.readouterr()
    assert main(["merge-lora", "--adapter_path", str(tmp_path), "--output_dir", str(tmp_path / "merged")]) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"tinyrs-sft merge-lora: error: {tmp_path}: no adapter_config.json, so this is not a LoRA " \
                          "checkpoint"  # fmt: skip
