"""An image that turns bad after the start-up scan (overwritten or cut short between the scan and the step that
reads it) never ends a run with a traceback: by default the run stops at once with one line naming file, record and
problem; with --skip_bad_samples the record is skipped, logged and counted, and the run finishes."""

from __future__ import annotations

import pytest

import tinyrs_sft.train as train_module
from helpers import run_sft, simple_record, write_json


@pytest.fixture
def corrupt_after_scan(monkeypatch, data_dir):
    """Let the real start-up scan pass, then cut ``images/b.png`` short (as an interrupted copy would)."""
    real = train_module.checked_indices

    def scan_then_corrupt(*args, **kwargs):
        result = real(*args, **kwargs)
        image = data_dir / "images" / "b.png"
        image.write_bytes(image.read_bytes()[:60])
        return result

    monkeypatch.setattr(train_module, "checked_indices", scan_then_corrupt)
    return data_dir / "images" / "b.png"


def records():
    return [simple_record(0, "a.png"), simple_record(1, "b.png"), simple_record(2, "c.png")]


@pytest.mark.parametrize("workers", ["0", "1"])
def test_default_stops_with_one_line(workers, tiny_model_dir, data_dir, corrupt_after_scan, tmp_path, capsys):
    data = write_json(data_dir / "train.json", records())
    argv = [
        "--model_id", str(tiny_model_dir), "--data_path", str(data), "--image_folder", str(data_dir / "images"),
        "--output_dir", str(tmp_path / "out"), "--use_cpu", "True", "--report_to", "none", "--save_strategy", "no",
        "--disable_tqdm", "True", "--dataloader_num_workers", workers, "--per_device_train_batch_size", "1",
        "--max_steps", "3", "--tune_merger", "True",
    ]  # fmt: skip
    assert train_module.cli(argv) == 1  # bad data: one line, exit status 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("tinyrs-sft train: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err[-3000:]
    line = lines[0]
    assert "train.json: record 1 (id='r1')" in line and str(corrupt_after_scan) in line
    assert "cut short" in line and "--skip_bad_samples True" in line
    assert "DataError:" not in line  # the worker's exception-type prefix is dropped


def test_skip_bad_samples_skips_logs_and_counts(tiny_model_dir, data_dir, corrupt_after_scan, tmp_path, caplog):
    data = write_json(data_dir / "train.json", records())
    out = tmp_path / "out"
    with caplog.at_level("INFO", logger="tinyrs_sft"):
        run_sft(
            tiny_model_dir, data, data_dir / "images", out,
            "--max_steps", "3", "--per_device_train_batch_size", "1", "--skip_bad_samples", "True",
        )  # fmt: skip
    assert (out / "model.safetensors").is_file()  # the run finished and saved
    skipped = [r.getMessage() for r in caplog.records if "skipped during training so far" in r.getMessage()]
    assert skipped and "record 1 (id='r1')" in skipped[0] and "b.png" in skipped[0] and "cut short" in skipped[0]
    assert "1 records were skipped during training" in caplog.text  # the total, in the final log
