"""The ``tinyrs-grpo`` console entry: --version, boolean words, refused unknown/abbreviated flags, custom rewards."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from transformers.hf_argparser import string_to_bool

from tinyrs_grpo import __version__
from tinyrs_grpo.build_data import make_parser as build_data_parser
from tinyrs_grpo.check_data import check_data_parser
from tinyrs_grpo.cli import main as cli_main
from tinyrs_grpo.cliargs import UsageError as FlagError
from tinyrs_grpo.cliargs import str2bool as parse_bool
from tinyrs_grpo.dry_run import wants_dry_run
from tinyrs_grpo.rewards import get_reward_funcs
from tinyrs_grpo.train import make_parser


REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "grpo" / "examples" / "custom_rewards.py"
# A dry run with hub ids: nothing is fetched or loaded, only the arguments (reward names included) are checked.
DRY_RUN = ["train", "--model_name_or_path", "Qwen/Qwen2-VL-2B-Instruct", "--dataset_name", "aybora/VHM_dataset_grpo",
           "--judge", "none", "--dry_run", "true"]  # fmt: skip
CPU = ["--use_cpu", "true"]  # GRPOConfig's bf16 default needs a GPU otherwise


@pytest.fixture
def forget_modules():
    """Drop the reward modules a test loads, so the next test has to find them again."""
    names: list[str] = []
    yield names
    for name in names:
        sys.modules.pop(name, None)


def no_cwd_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The console script's situation: the current folder is not importable (python -m would add it)."""
    cwd = os.getcwd()
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", cwd)])


# ---------------------------------------------------------------------------------------------------------------
# --version
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv", [["--version"], ["train", "--version"], ["check-data", "--version"], ["build-data", "--version"]]
)
def test_version(argv: list[str], capsys: pytest.CaptureFixture) -> None:
    try:
        code = cli_main(argv)
    except SystemExit as exc:  # argparse's version action exits
        code = exc.code
    assert code == 0
    assert capsys.readouterr().out == f"tinyrs-grpo {__version__}\n"
    assert __version__ == importlib.metadata.version("tinyrs-grpo")  # the installed package says the same


# ---------------------------------------------------------------------------------------------------------------
# booleans: the words TRL's parser accepts are accepted by every subcommand
# ---------------------------------------------------------------------------------------------------------------
BOOL_WORDS = ["true", "false", "True", "False", "TRUE", "1", "0", "yes", "no", "Yes", "NO", "t", "f", "y", "n"]


@pytest.mark.parametrize("word", BOOL_WORDS)
def test_boolean_words_mean_the_same_everywhere(word: str) -> None:
    expected = string_to_bool(word)  # transformers' HfArgumentParser, under TrlParser: the reference
    assert parse_bool(word) is expected
    assert check_data_parser().parse_args(["--dataset_name", "d", "--verify_images", word]).verify_images is expected
    assert (
        build_data_parser()
        .parse_args(["--data_path", "a", "--image_folder", "b", "--output_dir", "c", "--skip_bad_rows", word])
        .skip_bad_rows
        is expected
    )
    script_args, _, _ = make_parser().parse([*CPU, "--verify_images", word, "--skip_bad_rows", word])
    assert script_args.verify_images is expected and script_args.skip_bad_rows is expected
    assert wants_dry_run(["--dry_run", word]) is expected and wants_dry_run([f"--dry_run={word}"]) is expected


def test_bare_boolean_flag_is_true_and_default_false() -> None:
    args = check_data_parser().parse_args(["--dataset_name", "d", "--verify_images"])
    assert args.verify_images is True and args.allow_external_image_paths is False
    script_args, _, _ = make_parser().parse([*CPU, "--verify_images"])
    assert script_args.verify_images is True and script_args.skip_bad_rows is False


@pytest.mark.parametrize("word", ["maybe", "2", "on", "tru"])
def test_other_words_are_refused_everywhere(word: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        string_to_bool(word)  # the reference refuses them too
    with pytest.raises(argparse.ArgumentTypeError):
        parse_bool(word)
    with pytest.raises(SystemExit) as info:
        check_data_parser().parse_args(["--dataset_name", "d", "--verify_images", word])
    assert info.value.code == 2
    with pytest.raises(FlagError, match="--verify_images"):
        make_parser().parse([*CPU, "--verify_images", word])
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--verify_images" in err


# ---------------------------------------------------------------------------------------------------------------
# unknown and abbreviated flags: one line, exit 2, the closest name
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["check-data", "--dataset_name", "d", "--verify_image"], "did you mean --verify_images?"),
        (["check-data", "--dataset_name", "d", "--verify"], "did you mean --verify_images?"),  # a unique prefix
        (["build-data", "--data_path", "a", "--image_folder", "b", "--output_dir", "c", "--skip"], "--skip_bad_rows"),
        ([*DRY_RUN, "--learning_rat", "1e-3"], "unknown arguments: --learning_rat (did you mean --learning_rate?)"),
        ([*DRY_RUN, "--max_completion", "8"], "did you mean --max_completion_length?"),  # a unique prefix
        (["trian"], "unknown command 'trian' (did you mean train?)"),
    ],
)
def test_unknown_or_abbreviated_flag_is_one_line_with_a_hint(
    argv: list[str], hint: str, capsys: pytest.CaptureFixture
) -> None:
    try:
        code = cli_main(argv)
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert hint in err and len(err.splitlines()) == 1, err
    assert "Traceback" not in err


def test_unknown_recipe_key_is_named_with_the_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("beta: 0.001\nnum_generation: 4\n")
    with pytest.raises(SystemExit) as info:
        cli_main([*DRY_RUN, "--config", str(recipe)])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == f"tinyrs-grpo train: error: {recipe}: unknown key 'num_generation' (did you mean num_generations?)"


# ---------------------------------------------------------------------------------------------------------------
# custom rewards from the console script: the current folder, or --reward_module FILE
# ---------------------------------------------------------------------------------------------------------------
def test_console_entry_finds_a_reward_in_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forget_modules: list, capsys: pytest.CaptureFixture
) -> None:
    forget_modules.append("cwd_rewards")
    (tmp_path / "elsewhere").mkdir()
    shutil.copy(EXAMPLE, tmp_path / "cwd_rewards.py")
    argv = [*DRY_RUN, "--reward_funcs", "format", "cwd_rewards.concise_answer_reward"]

    monkeypatch.chdir(tmp_path / "elsewhere")  # negative control: not in this folder, not on the import path
    no_cwd_on_path(monkeypatch)
    with pytest.raises(SystemExit) as info:
        cli_main(argv)
    assert info.value.code == 2
    assert "cannot import reward function 'cwd_rewards.concise_answer_reward'" in capsys.readouterr().err

    monkeypatch.chdir(tmp_path)
    no_cwd_on_path(monkeypatch)
    assert cli_main(argv) == 0
    assert str(tmp_path) not in sys.path  # found without changing the import path
    assert sys.modules["cwd_rewards"].__file__ == str(tmp_path / "cwd_rewards.py")


def test_reward_module_loads_a_file_by_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, forget_modules: list, caplog: pytest.LogCaptureFixture
) -> None:
    forget_modules.append("custom_rewards")
    monkeypatch.chdir(tmp_path)
    no_cwd_on_path(monkeypatch)
    names = ["custom_rewards.concise_answer_reward", "custom_rewards.colour_word_reward"]
    assert cli_main([*DRY_RUN, "--reward_module", str(EXAMPLE), "--reward_funcs", "accuracy", *names]) == 0
    assert "custom_rewards.colour_word_reward" in caplog.text  # the dry run's settings line

    concise, colour = get_reward_funcs(names, reward_files=[str(EXAMPLE)])
    completions = [
        [{"role": "assistant", "content": "<reasoning>r</reasoning><answer>red</answer>"}],  # 1 word, a colour
        "<answer>" + " ".join(["word"] * 16) + "</answer>",  # 16 words: half way from 8 to 24
        "<answer></answer>",  # empty answer
    ]
    problems = ["What colour is the roof?", "What colour is the car?", "Is there a ship?"]
    assert concise(completions) == [1.0, 0.5, 0.0]
    assert colour(completions, problem=problems) == [1.0, 0.0, None]  # None: not a colour question


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such .py file"),  # the file is not there
        ("def broken(:\n", "SyntaxError"),  # the file does not run
        ("x = 1\n", "has no attribute 'my_reward'"),  # no such function
    ],
)
def test_reward_module_errors_are_one_line(
    content: str | None, message: str, tmp_path: Path, forget_modules: list, capsys: pytest.CaptureFixture
) -> None:
    forget_modules.append("my_bad_rewards")
    path = tmp_path / "my_bad_rewards.py"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SystemExit) as info:
        cli_main([*DRY_RUN, "--reward_module", str(path), "--reward_funcs", "my_bad_rewards.my_reward"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert "my_bad_rewards" not in sys.modules or content == "x = 1\n"  # a failed file is not left half-loaded


@pytest.mark.slow
def test_installed_console_script_resolves_rewards(tmp_path: Path) -> None:
    """The real ``tinyrs-grpo`` script (its first import path entry is .venv/bin): current folder and by path."""
    script = Path(sys.executable).parent / "tinyrs-grpo"
    shutil.copy(EXAMPLE, tmp_path / "cwd_rewards.py")
    env = dict(os.environ, PYTHONPATH="")
    from_cwd = ["--reward_funcs", "format", "cwd_rewards.concise_answer_reward"]
    by_path = ["--reward_module", str(EXAMPLE), "--reward_funcs", "custom_rewards.colour_word_reward"]
    for extra in (from_cwd, by_path):
        result = subprocess.run(
            [str(script), *DRY_RUN, *extra], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert "dry run: arguments are valid" in result.stderr
