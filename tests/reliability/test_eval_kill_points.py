"""Evaluation killed with SIGKILL at several points (between batches, in the middle of a JSONL line, during the
merge, between benchmarks, while writing results.json), or stopped by a full disk: the rerun produces exactly the
records of an uninterrupted run, none twice, none lost, no truncated line accepted.

Each killed run is a forked copy of the test process; the kill is injected at the named point (a real SIGKILL: no
``finally`` blocks, no flushing) or sent by the parent. The rerun is the same command, in-process.
"""

from __future__ import annotations

import json
import os
import pathlib
import resource
import signal
from pathlib import Path

import pytest

from helpers import BAD_INPUTS, drop_privileges, run_forked, single_torch_thread


TASKS = "cls_aid,vqa_HR-comp,rs_vg"
STEMS = ["cls_AID", "RSVQA_HR-comp_RSVQA", "VG_DOIR_RSVG_test"]
LIMIT = 4
TOTAL = LIMIT * len(STEMS)


def argv(model: Path, data_root: Path, out: Path) -> list[str]:
    return ["--model_type", "hf", "--model_path", str(model), "--data_root", str(data_root), "--output_dir", str(out),
            "--task", TASKS, "--batch_size", "1", "--run_name", "r", "--log_level", "WARNING", "--max_new_tokens",
            "8", "--limit", str(LIMIT)]  # fmt: skip


def records(out: Path) -> dict[str, list[dict]]:
    return {stem: [json.loads(x) for x in (out / "r" / f"{stem}.jsonl").read_text().splitlines()] for stem in STEMS}


def complete_lines(run_dir: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in run_dir.glob("*.jsonl")) if run_dir.is_dir() else 0


@pytest.fixture(scope="module")
def reference(tiny_model_dir: Path, demo_data_dir: Path, tmp_path_factory) -> dict:
    from tinyrs_eval.run import cli as main

    out = tmp_path_factory.mktemp("eval_ref")
    with single_torch_thread():
        assert main(argv(tiny_model_dir, demo_data_dir / "eval", out)) == 0
    return records(out)


# -- injected kill points (run inside the forked child) -----------------------------------------------------------
def kill_mid_line(n_writes: int = 3):
    def setup() -> None:
        from tinyrs_eval import storage

        original = storage.JsonlAppender.write
        calls = {"n": 0}

        def write(self, recs):
            calls["n"] += 1
            if calls["n"] == n_writes:
                line = json.dumps(list(recs)[0]) + "\n"
                self._fh.write(line[: len(line) // 2])
                self._fh.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            return original(self, recs)

        storage.JsonlAppender.write = write

    return setup


def kill_on_replace(suffix: str):
    """SIGKILL just before ``os.replace`` moves a finished temp file onto ``*suffix`` (merged JSONL, results.json)."""

    def setup() -> None:
        original = os.replace

        def replace(src, dst, *a, **k):
            if str(dst).endswith(suffix):
                os.kill(os.getpid(), signal.SIGKILL)
            return original(src, dst, *a, **k)

        os.replace = replace

    return setup


def kill_before_part_unlink() -> None:
    """SIGKILL after the merged file replaced the parts but before the parts are deleted (both on disk)."""
    original = pathlib.Path.unlink

    def unlink(self, *a, **k):
        if ".part-" in self.name:
            os.kill(os.getpid(), signal.SIGKILL)
        return original(self, *a, **k)

    pathlib.Path.unlink = unlink


KILL_POINTS = {
    "between_batches": (None, lambda run_dir: complete_lines(run_dir) >= 3),
    "mid_line_write": (kill_mid_line(3), None),
    "merge_before_replace": (kill_on_replace("cls_AID.jsonl"), None),
    "merge_after_replace_before_unlink": (kill_before_part_unlink, None),
    "between_benchmarks": (None, lambda d: (d / "cls_AID.jsonl").exists() and complete_lines(d) > LIMIT),
    "results_json_write": (kill_on_replace("results.json"), None),
}  # fmt: skip


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_eval_killed_then_rerun_gives_the_uninterrupted_records(point, tiny_model_dir, demo_data_dir, reference,
                                                                tmp_path):  # fmt: skip
    from tinyrs_eval.run import cli as main

    out = tmp_path / "out"
    args = argv(tiny_model_dir, demo_data_dir / "eval", out)
    setup, kill_when = KILL_POINTS[point]
    status = run_forked(
        lambda: main(args), setup=setup, kill_when=(lambda: kill_when(out / "r")) if kill_when else None
    )
    assert status == -signal.SIGKILL, f"{point}: the run was not killed (status {status})"
    assert not (out / "results.json").exists() or point == "results_json_write"
    if point == "mid_line_write":  # a cut line is on disk and must not be accepted
        tails = [p.read_bytes() for p in (out / "r").glob("*.part-*.jsonl")]
        assert any(t and not t.endswith(b"\n") for t in tails)
    done_before = complete_lines(out / "r") if point != "merge_after_replace_before_unlink" else None

    assert main(args) == 0  # the same command again
    got = records(out)
    assert got == reference  # every record, in order, equal to the uninterrupted run
    for stem in STEMS:
        indices = [r["index"] for r in got[stem]]
        assert indices == sorted(set(indices)) and len(indices) == LIMIT  # none lost, none twice
    assert not list((out / "r").glob("*.part-*")) and not list((out / "r").glob("*.tmp"))
    results = json.loads((out / "results.json").read_text())
    inferred = sum(b["n_inferred"] for b in results["benchmarks"].values())
    if done_before is not None and point != "results_json_write":
        assert inferred <= TOTAL - min(done_before, TOTAL) + 1  # finished records were not generated again
    if point in ("merge_before_replace", "merge_after_replace_before_unlink", "results_json_write"):
        assert inferred == TOTAL - LIMIT * (STEMS.index("cls_AID") + 1) or point == "results_json_write"


def test_eval_disk_full_mid_run_then_rerun(tiny_model_dir, demo_data_dir, reference, tmp_path, capfd):
    """A file-size limit (RLIMIT_FSIZE, like a full disk) hits while predictions are appended: one line naming the
    file, non-zero status, then a rerun with room completes with exactly the uninterrupted records."""
    from tinyrs_eval.run import cli as main

    out = tmp_path / "out"
    args = argv(tiny_model_dir, demo_data_dir / "eval", out)

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (1500, 1500))  # the small write probe still fits

    status = run_forked(lambda: main(args), setup=limit_file_size)
    err = capfd.readouterr().err
    assert status == 1, err[-2000:]  # a runtime failure: 1 (2 is for usage errors, as in tinyrs-sft)
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "File too large" in lines[0] and "Traceback" not in err, err[-2000:]
    assert str(out / "r") in lines[0] and ".jsonl" in lines[0]  # names the file
    assert main(args) == 0
    assert records(out) == reference


def test_eval_read_only_output_fails_before_the_model_loads(tiny_model_dir, demo_data_dir, tmp_path, capfd):
    import tempfile

    from tinyrs_eval.run import cli as main

    base = Path(tempfile.mkdtemp(dir="/tmp", prefix="rel-ro-"))
    try:
        base.chmod(0o755)
        out = base / "results"
        out.mkdir(mode=0o555)
        out.chmod(0o555)
        # a data_root the unprivileged child can read (the benchmark files are validated before the output check)
        args = ["--model_path", "/nonexistent/model", "--data_root", str(BAD_INPUTS / "eval_images"), "--output_dir",
                str(out), "--task", "cls_aid"]  # fmt: skip
        status = run_forked(lambda: main(args), setup=drop_privileges)
        err = capfd.readouterr().err
        assert status == 1
        assert f"cannot write to --output_dir {out}" in err and "Traceback" not in err, err[-2000:]
        assert list(out.iterdir()) == []
    finally:
        (base / "results").chmod(0o755)
        import shutil

        shutil.rmtree(base)
