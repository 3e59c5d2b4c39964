"""Security properties (remote code, unpickling, evaluating model output, paths escaping the image folder) and the
up-front output-folder checks of training (read-only folder, too little free space)."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from helpers import BAD_INPUTS, call_cli, drop_privileges, png_bytes, result_like_files, run_forked


REPO = Path(__file__).resolve().parents[2]
PACKAGE_SOURCES = sorted(
    p for pkg in ("sft/tinyrs_sft", "grpo/tinyrs_grpo", "eval/tinyrs_eval") for p in (REPO / pkg).rglob("*.py")
)


# ---------------------------------------------------------------------------------------------------------------
# remote code
# ---------------------------------------------------------------------------------------------------------------
EVIL = """
import pathlib
pathlib.Path({marker!r}).write_text("remote code ran")
"""


@pytest.fixture
def booby_trapped_model(tiny_model_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The tiny checkpoint plus an ``auto_map`` to a module that leaves a marker file when imported."""
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    marker = tmp_path / "REMOTE_CODE_RAN"
    (model / "evil.py").write_text(EVIL.format(marker=str(marker)))
    for name in ("config.json", "preprocessor_config.json", "processor_config.json", "tokenizer_config.json"):
        path = model / name
        if path.is_file():
            data = json.loads(path.read_text())
            data["auto_map"] = {"AutoConfig": "evil.Config", "AutoModelForImageTextToText": "evil.Model",
                                "AutoProcessor": "evil.Processor", "AutoImageProcessor": "evil.ImageProcessor",
                                "AutoTokenizer": ["evil.Tokenizer", None]}  # fmt: skip
            path.write_text(json.dumps(data))
    return model, marker


def test_no_remote_code_runs_unless_asked(booby_trapped_model) -> None:
    import torch
    from trl import GRPOConfig, ModelConfig

    from tinyrs_eval.backends import GenerationSettings
    from tinyrs_eval.backends.hf import HFBackend
    from tinyrs_eval.prompts import load_template
    from tinyrs_grpo.model import load_processor as grpo_processor
    from tinyrs_sft.model import load_model, load_processor

    model, marker = booby_trapped_model
    load_processor(str(model))
    load_model(str(model), torch.float32, disable_flash_attn2=True)
    grpo_processor(str(model), 3136, 12544)
    HFBackend(str(model), GenerationSettings(max_new_tokens=2), load_template(None))
    assert not marker.exists(), "a checkpoint's custom code was imported without trust_remote_code"
    config = GRPOConfig(output_dir=str(model.parent / "cfg"), use_cpu=True, bf16=False)
    assert (
        getattr(config, "trust_remote_code", False) is False
        and getattr(ModelConfig(), "trust_remote_code", False) is False
    )


FORBIDDEN = {
    "pickle / marshal / shelve": re.compile(r"^\s*(import|from)\s+(pickle|cPickle|marshal|shelve|dill)\b", re.M),
    "eval/exec of text": re.compile(r"(?<![\w.])(eval|exec)\s*\("),
    "pickled arrays or frames": re.compile(r"allow_pickle\s*=\s*True|read_pickle|joblib\.load"),
    "torch.load without weights_only": re.compile(r"torch\.load\((?![^)]*weights_only\s*=\s*True)"),
    "trust_remote_code forced on": re.compile(r"trust_remote_code\s*=\s*True"),
}


@pytest.mark.parametrize("rule", list(FORBIDDEN))
def test_package_sources_never_unpickle_or_evaluate(rule: str) -> None:
    assert PACKAGE_SOURCES
    hits = [f"{p.relative_to(REPO)}" for p in PACKAGE_SOURCES if FORBIDDEN[rule].search(p.read_text())]
    assert hits == [], f"{rule}: {hits}"


PAYLOADS = [
    "__import__('pathlib').Path({marker!r}).write_text('x')",
    "<reasoning>r</reasoning><answer>__import__('pathlib').Path({marker!r}).write_text('x')</answer>",
    "[[__import__('pathlib').Path({marker!r}).write_text('x'), 1, 2, 3]]",
    "Score: exec(\"open({marker!r}, 'w')\")",
]


def test_model_outputs_are_parsed_not_evaluated(tmp_path: Path) -> None:
    """Outputs that are Python code go through every parser (GRPO rewards, judge score, eval metrics in both
    modes): they score as wrong / unparsable, and nothing runs."""
    from tinyrs_eval import metrics
    from tinyrs_grpo.judge import parse_score
    from tinyrs_grpo.rewards import format_reward, iou_reward
    from tinyrs_grpo.text import parse_box

    marker = tmp_path / "EVALUATED"
    for payload in (p.format(marker=str(marker)) for p in PAYLOADS):
        (reward,) = iou_reward([payload], solution=[["2", "[1, 2, 30, 40]", "q", ""]])
        assert reward is None or 0.0 <= reward < 0.01  # digits in the text may form a (useless) box; nothing runs
        format_reward([payload])
        parse_box(payload)
        score = parse_score(payload)  # only digits inside the text can be read
        assert score is None or 0.0 <= score <= 1.0
        rec = {"pred": payload, "answer": "[1, 2, 30, 40]", "size": [100, 100], "error": None, "question": "q"}
        for mode in metrics.MODES:
            metrics.sample_score("bbox", rec, mode, prompt_style="tinyrs", reasoning=False)
            metrics.sample_score("cls", dict(rec, answer="forest"), mode, prompt_style="tinyrs", reasoning=False)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------------------------
# image paths escaping the image folder (refused unless allowed)
# ---------------------------------------------------------------------------------------------------------------
def test_escaping_image_paths_are_allowed_only_on_request(tmp_path: Path) -> None:
    from tinyrs_grpo.build_data import build_grpo_dataset
    from tinyrs_grpo.data import DatasetError, load_grpo_dataset, prepare_split
    from tinyrs_sft.check_data import scan_records
    from tinyrs_sft.records import MediaPolicy, RecordSource

    outside = tmp_path / "outside.png"
    outside.write_bytes(png_bytes((1, 2, 3)))
    folder = tmp_path / "data"
    folder.mkdir()
    turns = [{"from": "human", "value": "<image>\nQ"}, {"from": "gpt", "value": "forest"}]
    for name in ("../outside.png", str(outside)):
        (folder / "sft.json").write_text(json.dumps([{"id": "a", "image": name, "conversations": turns}]))
        source = RecordSource(folder / "sft.json")
        refused = scan_records(source, MediaPolicy(image_folder=folder))
        assert refused.n_bad == 1 and "outside --image_folder" in refused.errors[0]
        assert scan_records(source, MediaPolicy(image_folder=folder, allow_external_paths=True)).n_bad == 0

        with pytest.raises(DatasetError, match="outside --image_folder"):
            build_grpo_dataset(folder / "sft.json", folder, tmp_path / f"built-{len(name)}")
        build_grpo_dataset(folder / "sft.json", folder, tmp_path / f"ok-{len(name)}", allow_external_image_paths=True)

        row = {"problem": "p", "image": name, "solution": ["1", "forest", "", ""]}
        (folder / "grpo.json").write_text(json.dumps([row]))
        with pytest.raises(DatasetError, match="row 0: image path .* points outside"):  # a counted bad row
            prepare_split(load_grpo_dataset(str(folder / "grpo.json"))["train"], judge_enabled=True)
        assert len(load_grpo_dataset(str(folder / "grpo.json"), allow_external_image_paths=True)["train"]) == 1


# ---------------------------------------------------------------------------------------------------------------
# output folder checked before any work
# ---------------------------------------------------------------------------------------------------------------
def sft_args(model: str, out: Path) -> list[str]:
    """A valid data file (the data check runs before the output-folder check) next to the output folder."""
    data = out.parent.parent / "sft_ok.json"
    turns = [{"from": "human", "value": "<image>\nQ"}, {"from": "gpt", "value": "forest"}]
    data.write_text(json.dumps([{"id": "a", "image": "ok.png", "conversations": turns}]))
    data.chmod(0o644)
    return ["train", "--model_id", model, "--data_path", str(data), "--image_folder", str(BAD_INPUTS / "media"),
            "--output_dir", str(out), "--use_cpu", "True", "--report_to", "none"]  # fmt: skip


def grpo_args(model: str, out: Path) -> list[str]:
    data = BAD_INPUTS / "grpo" / "grpo_box_letters.json"
    return ["train", "--model_name_or_path", model, "--dataset_name", str(data),
            "--output_dir", str(out), "--use_cpu", "true", "--report_to", "none", "--judge", "none"]  # fmt: skip


@pytest.mark.parametrize("stage", ["sft", "grpo"])
def test_read_only_output_folder_is_refused_first(stage: str, capfd) -> None:
    """As an unprivileged user (root ignores permissions) in a folder it cannot write: one line naming the folder,
    before the data or the model is read."""
    from tinyrs_grpo.cli import main as grpo_main
    from tinyrs_sft.cli import main as sft_main

    base = Path(tempfile.mkdtemp(dir="/tmp", prefix="rel-ro-"))
    try:
        base.chmod(0o755)
        out = base / "ro"
        out.mkdir()
        out.chmod(0o555)
        target = out / "run"
        main, argv = (sft_main, sft_args("/nonexistent/model", target)) if stage == "sft" else (
            grpo_main, grpo_args("/nonexistent/model", target))  # fmt: skip
        if stage == "grpo":  # import (and parse once) here: the unprivileged child cannot read root's stdlib copy
            from tinyrs_grpo.train import make_parser

            make_parser().parse_args_and_config(args=argv[1:])
        capfd.readouterr()
        status = run_forked(lambda: call_cli(main, argv), setup=drop_privileges)
        err = capfd.readouterr().err
        assert status == 1, err[-2000:]
        assert f"cannot write to --output_dir {target}: Permission denied" in err and "Traceback" not in err
        assert list(out.iterdir()) == []
    finally:
        (base / "ro").chmod(0o755)
        shutil.rmtree(base)


@pytest.mark.parametrize("stage", ["sft", "grpo"])
def test_too_little_free_space_is_refused_first(stage: str, tiny_model_dir: Path, tmp_path: Path, monkeypatch,
                                                capfd) -> None:  # fmt: skip
    import shutil as shutil_module
    from collections import namedtuple

    from tinyrs_grpo.cli import main as grpo_main
    from tinyrs_sft.cli import main as sft_main

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil_module, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    out = tmp_path / "run"
    main, argv = (sft_main, sft_args(str(tiny_model_dir), out)) if stage == "sft" else (
        grpo_main, grpo_args(str(tiny_model_dir), out))  # fmt: skip
    assert call_cli(main, argv) == 1
    err = capfd.readouterr().err
    assert f"--output_dir {out}: only 0.00 GiB free" in err and "Traceback" not in err
    assert result_like_files(out) == []
