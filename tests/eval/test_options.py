"""``tinyrs-eval run`` options: YAML recipes plus overrides, TRL's names with the seed names as aliases, refused
abbreviations and unknown flags, --version, booleans in every subcommand, exit statuses."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tinyrs_eval import __version__, cli, run
from tinyrs_eval.benchmarks import preflight
from tinyrs_eval.config import RunConfig, build_run_parser, parse_run_args


EVAL_CONFIGS = Path(__file__).resolve().parents[2] / "eval" / "configs"


def usage_error(argv: list[str], capsys) -> str:
    """Parse ``argv``; it must fail with exit status 2. Returns stderr."""
    with pytest.raises(SystemExit) as info:
        parse_run_args(argv)
    assert info.value.code == 2
    return capsys.readouterr().err


def test_recipe_gives_defaults_and_flags_override(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model_name_or_path: m\ntask: cls_AID\nmax_new_tokens: 64\ndo_sample: true\nlimit: null\n")
    cfg = parse_run_args(["--config", str(recipe)])
    assert (cfg.model_name_or_path, cfg.task, cfg.max_new_tokens, cfg.do_sample) == ("m", "cls_AID", 64, True)
    assert cfg.limit is None and cfg.batch_size == 8  # null and absent keys keep the defaults
    cfg = parse_run_args(["--max_new_tokens", "8", "--config", str(recipe), "--do_sample", "false"])
    assert (cfg.max_new_tokens, cfg.do_sample) == (8, False)  # the command line wins wherever it stands


def test_recipe_values_are_checked_like_flags(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model_name_or_path: m\nbatch_size: 0\n")
    assert "--batch_size: expected a positive integer" in usage_error(["--config", str(recipe)], capsys)
    recipe.write_text("model_name_or_path: m\nmax_new_token: 64\n")
    err = usage_error(["--config", str(recipe)], capsys)
    assert "unknown keys: max_new_token (did you mean max_new_tokens?)" in err and str(recipe) in err
    recipe.write_text("model_name_or_path: m\n  bad: [\n")
    assert "not valid YAML" in usage_error(["--config", str(recipe)], capsys)
    recipe.write_text("model_name_or_path: [m]\n")
    assert "must be a single value" in usage_error(["--config", str(recipe)], capsys)
    assert "No such file" in usage_error(["--config", str(tmp_path / "missing.yaml")], capsys)


def test_abbreviated_and_unknown_flags_are_refused_with_a_suggestion(capsys):
    # --max_new used to be taken as --max_new_tokens without a word.
    err = usage_error(["--model_name_or_path", "m", "--max_new", "64"], capsys)
    assert "unknown arguments: --max_new (did you mean --max_new_tokens?)" in err
    assert "did you mean --data_root?" in usage_error(["--model_name_or_path", "m", "--data_rot", "d"], capsys)
    assert "unknown arguments: --frobnicate" in usage_error(["--model_name_or_path", "m", "--frobnicate"], capsys)


def test_seed_names_are_aliases_logged_once(caplog, capsys):
    with caplog.at_level(logging.WARNING, logger="tinyrs_eval"):
        seed = parse_run_args(["--model_path", "m", "--dataset_name", "d", "--task", "cls_aid"])
    canonical = parse_run_args(["--model_name_or_path", "m", "--data_root", "d", "--task", "cls_aid"])
    assert seed == canonical
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "--model_path is an alias of --model_name_or_path",
        "--dataset_name is an alias of --data_root",
    ]
    err = usage_error(["--model_path", "a", "--model_name_or_path", "b"], capsys)
    assert "--model_path and --model_name_or_path are the same option" in err


def test_alias_keys_in_a_recipe(tmp_path, caplog, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model_path: m\n")
    with caplog.at_level(logging.WARNING, logger="tinyrs_eval"):
        assert parse_run_args(["--config", str(recipe)]).model_name_or_path == "m"
    assert f"{recipe}: model_path is an alias of model_name_or_path" in caplog.text
    recipe.write_text("model_path: m\nmodel_name_or_path: n\n")
    assert "model_path and model_name_or_path are the same setting" in usage_error(["--config", str(recipe)], capsys)


@pytest.mark.parametrize("recipe", ["tinyrs_instant.yaml", "tinyrs_reasoning.yaml"])
def test_shipped_recipes_mirror_eval_sh(recipe):
    text = (EVAL_CONFIGS / recipe).read_text()
    assert text.startswith("#") and "Hardware" in text and f"--config eval/configs/{recipe}" in text
    assert "hf download aybora/scorers_datasets_eval --repo-type dataset --local-dir ../scorers_datasets_eval" in text
    cfg = parse_run_args(["--config", str(EVAL_CONFIGS / recipe)])
    assert (cfg.task, cfg.prompt_style, cfg.data_root) == ("all", "tinyrs", "../scorers_datasets_eval")
    if recipe == "tinyrs_reasoning.yaml":  # read next to the recipe, whatever the working folder
        assert Path(cfg.reasoning_config) == EVAL_CONFIGS / "qwen2_thinking_template.json"
        assert cfg.model_name_or_path == "aybora/Qwen2-VL-TinyRS-R1"
    else:
        assert cfg.reasoning_config is None and cfg.model_name_or_path == "aybora/Qwen2-VL-TinyRS"
    script = (EVAL_CONFIGS.parents[1] / "scripts" / "eval.sh").read_text()
    assert f"eval/configs/{recipe}" in script


def test_help_groups_the_options_and_shows_config():
    text = build_run_parser().format_help()
    for group in ("model and prompts:", "data and outputs:", "generation:", "lmdeploy / vllm:", "run:"):
        assert group in text
    assert "--config YAML" in text and "--model_name_or_path MODEL_NAME_OR_PATH, --model_path" in text
    assert "(default: 1024)" in text and "exit status: 0 done, 1 bad data" in text


def test_run_parser_is_transformers_hf_argument_parser(tmp_path, capsys):
    """Parsed as in tinyrs-sft and tinyrs-grpo (issue 13): transformers' HfArgumentParser over RunConfig, --config
    in the help of the console script; with a recipe, its values are the defaults the help shows."""
    from transformers import HfArgumentParser

    parser = build_run_parser()
    assert isinstance(parser, HfArgumentParser) and parser.dataclass_types == [RunConfig]
    with pytest.raises(SystemExit) as info:
        cli.main(["run", "--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0 and "--config YAML" in out and "usage: tinyrs-eval run [-h] [--config YAML]" in out
    assert "--model-name-or-path" not in out and "--no_use_cache" not in out  # no flags beyond RunConfig's names
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model_name_or_path: m\nmax_new_tokens: 77\n")
    with pytest.raises(SystemExit) as info:
        parse_run_args(["--config", str(recipe), "--help"])
    assert info.value.code == 0 and "(default: 77)" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--version"], ["run", "--version"], ["infer", "--version"], ["chat", "--version"]])
def test_version(argv, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 0 and capsys.readouterr().out.strip() == f"tinyrs-eval {__version__}"


@pytest.mark.parametrize("word, value", [("True", True), ("false", False), ("1", True), ("no", False), ("YES", True)])
def test_booleans_are_read_alike_in_every_subcommand(word, value):
    from tinyrs_eval import chat, infer

    base = ["--model_name_or_path", "m"]
    assert parse_run_args([*base, "--force_inference", word]).force_inference is value
    infer_args = infer.build_parser().parse_args([*base, "--image", "i", "--question", "q", "--reasoning", word])
    assert infer_args.reasoning is value
    chat_args = chat.build_parser().parse_args(["--reasoning", word, "--share", word])
    assert chat_args.reasoning is value and chat_args.share is value
    assert infer.build_parser().parse_args([*base, "--image", "i", "--question", "q", "--reasoning"]).reasoning


def test_exit_status_two_for_usage_one_for_data(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["run", "--model_name_or_path", "m", "--max_new", "4"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        cli.main(["rnu"])
    assert info.value.code == 2 and "unknown command 'rnu' (did you mean run?)" in capsys.readouterr().err
    # a data folder that does not exist is found while running: 1, one line
    assert cli.main(["run", "--model_name_or_path", "m", "--data_root", str(tmp_path / "none")]) == 1
    assert capsys.readouterr().err.strip().startswith("error: --data_root is not a directory")


def test_hub_dataset_id_as_data_root_names_the_download(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    problems: list[str] = []
    preflight("aybora/scorers_datasets_eval", [], problems=problems)
    assert problems == [
        "--data_root is not a directory: aybora/scorers_datasets_eval (a hub dataset? download it first: hf download "
        "aybora/scorers_datasets_eval --repo-type dataset --local-dir DIR)"
    ]
    problems.clear()
    preflight("./data", [], problems=problems)
    assert problems == ["--data_root is not a directory: data"]


def test_run_module_keeps_the_seed_command_working(tmp_path):
    """The seed README's evaluation flags, as the original wrote them (aliases included)."""
    argv = (
        f"--data_root {tmp_path} --output_dir o --model_type lmdeploy --model_path aybora/Qwen2-VL-TinyRS-R1 "
        "--force_inference true --task all --reasoning_config r.json"
    ).split()
    cfg = run.parse_run_args(argv)
    assert cfg.model_name_or_path == "aybora/Qwen2-VL-TinyRS-R1" and cfg.force_inference and cfg.task == "all"
