"""Resume after SIGKILL, and several processes against one (subprocesses with the tiny model)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import REPO_ROOT, free_port, run_eval_cli, subprocess_env
from tinyrs_eval import run


TASKS = "cls_aid,vqa_HR-comp,rs_vg"
STEMS = ["cls_AID", "RSVQA_HR-comp_RSVQA", "VG_DOIR_RSVG_test"]


def _args(model, data_root, out, run_name, *extra):
    return ["--model_type", "hf", "--model_name_or_path", str(model), "--data_root", str(data_root), "--output_dir",
            str(out), "--task", TASKS, "--batch_size", "1", "--run_name", run_name, "--log_level", "WARNING",
            *extra]  # fmt: skip


def _complete_lines(run_dir: Path) -> int:
    n = 0
    for path in run_dir.glob("*.jsonl"):
        n += path.read_bytes().count(b"\n")
    return n


def _records(out: Path, run_name: str) -> dict[str, list[dict]]:
    def read(path: Path) -> list[dict]:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]

    return {stem: read(out / run_name / f"{stem}.jsonl") for stem in STEMS}


def test_resume_after_sigkill(tiny_model_dir, eval_data_root, tmp_path, one_thread):
    gen = ["--max_new_tokens", "24", "--limit", "8"]
    ref_out, out = tmp_path / "ref", tmp_path / "killed"
    assert run.cli(_args(tiny_model_dir, eval_data_root, ref_out, "r", *gen)) == 0
    reference = _records(ref_out, "r")
    total = sum(len(v) for v in reference.values())

    cmd = [sys.executable, "-m", "tinyrs_eval.run", *_args(tiny_model_dir, eval_data_root, out, "r", *gen)]
    proc = subprocess.Popen(cmd, env=subprocess_env(), cwd=REPO_ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    run_dir = out / "r"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if run_dir.is_dir() and _complete_lines(run_dir) >= 3:
                break
            time.sleep(0.02)
        assert proc.poll() is None, f"run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "results.json").exists()
    done_before = _complete_lines(run_dir)
    assert 3 <= done_before < total
    parts = sorted(run_dir.glob("*.part-*.jsonl"))
    assert parts, "the killed run left its part file"
    with open(parts[-1], "a", encoding="utf-8") as f:
        f.write('{"index": 9, "pred": "half a rec')  # as if killed in the middle of a write

    assert run.cli(_args(tiny_model_dir, eval_data_root, out, "r", *gen)) == 0
    resumed = _records(out, "r")
    assert resumed == reference  # same final records, in order, none twice
    results = json.loads((out / "results.json").read_text())
    assert sum(b["n_inferred"] for b in results["benchmarks"].values()) == total - done_before  # nothing redone
    assert not list(run_dir.glob("*.part-*"))


@pytest.mark.slow
def test_two_processes_equal_one(tiny_model_dir, eval_data_root, tmp_path):
    """accelerate launch with 2 processes on CPU (gloo) gives the records and metrics of one process.

    A first 2-process run with --limit 1 has fewer samples than processes; the second run resumes it with --limit 3.
    (`accelerate launch --cpu` starts a single process; `--multi_gpu` starts N and tinyrs_eval puts them on gloo.)
    """
    one, two = tmp_path / "one", tmp_path / "two"
    run_eval_cli([*_args(tiny_model_dir, eval_data_root, one, "r"), "--max_new_tokens", "8", "--limit", "3"])
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
              str(free_port()), "-m", "tinyrs_eval.run"]  # fmt: skip
    for limit in ("1", "3"):
        proc = subprocess.run(
            [*launch, *_args(tiny_model_dir, eval_data_root, two, "r"), "--max_new_tokens", "8", "--limit", limit],
            env=subprocess_env(), cwd=REPO_ROOT, capture_output=True, text=True, timeout=400,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-4000:]
        results_two = json.loads((two / "results.json").read_text())
        assert results_two["world_size"] == 2
    results_one = json.loads((one / "results.json").read_text())
    assert _records(two, "r") == _records(one, "r")
    for key, bench in results_one["benchmarks"].items():
        for field in ("strict", "legacy", "malformed", "errors", "n_samples"):
            assert results_two["benchmarks"][key][field] == bench[field], (key, field)
