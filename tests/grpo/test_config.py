"""Recipes and flags: every grpo/configs YAML parses, the seed README command parses, no key flag exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tinyrs_grpo.train import make_parser


REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "grpo" / "configs").glob("*.yaml"))

# The seed README's GRPO command, flag for flag (bf16 needs --use_cpu on a machine without a GPU).
SEED_FLAGS = (
    "--deepspeed grpo/configs/deepspeed/zero3.json --output_dir checkpoints/run --model_name_or_path "
    "aybora/Qwen2-VL-TinyRS-CoT --dataset_name aybora/VHM_dataset_grpo --max_prompt_length 8192 "
    "--max_completion_length 8192 --per_device_train_batch_size 4 --gradient_accumulation_steps 1 --logging_steps 1 "
    "--bf16 true --beta 0.001 --report_to wandb --gradient_checkpointing true --attn_implementation flash_attention_2 "
    "--max_pixels 2359296 --save_total_limit 6 --num_train_epochs 64 --num_generations 4 --save_steps 100 "
    "--run_name Qwen-VL-2B-GRPO --use_cpu true"
).split()


def parse(args: list[str]):
    return make_parser().parse_args_and_config(args=args)


@pytest.mark.parametrize("config", CONFIGS, ids=[c.name for c in CONFIGS])
def test_every_recipe_parses(config: Path, tmp_path: Path) -> None:
    script_args, training_args, model_args = parse(
        ["--config", str(config), "--output_dir", str(tmp_path), "--use_cpu", "true"]
    )
    assert script_args.reward_funcs == ["accuracy", "format"]
    assert training_args.loss_type == "grpo" and training_args.beta == 0.001
    assert training_args.scale_rewards == "group" and training_args.num_iterations == 1
    header = config.read_text().splitlines()[:12]
    assert any("Hardware" in line for line in header) and any(
        "tinyrs_grpo.train" in line or "tinyrs-grpo" in line for line in header
    )


def test_paper_recipe_values(tmp_path: Path) -> None:
    script_args, training_args, model_args = parse(
        ["--config", str(REPO / "grpo/configs/tinyrs_r1.yaml"), "--output_dir", str(tmp_path), "--use_cpu", "true"]
    )
    assert training_args.num_generations == 4
    assert training_args.reward_weights == [1.0, 1.0]
    assert training_args.per_device_train_batch_size == 4  # one prompt x 4 completions per device
    assert script_args.max_pixels is None and script_args.min_pixels is None  # the checkpoint's own bounds
    assert script_args.max_prompt_length == 8192
    assert training_args.max_completion_length == 8192 and training_args.top_k == 50
    assert model_args.dtype == "bfloat16" and training_args.bf16


def test_flags_override_the_recipe(tmp_path: Path) -> None:
    script_args, training_args, _ = parse(
        ["--config", str(REPO / "grpo/configs/cpu_demo.yaml"), "--output_dir", str(tmp_path), "--beta", "0.04",
         "--reward_funcs", "iou", "exact", "--loss_type", "dapo"]
    )  # fmt: skip
    assert training_args.beta == 0.04 and training_args.loss_type == "dapo"
    assert script_args.reward_funcs == ["iou", "exact"]


def test_seed_readme_command_parses() -> None:
    script_args, training_args, model_args = parse(SEED_FLAGS)
    assert script_args.max_pixels == 2359296 and script_args.max_prompt_length == 8192
    assert script_args.dataset_name == "aybora/VHM_dataset_grpo"
    assert training_args.beta == 0.001 and training_args.num_generations == 4
    assert training_args.max_completion_length == 8192 and training_args.save_total_limit == 6
    assert model_args.attn_implementation == "flash_attention_2"
    assert training_args.deepspeed.endswith("zero3.json")


def test_unknown_yaml_key_fails(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("reward_funcs: [accuracy]\nnot_a_field: 1\n")
    with pytest.raises(ValueError, match="not_a_field"):
        parse(["--config", str(config), "--output_dir", str(tmp_path), "--use_cpu", "true"])


@pytest.mark.parametrize("flag", ["--openai_api_key", "--judge_api_key", "--api_key"])
def test_there_is_no_key_flag(flag: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not used"):
        parse(["--output_dir", str(tmp_path), "--use_cpu", "true", flag, "sk-x"])


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--judge", "gpt"], "--judge"),
        (["--judge_on_error", "ignore"], "--judge_on_error"),
        (["--min_pixels", "5000", "--max_pixels", "4000"], "min_pixels"),
    ],
)
def test_bad_script_args(args: list[str], match: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=match):
        parse(["--output_dir", str(tmp_path), "--use_cpu", "true", *args])


def test_judge_auto_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    script_args, _, _ = parse(["--output_dir", str(tmp_path), "--use_cpu", "true"])
    assert script_args.judge == "auto" and script_args.resolved_judge() == "none"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    assert script_args.resolved_judge() == "openai"
    script_args, _, _ = parse(["--output_dir", str(tmp_path), "--use_cpu", "true", "--judge", "none"])
    assert script_args.resolved_judge() == "none"


@pytest.mark.parametrize("name", ["zero2.json", "zero3.json"])
def test_deepspeed_configs(name: str) -> None:
    config = json.loads((REPO / "grpo/configs/deepspeed" / name).read_text())
    assert config["zero_optimization"]["stage"] == int(name[4])
    # No optimizer/scheduler blocks: they would replace the Trainer's AdamW and schedule (the original's S2 trap).
    assert "optimizer" not in config and "scheduler" not in config


def test_recipe_with_a_key_is_refused(tmp_path: Path, capsys) -> None:
    from tinyrs_grpo.train import cli

    config = tmp_path / "leaky.yaml"
    config.write_text("env:\n  OPENAI_API_KEY: sk-in-a-file\nreward_funcs: [accuracy]\n")
    with pytest.raises(SystemExit) as info:  # one line on stderr, no traceback
        cli(["--config", str(config), "--output_dir", str(tmp_path)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "remove OPENAI_API_KEY" in err and "sk-in-a-file" not in err


def test_g13_per_device_batch_counts_completions() -> None:
    """per_device_train_batch_size counts completions: it must hold whole groups of num_generations (one device)."""
    parse = make_parser().parse_args_and_config
    base = ["--output_dir", "/tmp/unused", "--use_cpu", "true", "--num_generations", "4"]
    for ok in ("4", "8"):
        _, training_args, _ = parse(args=[*base, "--per_device_train_batch_size", ok])
        assert training_args.generation_batch_size == int(ok)
    for bad in ("1", "6"):  # the original's "1" (one prompt per GPU) is 4 here
        with pytest.raises(ValueError, match="num_generations"):
            parse(args=[*base, "--per_device_train_batch_size", bad])


def test_paper_recipe_states_the_kl_gradient(tmp_path: Path) -> None:
    """TRL 1.16 defaults use_bias_correction_kl=True (KL times the differentiable importance ratio, a different
    gradient even on-policy); the recipe states the original's plain k3 KL gradient explicitly."""
    recipe = REPO / "grpo/configs/tinyrs_r1.yaml"
    assert re.search(r"^use_bias_correction_kl: false\b", recipe.read_text(), re.MULTILINE)
    _, training_args, _ = parse(["--config", str(recipe), "--output_dir", str(tmp_path), "--use_cpu", "true"])
    assert training_args.use_bias_correction_kl is False and training_args.beta == 0.001
    _, defaults, _ = parse(["--output_dir", str(tmp_path), "--use_cpu", "true"])
    assert defaults.use_bias_correction_kl is True  # so the recipe's line is not a no-op


def test_judge_prompt_flag(tmp_path: Path) -> None:
    script_args, _, _ = parse(["--output_dir", str(tmp_path), "--use_cpu", "true"])
    assert script_args.judge_prompt == "original"
    script_args, _, _ = parse(["--output_dir", str(tmp_path), "--use_cpu", "true", "--judge_prompt", "remote_sensing"])
    assert script_args.judge_prompt == "remote_sensing"
    with pytest.raises(ValueError, match="--judge_prompt"):
        parse(["--output_dir", str(tmp_path), "--use_cpu", "true", "--judge_prompt", "mine"])
