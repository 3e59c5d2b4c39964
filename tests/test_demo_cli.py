"""The command lines of tinyrs_demo: `tinyrs-demo-data`, `tinyrs-tiny-model`, `python -m tinyrs_demo` and the two
wrappers in scripts/ (same flags; exit status 2 for usage, 1 for a failure while writing, one line, no traceback)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tinyrs_demo import cli
from tinyrs_demo.questions import SCALES, SFT_BUILDERS


REPO = Path(__file__).resolve().parents[1]


def test_version_is_the_installed_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_info:
        cli.data_main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.split()[-1] == version("tinyrs-demo")


@pytest.mark.parametrize("main", [cli.data_main, cli.model_main])
def test_abbreviated_flag_is_a_usage_error(main, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--output", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "--output" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_unknown_scale_and_preset_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["data", "--output_dir", str(tmp_path), "--scale", "huge"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["model", "--output_dir", str(tmp_path), "--preset", "2b"])
    assert exit_info.value.code == 2


def test_size_flag_builds_the_resized_preset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "deep"
    assert cli.model_main(["--preset", "tiny", "--size", "num_hidden_layers=3", "--output_dir", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["text_config"]["num_hidden_layers"] == 3
    assert "tiny num_hidden_layers=3 Qwen2-VL checkpoint" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        cli.model_main(["--preset", "tiny", "--size", "num_hidden_layers", "--output_dir", str(tmp_path / "x")])
    assert exit_info.value.code == 2
    assert "expected FIELD=N" in capsys.readouterr().err
    assert cli.model_main(["--preset", "tiny", "--size", "layers=3", "--output_dir", str(tmp_path / "y")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot resize layers") and err.count("\n") == 1, err
    assert not (tmp_path / "y").exists()


def test_attention_init_gain_flag_overrides_the_preset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from safetensors.torch import load_file

    plain, gained = tmp_path / "plain", tmp_path / "gained"
    assert cli.model_main(["--preset", "tiny", "--output_dir", str(plain)]) == 0
    assert cli.model_main(["--preset", "tiny", "--attention_init_gain", "2", "--output_dir", str(gained)]) == 0
    assert "tiny attention_init_gain=2 Qwen2-VL checkpoint" in capsys.readouterr().out
    a, b = load_file(plain / "model.safetensors"), load_file(gained / "model.safetensors")
    changed = sorted(key for key in a if not (a[key] == b[key]).all())
    assert changed and all(key.endswith(("q_proj.weight", "k_proj.weight")) for key in changed)
    assert cli.model_main(["--preset", "tiny", "--attention_init_gain", "0", "--output_dir", str(tmp_path / "z")]) == 1
    assert "must be positive" in capsys.readouterr().err and not (tmp_path / "z").exists()


def test_unwritable_output_is_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert cli.data_main(["--output_dir", str(blocker / "data")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "a_file" in err, err


def test_module_entry_writes_the_same_data_as_the_library(
    demo_data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "data"
    assert cli.main(["data", "--output_dir", str(out), "--scale", "small", "--seed", "0"]) == 0
    assert (out / "sft.json").read_bytes() == (demo_data_dir / "sft.json").read_bytes()
    assert (out / "eval" / "LHRS-Bench.json").read_bytes() == (demo_data_dir / "eval" / "LHRS-Bench.json").read_bytes()
    n_sft = sum(SCALES["small"][key] for key in SFT_BUILDERS)
    printed = capsys.readouterr().out.splitlines()
    assert printed[1] == f"{out / 'sft.json'}: {n_sft} records"
    assert printed[-1] == f"{out / 'grpo'}: DatasetDict train/test"


@pytest.mark.parametrize(
    ("script", "flags"),
    [
        ("make_demo_data.py", ["--output_dir", "--seed", "--scale"]),
        (
            "make_tiny_model.py",
            ["--preset", "--output_dir", "--seed", "--min_pixels", "--max_pixels", "--size", "--attention_init_gain"],
        ),
    ],
)
def test_wrapper_scripts_keep_their_flags(script: str, flags: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / script), "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert all(flag in proc.stdout for flag in flags), proc.stdout
