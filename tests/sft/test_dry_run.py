"""``--dry_run True`` checks what the launch needs (data, sampled images, model, DeepSpeed config, output folder),
prints the effective settings, and runs on a machine without a GPU even with --bf16/--tf32 (this test machine has
none)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import simple_record, write_json
from tinyrs_sft.dry_run import model_problem, sample_indices
from tinyrs_sft.train import cli


REPO = Path(__file__).resolve().parents[2]
OFFLOAD = REPO / "sft" / "configs" / "deepspeed" / "zero3_offload.json"


def dry_argv(model: Path | str, data: Path, images: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--dry_run", "True", "--model_name_or_path", str(model), "--dataset_name", str(data),
        "--image_folder", str(images), "--output_dir", str(out), "--bf16", "True", "--tf32", "True",
        "--deepspeed", str(OFFLOAD),
        "--per_device_train_batch_size", "16", "--gradient_accumulation_steps", "2", "--dry_run_world_size", "4",
        "--learning_rate", "1e-5", "--vision_lr", "2e-6", "--merger_lr", "3e-5", "--tune_merger", "True",
        "--weight_decay", "0.1", "--num_train_epochs", "2", "--report_to", "none", *extra,
    ]  # fmt: skip


def run_dry(argv: list[str], capsys, caplog) -> tuple[int, list[str], str]:
    caplog.clear()
    with caplog.at_level("INFO", logger="tinyrs_sft"):
        try:
            code = cli(argv)
        except SystemExit as exit_info:
            code = exit_info.code
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("tinyrs-sft train: error:")]
    return code, errors, caplog.text


def test_ready_launch_passes_on_a_cpu_machine_and_prints_the_settings(
    tiny_model_dir, data_dir, tmp_path, capsys, caplog
):
    data = write_json(data_dir / "train.json", [simple_record(i, image="abc"[i % 3] + ".png") for i in range(300)])
    out = tmp_path / "out"
    code, errors, log = run_dry(dry_argv(tiny_model_dir, data, data_dir / "images", out), capsys, caplog)
    assert code == 0 and errors == [], errors
    assert "arguments are valid, the paths exist and the sampled records are good" in log
    assert "300 records" in log and "64 sampled" in log and "local folder, model_type qwen2_vl" in log
    assert "param group llm: trained, lr 1e-05" in log
    assert "param group vision: trained, lr 2e-06" in log and "param group merger: trained, lr 3e-05" in log
    assert "global batch 128 = 16 per device x 2 accumulation x 4 processes" in log
    assert "epochs 2: 3 steps per epoch of 300 records" in log and "about 6 steps in all" in log
    assert "DeepSpeed ZeRO stage 3, offload: optimizer to cpu, parameters to cpu" in log
    assert "precision bf16, tf32 True" in log and "loss normalisation global_tokens" in log
    assert not out.exists()  # a dry run writes nothing


def test_every_problem_is_reported_one_line_each(data_dir, tmp_path, capsys, caplog):
    records = [simple_record(i, image="a.png") for i in range(5)]
    records[4]["image"] = "cut.png"  # the last record is always in the sample
    (data_dir / "images" / "cut.png").write_bytes((data_dir / "images" / "b.png").read_bytes()[:60])
    data = write_json(data_dir / "train.json", records)
    argv = dry_argv(tmp_path / "no_model", data, data_dir / "images", tmp_path / "out")
    code, errors, _ = run_dry(argv, capsys, caplog)
    assert code == 1
    assert any("record 4 (id='r4')" in e and "cut.png" in e and "cut short" in e for e in errors), errors
    assert any("no_model: model folder not found" in e for e in errors), errors
    assert len(errors) == 2


def test_missing_data_file_is_an_error_not_valid_arguments(tiny_model_dir, data_dir, tmp_path, capsys, caplog):
    argv = dry_argv(tiny_model_dir, tmp_path / "missing.json", data_dir / "images", tmp_path / "out")
    code, errors, log = run_dry(argv, capsys, caplog)
    assert code == 1 and len(errors) == 1 and "missing.json: data file not found" in errors[0]
    assert "arguments are valid" not in log
    assert "unknown (data file unreadable)" in log  # the settings are still printed


def test_missing_deepspeed_config_fails(tiny_model_dir, data_dir, tmp_path, capsys):
    data = write_json(data_dir / "train.json", [simple_record(0)])
    argv = dry_argv(tiny_model_dir, data, data_dir / "images", tmp_path / "out", "--deepspeed", "nope.json")
    with pytest.raises(SystemExit) as exit_info:
        cli(argv)
    assert exit_info.value.code == 2 and "nope.json: file not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("model_id", "problem"),
    [
        ("Qwen/Qwen2-VL-2B-Instruct", None),  # valid hub id (not cached here: downloaded at start when online)
        ("aybora/Qwen2-VL-TinyRS", None),
        ("./output/run", "model folder not found"),
        ("/abs/path/model", "model folder not found"),
        ("bad id with spaces", "nor a valid hub id"),
        ("org/../model", "model folder not found"),
    ],
)
def test_model_id_syntax(model_id, problem, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    found, description = model_problem(model_id)
    assert (found is None) if problem is None else (problem in found), found
    if problem is None:
        assert "hub id" in description


def test_uncached_hub_id_offline_names_the_download(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    found, _ = model_problem("aybora/Qwen2-VL-TinyRS", cache_dir=str(tmp_path))
    assert "not in the local hub cache while HF_HUB_OFFLINE=1" in found
    assert "(hf download aybora/Qwen2-VL-TinyRS)" in found and "--local-dir DIR" in found


def test_model_folder_must_hold_a_supported_config(tmp_path):
    assert "no config.json" in model_problem(str(tmp_path))[0]
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    assert "'llama' is not supported" in model_problem(str(tmp_path))[0]


@pytest.mark.parametrize(("total", "n"), [(0, 64), (5, 64), (64, 64), (1000, 64), (10**6, 64)])
def test_sample_is_spread_over_the_file(total, n):
    picked = sample_indices(total, n)
    assert picked == sorted(set(picked)) and len(picked) == min(total, n)
    if total:
        assert picked[0] == 0 and picked[-1] == total - 1
