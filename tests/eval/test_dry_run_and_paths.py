"""--dry_run checks the model path, the data and every image (outside the data root, cut short), prints the effective
settings and needs no GPU; images outside --data_root are refused in a real run, counted with a one-line reason."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from PIL import Image

from helpers import FakeBackend
from tinyrs_eval import backends, run
from tinyrs_eval.benchmarks import BENCHMARKS, image_path_problem, load_benchmark, parse_record


def _fake_checkpoint(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"\0" * 64)
    return folder


def _dry(model: Path, data_root: Path, *extra: str) -> list[str]:
    return ["--model_name_or_path", str(model), "--data_root", str(data_root),
            "--output_dir", str(data_root.parent / "out"), "--dry_run", "true", "--task", "cls_aid",
            "--log_level", "WARNING", *extra]  # fmt: skip


def _edit_records(path: Path, edit) -> None:
    records = json.loads(path.read_text())
    edit(records)
    path.write_text(json.dumps(records))


@pytest.fixture
def outside_png(tmp_path) -> Path:
    """A readable image outside the data root (what an escaping record could pull into the report)."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    Image.new("RGB", (28, 28), (200, 0, 0)).save(folder / "private.png")
    return folder / "private.png"


# ---------------------------------------------------------------------------------------------------------------
# image path policy
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("record", "refused"),
    [
        ({"image": "a.png"}, False),
        ({"image": "a.png", "image_path": "RSVQA_LR/Images"}, False),
        ({"image": "../../../../etc/hostname"}, True),
        ({"image": "/etc/hostname"}, True),  # an absolute image name replaces the folder
        ({"image": "hostname", "image_path": "/etc"}, True),
        ({"image": "a.png", "image_path": "../outside"}, True),
        ({"image": "../cls_AID/a.png"}, False),  # '..' that stays inside is fine
    ],
)
def test_image_paths_outside_the_data_root_are_refused(record, refused, tmp_path):
    rec = {**record, "conversations": [{"value": "q"}, {"value": "forest"}]}
    sample = parse_record(rec, 4, tmp_path / "cls_AID.json", "cls")
    assert (sample.path_error is not None) is refused
    if refused:
        assert "outside --data_root" in sample.path_error and "--allow_external_image_paths true" in sample.path_error
    assert parse_record(rec, 4, tmp_path / "cls_AID.json", "cls", allow_external=True).path_error is None
    assert image_path_problem(tmp_path / "x" / "y.png", tmp_path) is None


def test_real_run_counts_refused_records_and_never_opens_them(data_copy, outside_png, tmp_path, monkeypatch, caplog):
    seen = []
    monkeypatch.setattr(run, "create_backend", lambda name, **kw: FakeBackend(lambda r: seen.append(r) or "x"))
    opened = []
    real_load = run.load_image
    monkeypatch.setattr(run, "load_image", lambda path: opened.append(Path(path)) or real_load(path))

    def escape(records):
        records[0]["image"] = "../../../../../../../../etc/hostname"
        records[1]["image"], records[1]["image_path"] = outside_png.name, str(outside_png.parent)

    _edit_records(data_copy / "cls_AID.json", escape)
    model = _fake_checkpoint(tmp_path / "ckpt")
    out = tmp_path / "out"
    args = ["--model_name_or_path", str(model), "--data_root", str(data_copy), "--output_dir", str(out),
            "--task", "cls_aid", "--limit", "4", "--log_level", "WARNING"]  # fmt: skip
    with caplog.at_level(logging.WARNING):
        assert run.cli(args) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["benchmarks"]["cls_aid"]["errors"] == 2
    records = [json.loads(line) for line in (out / results["benchmarks"]["cls_aid"]["predictions"]).open()]
    assert all("outside --data_root" in r["error"] for r in records[:2]) and records[2]["error"] is None
    assert [r["image"] for r in records[:2]] == ["", ""]  # nothing downstream (the HTML report) opens the path
    assert len(seen) == 2 and all(p.parent != outside_png.parent and "etc" not in p.parts for p in opened)
    assert any("2 record(s) name an image outside the data root" in r.getMessage() for r in caplog.records)
    # the HTML report (which shows wrong and error samples with their images) opens nothing outside either
    from tinyrs_eval import report

    real_open, report_opened = Image.open, []
    monkeypatch.setattr(Image, "open", lambda fp, *a, **k: report_opened.append(str(fp)) or real_open(fp, *a, **k))
    assert report.main([str(out / results["run_name"]), "--output", str(tmp_path / "report.html")]) == 0
    monkeypatch.setattr(Image, "open", real_open)
    assert report_opened and not any("elsewhere" in p or "hostname" in p for p in report_opened)
    # allowed: the outside image is read (and the run has its own cache key, so the refusals are not reused)
    assert run.cli([*args, "--allow_external_image_paths", "true"]) == 0
    allowed = json.loads((out / "results.json").read_text())
    assert allowed["run_name"] != results["run_name"]
    assert allowed["benchmarks"]["cls_aid"]["errors"] == 1  # /etc/hostname is no image
    assert outside_png in opened


# ---------------------------------------------------------------------------------------------------------------
# dry run
# ---------------------------------------------------------------------------------------------------------------
def test_dry_run_finds_cut_short_missing_and_outside_images(data_copy, outside_png, tmp_path, capsys):
    model = _fake_checkpoint(tmp_path / "ckpt")
    assert run.cli(_dry(model, data_copy)) == 0
    assert "all present" in capsys.readouterr().out
    images = sorted((data_copy / "cls_AID").iterdir())
    png = images[0].read_bytes()
    images[0].write_bytes(png[: len(png) - 20])  # lost its IEND chunk; the header still opens
    Image.new("RGB", (40, 30)).save(images[1], format="JPEG")
    images[1].write_bytes(images[1].read_bytes()[:-2])  # a JPEG without its FFD9 end marker
    images[2].unlink()

    def escape(records):
        records[3]["image"], records[3]["image_path"] = outside_png.name, str(outside_png.parent)

    _edit_records(data_copy / "cls_AID.json", escape)
    assert run.cli(_dry(model, data_copy)) == 1  # problems found: 1, as tinyrs-sft's dry run
    captured = capsys.readouterr()
    (err,) = [line for line in captured.err.splitlines() if line.startswith("error:")]  # one line (plus log lines)
    assert err.startswith("error: dry run found 1 problem(s): task cls_aid: 4 of 10 image(s) unusable: record 0: ")
    assert "PNG ends without its IEND chunk" in err and "JPEG ends without its end-of-image marker FFD9" in err
    assert "record 2: image not found" in err and "(+1 more)" in err
    assert "PROBLEM: task cls_aid" in captured.out and not (data_copy.parent / "out").exists()
    assert run.cli(_dry(model, data_copy, "--allow_external_image_paths", "true")) == 1
    assert "outside --data_root" not in capsys.readouterr().err


def test_dry_run_without_a_gpu_for_a_gpu_backend(eval_data_root, tmp_path, monkeypatch, fake_lmdeploy, capsys):
    """A login node without a GPU can check a lmdeploy job: CUDA is a note, not a problem (the package is)."""
    monkeypatch.setattr(backends, "_cuda_available", lambda: False)
    model = _fake_checkpoint(tmp_path / "ckpt")
    assert run.cli([*_dry(model, eval_data_root), "--model_type", "lmdeploy"]) == 0
    out = capsys.readouterr().out
    assert "needs one when the run starts" in out and "device: no GPU" in out
    assert "model_type: lmdeploy" in out and "_ckpt-" in out.split("run_name (cache key): ")[1].split("\n")[0]


def test_dry_run_reports_every_problem_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    args = ["--model_name_or_path", "owner/not-downloaded", "--data_root", str(tmp_path / "nowhere"), "--dry_run",
            "true", "--task", "cls_aid"]  # fmt: skip
    assert run.cli(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: dry run found 2 problem(s)" in err
    assert "--data_root is not a directory" in err
    assert "download it first (hf download owner/not-downloaded)" in err and "huggingface-cli" not in err
    assert "--local-dir DIR" in err
    # an unknown --task is a usage error, refused while parsing (exit status 2), before anything is checked
    with pytest.raises(SystemExit) as info:
        run.cli([*args[:-1], "cls_aid,nope"])
    assert info.value.code == 2 and "unknown --task nope" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------------
# LHRS-Bench type ids with spaces: accepted, with a clear warning (strict strips, legacy matches exactly)
# ---------------------------------------------------------------------------------------------------------------
def test_padded_type_ids_are_warned_about(tmp_path, caplog):
    rec = {"image": "a.png", "conversations": [{"value": "q"}, {"value": "A"}]}
    (tmp_path / "LHRS-Bench.json").write_text(json.dumps([dict(rec, type=[" 1"]), dict(rec, type=["2"])]))
    with caplog.at_level(logging.WARNING):
        samples = load_benchmark(tmp_path, BENCHMARKS["lhrs_bench"])
    assert [s.types for s in samples] == [(" 1",), ("2",)]  # kept as written, for the legacy rule
    (message,) = [r.getMessage() for r in caplog.records]
    assert "1 record(s) have LHRS-Bench type ids with surrounding spaces (first: record 0" in message
