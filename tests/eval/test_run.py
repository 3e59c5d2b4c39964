"""End to end with the hf backend and the tiny model on the demo data_root; bad input; the HTML report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import single_torch_thread
from tinyrs_eval import report, run
from tinyrs_eval.benchmarks import BENCHMARKS


ALL_KEYS = list(BENCHMARKS)
TEXT_KEYS = ["accuracy", "n"]
BBOX_KEYS = ["precision@0.5", "precision@0.5_S", "precision@0.5_M", "precision@0.5_L", "n"]
RECORD_KEYS = {"index", "image", "size", "question", "query", "answer", "pred", "error", "extracted_answer",
               "malformed", "score"}  # fmt: skip


FAKE_SECRETS = {"OPENAI_API_KEY": "sk-fake-tinyrs-7c1d9e", "HF_TOKEN": "hf_fakeTinyrsToken42"}


def _args(model, data_root, out, *extra):
    return ["--model_type", "hf", "--model_name_or_path", str(model), "--data_root", str(data_root), "--output_dir",
            str(out), "--max_new_tokens", "8", "--log_level", "WARNING", *extra]  # fmt: skip


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _predictions(out: Path, results: dict, key: str) -> list[dict]:
    return _read(out / results["benchmarks"][key]["predictions"])


@pytest.fixture(scope="module")
def hf_run(tiny_model_dir, demo_data_dir, tmp_path_factory):
    """One --task all run (3 samples per benchmark), shared by the tests below."""
    out = tmp_path_factory.mktemp("hf-run")
    args = _args(tiny_model_dir, Path(demo_data_dir) / "eval", out, "--task", "all", "--limit", "3",
                 "--batch_size", "2")  # fmt: skip
    with single_torch_thread(), pytest.MonkeyPatch.context() as mp:  # fake secrets in the environment of the run
        for name, value in FAKE_SECRETS.items():
            mp.setenv(name, value)
        assert run.cli(args) == 0
    return out, args


def test_all_benchmarks_end_to_end(hf_run, capsys):
    out, _ = hf_run
    results = json.loads((out / "results.json").read_text())
    assert list(results["benchmarks"]) == ALL_KEYS
    for key, bench in results["benchmarks"].items():
        keys = BBOX_KEYS if bench["task_type"] == "bbox" else TEXT_KEYS
        for mode in ("strict", "legacy"):
            assert list(bench[mode])[: len(keys)] == keys, (key, mode)
        assert bench["n_samples"] == 3 and bench["n_inferred"] == 3
        assert isinstance(bench["malformed"], int) and bench["errors"] == 0
        assert bench["timings"]["generate_s"] > 0 and bench["samples_per_s"] > 0
        records = _predictions(out, results, key)
        assert [r["index"] for r in records] == [0, 1, 2]
        assert RECORD_KEYS <= set(records[0]) and set(records[0]["score"]) == {"strict", "legacy"}
        assert all(len(r["size"]) == 2 for r in records)
    lhrs = results["benchmarks"]["lhrs_bench"]["strict"]
    assert any(k.startswith("accuracy_") for k in lhrs)
    assert results["config"]["prompt_style"] == "tinyrs" and results["world_size"] == 1
    assert results["versions"]["torch"] and results["versions"]["transformers"]
    assert results["timings"]["model_load_s"] > 0
    run_dir = out / results["run_name"]
    assert json.loads((run_dir / "results.json").read_text())["run_name"] == results["run_name"]
    assert (
        json.loads((run_dir / "chat_template.json").read_text())["meta_instruction"] == "You are a helpful assistant."
    )
    summary = (out / "summary.md").read_text()
    assert all(f"| {k} " in summary for k in ALL_KEYS)
    rs_vg = _predictions(out, results, "rs_vg")
    assert rs_vg[0]["query"].startswith("{VG} ") and "<image>" not in rs_vg[0]["query"]


def test_no_secrets_in_results(hf_run):
    """The run had OPENAI_API_KEY and HF_TOKEN set: no output file holds them (nor the environment at large)."""
    out, _ = hf_run
    files = [p for p in out.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"results.json", "summary.md", "eval.log", "chat_template.json", "settings.json", "cls_AID.jsonl"} <= names
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        for name, secret in FAKE_SECRETS.items():
            assert secret not in text, f"{name} leaked into {path}"
        assert "HF_HUB_OFFLINE" not in text, path


def test_report_html(hf_run, tmp_path):
    out, _ = hf_run
    results = json.loads((out / "results.json").read_text())
    html_path = tmp_path / "report.html"
    assert report.main([str(out), str(out / results["run_name"]), "--output", str(html_path), "--examples", "2"]) == 0
    html = html_path.read_text()
    assert html.count("data:image/png;base64,") >= 2  # the two score charts
    assert html.count("data:image/jpeg;base64,") >= 2  # failure thumbnails
    assert all(k in html for k in ALL_KEYS)
    assert ">Failures</h2>" in html and "src='http" not in html
    assert report.main([str(tmp_path / "nothing")]) == 2


def test_rerun_uses_the_cache_and_force_inference_restarts(hf_run, capsys):
    out, args = hf_run
    first = json.loads((out / "results.json").read_text())
    before = {k: _predictions(out, first, k) for k in ("cls_aid", "rs_vg")}
    assert run.cli([*args[:-4], "--task", "cls_aid,rs_vg", "--limit", "3"]) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["timings"]["model_load_s"] == 0  # nothing to infer: the model is not even loaded
    assert again["benchmarks"]["cls_aid"]["n_inferred"] == 0
    for key in before:
        assert _predictions(out, again, key) == before[key]
        assert again["benchmarks"][key]["strict"] == first["benchmarks"][key]["strict"]
    assert "| rs_vg " in capsys.readouterr().out  # the table is printed
    assert run.cli([*args[:-4], "--task", "cls_aid", "--limit", "2", "--force_inference", "true"]) == 0
    forced = json.loads((out / "results.json").read_text())
    assert list(forced["benchmarks"]) == ["cls_aid"]
    assert forced["benchmarks"]["cls_aid"]["n_inferred"] == 2 and forced["timings"]["model_load_s"] > 0
    assert _predictions(out, forced, "cls_aid") == before["cls_aid"][:2]
    # the run folder keeps every benchmark scored under this run name
    in_run_dir = json.loads((out / forced["run_name"] / "results.json").read_text())
    assert list(in_run_dir["benchmarks"]) == ALL_KEYS
    assert in_run_dir["benchmarks"]["cls_aid"]["n_samples"] == 2


def test_missing_and_unreadable_images_are_counted_errors(tiny_model_dir, data_copy, tmp_path, one_thread):
    folder = data_copy / "cls_AID"
    images = sorted(folder.iterdir())
    images[0].unlink()
    images[1].write_bytes(b"not an image")
    out = tmp_path / "out"
    assert run.cli(_args(tiny_model_dir, data_copy, out, "--task", "cls_aid", "--limit", "3")) == 0
    results = json.loads((out / "results.json").read_text())
    bench = results["benchmarks"]["cls_aid"]
    assert bench["errors"] == 2 and bench["n_samples"] == 3
    records = _predictions(out, results, "cls_aid")
    assert records[0]["error"].startswith("image not found") and records[1]["error"].startswith("image unreadable")
    for rec in records[:2]:
        assert rec["pred"] == "" and rec["score"] == {"strict": 0.0, "legacy": 0.0}
    assert records[2]["error"] is None


def test_missing_benchmark_reported_before_model_load(data_copy, tmp_path, capsys):
    (data_copy / "VG_DOIR_RSVG_test.json").unlink()
    # The model path does not exist: the data error must come first, so no model was loaded.
    code = run.cli(_args(tmp_path / "no-model", data_copy, tmp_path / "out", "--task", "cls_aid,rs_vg"))
    err = capsys.readouterr().err
    assert code == 1  # bad data: 1 (2 is for usage errors)
    assert "error: benchmark file not found for task rs_vg" in err and "VG_DOIR_RSVG_test.json" in err
    assert not (tmp_path / "out").exists()


def test_malformed_record_reported_with_file_and_index(data_copy, tmp_path, capsys):
    path = data_copy / "cls_SIRI_WHU.json"
    records = json.loads(path.read_text())
    del records[2]["conversations"]
    path.write_text(json.dumps(records))
    assert run.cli(_args(tmp_path / "no-model", data_copy, tmp_path / "out", "--task", "cls_SIRI")) == 1
    assert f"{path} record 2" in capsys.readouterr().err


def test_lmdeploy_without_package_or_cuda_names_hf(monkeypatch, tmp_path, capsys):
    import importlib.util

    import tinyrs_eval.backends as backends

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "lmdeploy" else real_find_spec(name, *a)
    )
    assert run.cli(["--model_type", "lmdeploy", "--model_name_or_path", "m", "--data_root", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "'lmdeploy' package" in err and "--model_type hf" in err and "\n" not in err
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    monkeypatch.setattr(backends, "_cuda_available", lambda: False)
    assert run.cli(["--model_type", "lmdeploy", "--model_name_or_path", "m", "--data_root", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "CUDA" in err and "--model_type hf" in err


def test_cached_records_must_match_the_benchmark(tiny_model_dir, data_copy, tmp_path, one_thread, capsys):
    out = tmp_path / "out"
    args = _args(tiny_model_dir, data_copy, out, "--task", "vqa_LR-pre", "--limit", "2", "--run_name", "r")
    assert run.cli(args) == 0
    path = data_copy / "RSVQA_LR-presence_RSVQA.json"
    records = json.loads(path.read_text())
    records[1]["conversations"][1]["value"] = "changed"
    path.write_text(json.dumps(records))
    assert run.cli(args) == 1
    assert "cached record 1 does not match" in capsys.readouterr().err
    assert run.cli([*args, "--force_inference", "true"]) == 0


@pytest.mark.gpu
def test_hf_backend_on_gpu(tiny_model_dir, eval_data_root, tmp_path):
    out = tmp_path / "out"
    assert run.cli(_args(tiny_model_dir, eval_data_root, out, "--task", "cls_aid,rs_vg", "--limit", "8")) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["dtype"] == "auto"
    assert all(b["n_samples"] == 8 and b["errors"] == 0 for b in results["benchmarks"].values())
