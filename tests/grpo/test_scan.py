"""The pre-training row check runs once per run and is cached next to the output, keyed by the dataset files'
sizes and mtimes and by the settings (tinyrs_grpo.scan)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from helpers import free_port, noisy_png, write_json_dataset
from tinyrs_grpo.data import DatasetError, SplitReport, load_grpo_dataset, scan_rows
from tinyrs_grpo.scan import CACHE_FOLDER, cached_scan, check_once


def test_scan_is_cached_until_the_files_or_settings_change(tmp_path: Path) -> None:
    data = write_json_dataset(tmp_path / "d", {"a.png": noisy_png(0)}, ["a.png", "a.png"])
    split = load_grpo_dataset(str(data))["train"]
    calls = []

    def scan() -> SplitReport:
        calls.append(1)
        return scan_rows(split, "train", judge_enabled=False)

    out = str(tmp_path / "out")
    settings = {"max_pixels": 100}
    first = cached_scan(scan, str(data), "train", settings, out)
    again = cached_scan(scan, str(data), "train", settings, out)
    assert len(calls) == 1 and again == first and again.kept == [0, 1]
    assert json.loads((tmp_path / "out" / CACHE_FOLDER / "train.json").read_text())["report"]["kept"] == [0, 1]

    cached_scan(scan, str(data), "train", {"max_pixels": 200}, out)  # another setting: scanned again
    assert len(calls) == 2
    stat = data.stat()
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the file changed: scanned again
    cached_scan(scan, str(data), "train", {"max_pixels": 200}, out)
    assert len(calls) == 3
    cached_scan(scan, "some/hub-id", "train", settings, out)  # no local files to key on: never cached
    cached_scan(scan, "some/hub-id", "train", settings, out)
    assert len(calls) == 5


def test_report_round_trip_and_single_process_check() -> None:
    report = SplitReport(split="train", rows_in=3, rows_out=1, bad_rows=[(2, "bad")], kept=[0])
    report.answer_types["1"] += 1
    assert SplitReport.from_dict(json.loads(json.dumps(report.to_dict()))) == report
    assert check_once(lambda: report) is report

    def failing() -> SplitReport:
        raise DatasetError("split 'train': 1 bad row(s)")

    with pytest.raises(DatasetError, match="bad row"):
        check_once(failing)


RANK_SCRIPT = """
import json, os, sys
from accelerate import PartialState
from tinyrs_grpo.data import DatasetError, SplitReport
from tinyrs_grpo.scan import check_once

state = PartialState(cpu=True)
calls = []

def check():
    calls.append(state.process_index)
    if sys.argv[1] == "fail":
        raise DatasetError("split 'train': 1 bad row(s): row 3: empty problem")
    return SplitReport(split="train", rows_in=4, rows_out=2, kept=[0, 2])

try:
    result = check_once(check).kept
except DatasetError as exc:
    result = str(exc)
with open(os.path.join(sys.argv[2], f"rank{state.process_index}.json"), "w") as f:
    json.dump({"calls": calls, "result": result}, f)
"""


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["ok", "fail"])
def test_check_once_runs_on_the_main_process_only(tmp_path: Path, mode: str) -> None:
    """Two CPU processes (gloo): only rank 0 checks; rank 1 receives the report, or the same one-line error."""
    import subprocess
    import sys

    port = free_port()
    script = tmp_path / "ranks.py"
    script.write_text(RANK_SCRIPT)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
           str(script), mode, str(tmp_path)]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["calls"] == [0] and ranks[1]["calls"] == []
    expected = [0, 2] if mode == "ok" else "split 'train': 1 bad row(s): row 3: empty problem"
    assert ranks[0]["result"] == ranks[1]["result"] == expected
