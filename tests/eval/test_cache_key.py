"""The prediction cache key holds a fingerprint of the weights: a model retrained into the same folder is evaluated
afresh, a rerun of the same weights resumes, and an explicit --run_name refuses predictions of other weights."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from helpers import FakeBackend
from tinyrs_eval import model_source, run
from tinyrs_eval.config import make_run_name, parse_run_args
from tinyrs_eval.prompts import load_template


def _fake_checkpoint(folder: Path, weights: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "qwen2_vl"}))
    (folder / "model.safetensors").write_bytes(weights)
    return folder


def _retrain(folder: Path, weights: bytes, keep_mtime: bool = False) -> None:
    """Overwrite the weights (same size); optionally restore the old modification time, so only content differs."""
    path = folder / "model.safetensors"
    before = path.stat()
    path.write_bytes(weights)
    if keep_mtime:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


@pytest.fixture
def fake_generate(monkeypatch):
    """Replace the model by a fake backend whose answer the test sets (``state["answer"]``)."""
    state = {"answer": "yes", "backends": []}

    def create_backend(name, **kwargs):
        backend = FakeBackend(lambda req: state["answer"])
        state["backends"].append(backend)
        return backend

    monkeypatch.setattr(run, "create_backend", create_backend)
    return state


def _args(model: Path, data_root: Path, out: Path, *extra: str) -> list[str]:
    return ["--model_name_or_path", str(model), "--data_root", str(data_root), "--output_dir", str(out), "--task",
            "vqa_LR-pre", "--limit", "3", "--log_level", "WARNING", *extra]  # fmt: skip


def _results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


def test_fingerprint_changes_with_the_weights_not_with_a_rerun(tmp_path):
    model = _fake_checkpoint(tmp_path / "ckpt", b"A" * 4096)

    def name() -> str:
        return make_run_name(parse_run_args(["--model_name_or_path", str(model)]), load_template(None))

    first = name()
    assert name() == first  # same weights: same key (a rerun resumes)
    _retrain(model, b"B" * 4096, keep_mtime=True)  # same size and mtime: the content hash tells
    second = name()
    assert second != first
    (model / "model.safetensors").touch()  # a new mtime alone also counts as new weights (never stale)
    assert name() != second
    (model / "README.md").write_text("notes")  # files that cannot change predictions are not fingerprinted
    assert model_source.folder_fingerprint(model) == model_source.folder_fingerprint(model)
    assert "README.md" not in json.dumps(model_source.folder_fingerprint(model))


def test_retrained_model_is_evaluated_again_and_rerun_resumes(tmp_path, eval_data_root, fake_generate):
    model = _fake_checkpoint(tmp_path / "ckpt", b"A" * 4096)
    out = tmp_path / "out"
    assert run.cli(_args(model, eval_data_root, out)) == 0
    first = _results(out)
    assert first["benchmarks"]["vqa_LR-pre"]["n_inferred"] == 3
    assert run.cli(_args(model, eval_data_root, out)) == 0  # rerun, same weights: everything cached
    assert _results(out)["benchmarks"]["vqa_LR-pre"]["n_inferred"] == 0
    assert len(fake_generate["backends"]) == 1  # the second run did not even load the model

    _retrain(model, b"B" * 4096)
    fake_generate["answer"] = "no"
    assert run.cli(_args(model, eval_data_root, out)) == 0  # default --force_inference false
    again = _results(out)
    assert again["run_name"] != first["run_name"]
    assert again["benchmarks"]["vqa_LR-pre"]["n_inferred"] == 3  # not the old predictions re-scored
    preds = [json.loads(line)["pred"] for line in (out / again["benchmarks"]["vqa_LR-pre"]["predictions"]).open()]
    assert preds == ["no", "no", "no"]


def test_explicit_run_name_refuses_predictions_of_other_weights(tmp_path, eval_data_root, fake_generate, capsys):
    model = _fake_checkpoint(tmp_path / "ckpt", b"A" * 4096)
    out = tmp_path / "out"
    args = _args(model, eval_data_root, out, "--run_name", "mine")
    assert run.cli(args) == 0
    assert json.loads((out / "mine" / "settings.json").read_text())["model"]["files"]
    assert run.cli(args) == 0 and _results(out)["benchmarks"]["vqa_LR-pre"]["n_inferred"] == 0
    _retrain(model, b"B" * 4096)
    capsys.readouterr()
    assert run.cli(args) == 1  # found while running: exit status 1 (2 is for usage errors)
    err = capsys.readouterr().err
    assert "different model weights" in err and "--force_inference true" in err and "Traceback" not in err
    assert run.cli([*args, "--force_inference", "true"]) == 0
    assert _results(out)["benchmarks"]["vqa_LR-pre"]["n_inferred"] == 3
    assert run.cli(args) == 0  # the new settings are recorded: a rerun resumes again


def _fake_hub_cache(root: Path, repo_id: str, commit: str) -> Path:
    repo = root / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    return snapshot


def test_hub_id_fingerprint_and_checks(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    commit = "0123456789abcdef0123456789abcdef01234567"
    _fake_hub_cache(tmp_path / "hub", "owner/cached-model", commit)
    assert model_source.model_fingerprint("owner/cached-model") == {"hub": "owner/cached-model", "revision": commit}
    problems, notes = model_source.check_model("owner/cached-model")
    assert problems == [] and commit in notes[0]
    # a valid id that is not cached while offline: an error naming the download
    assert model_source.model_fingerprint("owner/other") == {"hub": "owner/other", "revision": "main"}
    (problem,) = model_source.check_model("owner/other")[0]
    assert "not in the local Hugging Face cache" in problem and "(hf download owner/other)" in problem
    assert "hf download owner/other --local-dir DIR" in problem and "huggingface-cli" not in problem
    # online, not cached: a note, the run downloads it (the commit lookup is not attempted here: no network)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "0")
    monkeypatch.setattr(model_source, "_remote_commit", lambda repo_id: "feedbeef")
    assert model_source.check_model("owner/other")[0] == []
    assert model_source.model_fingerprint("owner/other")["revision"] == "feedbeef"


@pytest.mark.parametrize(
    ("model_path", "message"),
    [
        ("no-such-folder", "neither an existing folder nor a hub id"),
        ("./runs/a/b", "neither an existing folder nor a hub id"),
        ("owner/name/extra", "neither an existing folder nor a hub id"),
        ("owner--x/name", "neither an existing folder nor a hub id"),
        ("", "neither an existing folder nor a hub id"),
    ],
)
def test_model_path_that_is_neither_folder_nor_hub_id(model_path, message, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (problem,) = model_source.check_model(model_path)[0]
    assert message in problem


def test_model_folder_without_config_or_weights(tmp_path):
    (tmp_path / "m").mkdir()
    problems, _ = model_source.check_model(str(tmp_path / "m"))
    assert len(problems) == 2 and "config.json" in problems[0] and "weight files" in problems[1]
    (tmp_path / "file").write_text("x")
    assert "is a file" in model_source.check_model(str(tmp_path / "file"))[0][0]
