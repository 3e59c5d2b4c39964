"""``tinyrs-grpo train --dry_run`` checks paths and prints the effective settings without a GPU; every expected
failure of ``train`` (dry or not) is one line on stderr with exit 2 (arguments) or 1 (paths, data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import noisy_png, write_json_dataset
from tinyrs_grpo.cli import main


def run(argv: list[str], capfd) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    captured = capfd.readouterr()
    return code, captured.out + captured.err


def error_lines(output: str) -> list[str]:
    assert "Traceback" not in output, output[-3000:]
    return [line for line in output.splitlines() if line.startswith("tinyrs-grpo train: error:")]


def test_dry_run_checks_paths_and_prints_the_settings(
    tiny_model_dir: Path, demo_data_dir: Path, tmp_path, capfd, caplog
):
    caplog.set_level("INFO", logger="tinyrs_grpo")
    code, output = run(["train", "--dry_run", "true", "--model_name_or_path", str(tiny_model_dir), "--dataset_name",
                        str(demo_data_dir / "grpo"), "--output_dir", str(tmp_path / "out"), "--bf16", "true",
                        "--config", "grpo/configs/tinyrs_r1.yaml", "--deepspeed",
                        "grpo/configs/deepspeed/zero3.json"], capfd)  # fmt: skip
    assert code == 0, output[-3000:]
    output += caplog.text  # the settings are logged (stderr outside pytest)
    assert "dry run: arguments are valid" in output
    assert "local folder" in output and "images of the first" in output and "ZeRO stage 3" in output
    assert "min_pixels=3136 (checkpoint)" in output and "max_pixels=12845056 (checkpoint)" in output
    assert "use_bias_correction_kl=False" in output and "loss_type=grpo" in output and "beta=0.001" in output
    assert "judge=none" in output or "judge=gpt" in output
    assert not (tmp_path / "out").exists()  # nothing written


@pytest.mark.parametrize(
    ("change", "code", "expected"),
    [
        ({"--model_name_or_path": "missing/model/folder"}, 1, "no such folder"),
        ({"--model_name_or_path": "bad id!"}, 2, "neither a local folder nor a valid hub id"),
        ({"--dataset_name": "missing.json"}, 1, "no such file or folder"),
        ({"--reward_funcs": "acuracy"}, 2, "unknown reward function 'acuracy'"),
        ({"--reward_weights": "1.0"}, 2, "--reward_weights has 1 values for 2 reward functions"),
        ({"--deepspeed": "missing_zero3.json"}, 2, "missing_zero3.json"),
    ],
)
def test_dry_run_errors_are_one_line(tiny_model_dir, demo_data_dir, tmp_path, capfd, change, code, expected) -> None:
    args = {"--model_name_or_path": str(tiny_model_dir), "--dataset_name": str(demo_data_dir / "grpo"),
            "--output_dir": str(tmp_path / "out")}  # fmt: skip
    args.update(change)
    argv = ["train", "--dry_run", "true", *(x for kv in args.items() for x in kv)]
    got, output = run(argv, capfd)
    lines = error_lines(output)
    assert got == code and len(lines) == 1 and expected in lines[0], output[-2000:]


def test_dry_run_checks_the_first_images(tiny_model_dir, tmp_path, capfd) -> None:
    data = write_json_dataset(tmp_path / "d", {"a.png": noisy_png(0)[:-200]}, ["a.png"])
    code, output = run(["train", "--dry_run", "true", "--model_name_or_path", str(tiny_model_dir), "--dataset_name",
                        str(data), "--output_dir", str(tmp_path / "out")], capfd)  # fmt: skip
    lines = error_lines(output)
    assert code == 1 and len(lines) == 1 and "row 0: truncated image" in lines[0] and "grpo.json" in lines[0]


def test_unknown_reward_in_train_is_one_line_before_loading(tiny_model_dir, demo_data_dir, tmp_path, capfd) -> None:
    code, output = run(["train", "--model_name_or_path", str(tiny_model_dir), "--dataset_name",
                        str(demo_data_dir / "grpo"), "--output_dir", str(tmp_path / "out"), "--use_cpu", "true",
                        "--reward_funcs", "accuracy", "no_such_reward"], capfd)  # fmt: skip
    lines = error_lines(output)
    assert code == 2 and len(lines) == 1 and "unknown reward function 'no_such_reward'" in lines[0]
    assert not (tmp_path / "out").exists()  # refused before any work
