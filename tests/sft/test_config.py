"""Argument parsing: recipes, overrides, unknown keys, the seed README flags, no-effect warnings, DeepSpeed checks."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from tinyrs_sft.config import NoEffectWarning, parse_args, parse_name_list
from tinyrs_sft.optim import check_deepspeed_config


SFT_DIR = Path(__file__).resolve().parents[2] / "sft"
RECIPES = sorted((SFT_DIR / "configs").glob("*.yaml"))
DS_CONFIGS = sorted((SFT_DIR / "configs" / "deepspeed").glob("*.json"))

# Every flag of the seed README's SFT command, with its value (shell arithmetic evaluated; tf32 needs a GPU).
SEED_README_FLAGS = {
    "--model_id": "Qwen/Qwen2-VL-2B-Instruct",
    "--data_path": "list_pretrain_corrected.json",
    "--image_folder": "VHM_VersaD",
    "--remove_unused_columns": "False",
    "--freeze_vision_tower": "False",
    "--freeze_llm": "False",
    "--tune_merger": "True",
    "--bf16": "True",
    "--fp16": "False",
    "--disable_flash_attn2": "False",
    "--output_dir": "output/qwen_vhm_pretrain_2b",
    "--num_train_epochs": "1",
    "--per_device_train_batch_size": "16",
    "--gradient_accumulation_steps": "2",
    "--image_min_pixels": str(512 * 28 * 28),
    "--image_max_pixels": str(1280 * 28 * 28),
    "--learning_rate": "1e-5",
    "--merger_lr": "1e-5",
    "--vision_lr": "2e-6",
    "--weight_decay": "0.1",
    "--warmup_ratio": "0.03",
    "--lr_scheduler_type": "cosine",
    "--logging_steps": "1",
    "--tf32": "False",
    "--gradient_checkpointing": "True",
    "--report_to": "tensorboard",
    "--lazy_preprocess": "True",
    "--save_strategy": "steps",
    "--save_steps": "200",
    "--save_total_limit": "5",
    "--dataloader_num_workers": "4",
}
LORA_FLAGS = {
    "--lora_enable": "True",
    "--vision_lora": "True",
    "--freeze_vision_tower": "True",
    "--freeze_llm": "True",
    "--lora_rank": "8",
    "--lora_alpha": "16",
    "--lora_dropout": "0.1",
    "--lora_namespan_exclude": "['lm_head', 'embed_tokens']",
    "--num_lora_modules": "4",
    "--bits": "16",
}


def _argv(flags: dict[str, str]) -> list[str]:
    return [x for kv in flags.items() for x in kv]


def test_seed_readme_flags_all_parse_with_their_meaning(tmp_path: Path):
    flags = dict(SEED_README_FLAGS, **{"--deepspeed": str(SFT_DIR / "configs/deepspeed/zero3.json")})
    flags["--output_dir"] = str(tmp_path / "out")
    flags["--use_cpu"] = "True"  # bf16 needs it without a GPU
    with pytest.warns(NoEffectWarning, match="lazy_preprocess"):
        model_args, data_args, training_args = parse_args(_argv(flags))
    assert (model_args.freeze_vision_tower, model_args.freeze_llm, model_args.tune_merger) == (False, False, True)
    assert (data_args.image_min_pixels, data_args.image_max_pixels) == (401408, 1003520)
    assert (training_args.vision_lr, training_args.merger_lr, training_args.learning_rate) == (2e-6, 1e-5, 1e-5)
    assert training_args.lr_scheduler_type == "cosine" and training_args.warmup_steps == 0.03
    assert training_args.gradient_accumulation_steps == 2 and training_args.per_device_train_batch_size == 16
    assert training_args.report_to == ["tensorboard"]
    assert training_args.bf16 and not training_args.fp16
    assert training_args.save_total_limit == 5 and training_args.dataloader_num_workers == 4
    assert training_args.deepspeed["zero_optimization"]["stage"] == 3


def test_lora_flags_parse(tmp_path: Path):
    flags = dict(LORA_FLAGS, **{"--data_path": "d.json", "--output_dir": str(tmp_path)})
    model_args, _, _ = parse_args(_argv(flags))
    assert model_args.use_peft and model_args.vision_lora and model_args.lora_r == 8
    assert model_args.lora_exclude_list() == ["lm_head", "embed_tokens"]
    assert model_args.num_lora_modules == 4 and model_args.lora_dropout == 0.1


@pytest.mark.parametrize(
    "flags, message",
    [
        ({"--lora_enable": "True"}, "requires freeze_llm"),
        ({"--vision_lora": "True", "--freeze_vision_tower": "True"}, "requires use_peft"),
        ({"--lora_enable": "True", "--freeze_llm": "True", "--vision_lora": "True"}, "requires freeze_vision_tower"),
        ({"--bits": "4"}, "only works with use_peft"),
        ({"--image_min_pixels": "1000", "--image_max_pixels": "10"}, "larger than"),
    ],
)
def test_inconsistent_flags_fail(tmp_path: Path, flags: dict, message: str):
    with pytest.raises(ValueError, match=message):
        parse_args(_argv(dict(flags, **{"--data_path": "d.json", "--output_dir": str(tmp_path)})))


def test_yaml_defaults_and_cli_override(tmp_path: Path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("data_path: a.json\nlearning_rate: 0.5\nvision_lr: 0.25\nfreeze_llm: true\nreport_to: [none]\n")
    _, data_args, training_args = parse_args(["--config", str(recipe), "--output_dir", str(tmp_path)])
    assert training_args.config == str(recipe)  # named in the model card
    assert (
        data_args.dataset_name == "a.json" and training_args.learning_rate == 0.5 and training_args.vision_lr == 0.25
    )
    model_args, _, training_args = parse_args(
        ["--config", str(recipe), "--learning_rate", "0.125", "--freeze_llm", "False", "--output_dir", str(tmp_path)]
    )
    assert training_args.learning_rate == 0.125 and training_args.vision_lr == 0.25
    assert model_args.freeze_llm is False


def test_unknown_yaml_key_fails(tmp_path: Path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("data_path: a.json\nlearning_rte: 0.5\n")
    with pytest.raises(
        ValueError, match=r"unknown keys \['learning_rte'\]: learning_rte \(did you mean learning_rate\?\)"
    ):
        parse_args(["--config", str(recipe)])


def test_unknown_cli_flag_fails(tmp_path: Path):
    with pytest.raises(ValueError, match="unknown arguments: --no_such_flag"):
        parse_args(["--data_path", "a.json", "--output_dir", str(tmp_path), "--no_such_flag", "1"])


def test_missing_data_path_fails(tmp_path: Path):
    with pytest.raises(ValueError, match=r"--dataset_name \(or its alias --data_path\) is required"):
        parse_args(["--output_dir", str(tmp_path)])


def test_lora_weight_path_warns(tmp_path: Path):
    with pytest.warns(NoEffectWarning, match="lora_weight_path"):
        parse_args(["--data_path", "a.json", "--output_dir", str(tmp_path), "--lora_weight_path", "x.bin"])


def test_default_flags_do_not_warn_about_no_effect(tmp_path: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoEffectWarning)
        parse_args(["--data_path", "a.json", "--output_dir", str(tmp_path), "--tune_merger", "True"])


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, ["lm_head", "embed_tokens"]),
        ("['a', 'b']", ["a", "b"]),
        ("a, b", ["a", "b"]),
        (["x"], ["x"]),
    ],
)
def test_parse_name_list(value, expected):
    assert parse_name_list(value, default=["lm_head", "embed_tokens"]) == expected


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_every_recipe_parses_and_states_hardware_and_command(recipe: Path, tmp_path: Path):
    text = recipe.read_text()
    assert text.startswith("#") and "Hardware" in text, recipe
    assert "tinyrs-sft train --config" in text or "tinyrs_sft.train --config" in text, recipe
    argv = [
        "--config",
        str(recipe),
        "--output_dir",
        str(tmp_path / recipe.stem),
        "--tf32",
        "False",
        "--use_cpu",
        "True",
    ]
    if "data_path:" not in text:
        argv += ["--data_path", "d.json"]
    parse_args(argv)


@pytest.mark.parametrize("stage", ["pretrain", "sft", "cot_sft"])
def test_paper_recipes_carry_the_seed_hyperparameters(stage: str, tmp_path: Path):
    recipe = SFT_DIR / "configs" / f"{stage}.yaml"
    assert "tinyrs-sft train --config" in recipe.read_text() and "4 x H100" in recipe.read_text()
    model_args, data_args, training_args = parse_args(
        ["--config", str(recipe), "--output_dir", str(tmp_path / stage), "--tf32", "False", "--use_cpu", "True"]
    )
    assert training_args.learning_rate == 1e-5 and training_args.vision_lr == 2e-6
    assert training_args.merger_lr == 1e-5 and training_args.weight_decay == 0.1
    assert training_args.lr_scheduler_type == "cosine" and training_args.warmup_ratio == 0.03
    assert training_args.per_device_train_batch_size * training_args.gradient_accumulation_steps * 4 == 128
    assert training_args.num_train_epochs == 1 and training_args.save_steps == 200
    assert (data_args.image_min_pixels, data_args.image_max_pixels) == (512 * 28 * 28, 1280 * 28 * 28)
    assert model_args.tune_merger and not model_args.freeze_llm and not model_args.freeze_vision_tower
    assert training_args.deepspeed["zero_optimization"]["stage"] == 3 and "optimizer" not in training_args.deepspeed


@pytest.mark.parametrize("path", DS_CONFIGS, ids=lambda p: p.name)
def test_shipped_deepspeed_configs(path: Path):
    config = json.loads(path.read_text())
    assert "optimizer" not in config and "scheduler" not in config
    assert config["train_micro_batch_size_per_gpu"] == "auto" and config["gradient_accumulation_steps"] == "auto"
    assert check_deepspeed_config(str(path)) == config
    if config["zero_optimization"]["stage"] == 3:
        assert config["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True


def test_deepspeed_names_are_the_four_expected():
    assert {p.stem for p in DS_CONFIGS} == {"zero2", "zero2_offload", "zero3", "zero3_offload"}


def test_deepspeed_optimizer_block_fails_unless_accepted(tmp_path: Path):
    ds = {"zero_optimization": {"stage": 2}, "optimizer": {"type": "AdamW", "params": {"lr": "auto"}}}
    path = tmp_path / "ds.json"
    path.write_text(json.dumps(ds))
    with pytest.raises(ValueError, match="optimizer block.*vision_lr"):
        check_deepspeed_config(str(path))
    with pytest.raises(ValueError, match="allow_deepspeed_optimizer"):
        parse_args(["--data_path", "a.json", "--output_dir", str(tmp_path), "--deepspeed", str(path)])
    assert check_deepspeed_config(str(path), allow_optimizer=True)["optimizer"]["type"] == "AdamW"


def test_zero3_config_gets_16bit_gather(tmp_path: Path):
    fixed = check_deepspeed_config({"zero_optimization": {"stage": 3, "gather_16bit_weights_on_model_save": False}})
    assert fixed["zero_optimization"] == {"stage": 3, "stage3_gather_16bit_weights_on_model_save": True}


# ---------------------------------------------------------------------------------------------------------------
# TRL's names, the seed names as aliases, refused abbreviations, silent defaults
# ---------------------------------------------------------------------------------------------------------------
CANONICAL = {
    "--model_name_or_path": "m",
    "--dataset_name": "d.json",
    "--use_peft": "True",
    "--lora_r": "8",
    "--lora_alpha": "32",
    "--freeze_llm": "True",
}
SEED_SPELLING = {"--model_id": "m", "--data_path": "d.json", "--lora_enable": "True", "--lora_rank": "8",
                 "--lora_alpha": "32", "--freeze_llm": "True"}  # fmt: skip


def test_trl_names_are_canonical_and_seed_names_are_aliases_logged_once(tmp_path: Path, caplog):
    out = ["--output_dir", str(tmp_path)]
    with caplog.at_level("WARNING", logger="tinyrs_sft"):
        canonical = parse_args([*_argv(CANONICAL), *out])
        assert caplog.records == []  # TRL's names: nothing to say
        seed = parse_args([*_argv(SEED_SPELLING), *out])
    assert seed[0] == canonical[0] and seed[1] == canonical[1]
    got = (seed[0].model_name_or_path, seed[1].dataset_name, seed[0].use_peft, seed[0].lora_r)
    assert got == ("m", "d.json", True, 8)
    assert [r.getMessage() for r in caplog.records] == [
        "--model_id is an alias of --model_name_or_path",
        "--data_path is an alias of --dataset_name",
        "--lora_enable is an alias of --use_peft",
        "--lora_rank is an alias of --lora_r",
    ]


def test_alias_forms_and_conflicts(tmp_path: Path):
    out = ["--output_dir", str(tmp_path)]
    model_args, data_args, _ = parse_args(["--model_id=m", "--data_path=d.json", *out])
    assert (model_args.model_name_or_path, data_args.dataset_name) == ("m", "d.json")
    with pytest.raises(ValueError, match="--model_id and --model_name_or_path are the same option"):
        parse_args(["--model_id", "a", "--model_name_or_path", "b", "--dataset_name", "d.json", *out])


def test_recipe_accepts_both_spellings(tmp_path: Path, caplog):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model_id: m\ndata_path: d.json\nlora_enable: true\nlora_rank: 4\nfreeze_llm: true\n")
    with caplog.at_level("WARNING", logger="tinyrs_sft"):
        model_args, data_args, _ = parse_args(["--config", str(recipe), "--output_dir", str(tmp_path)])
    assert (model_args.model_name_or_path, data_args.dataset_name, model_args.use_peft, model_args.lora_r) == (
        "m", "d.json", True, 4)  # fmt: skip
    assert f"{recipe}: model_id is an alias of model_name_or_path" in caplog.text
    recipe.write_text("model_id: m\nmodel_name_or_path: n\ndata_path: d.json\n")
    with pytest.raises(ValueError, match="model_id and model_name_or_path are the same setting"):
        parse_args(["--config", str(recipe), "--output_dir", str(tmp_path)])


def test_abbreviations_are_refused_with_a_suggestion(tmp_path: Path):
    # argparse would have read --learning_r as --learning_rate and --model as an error with no hint.
    with pytest.raises(ValueError, match=r"--learning_r \(did you mean --learning_rate\?\)"):
        parse_args(["--dataset_name", "d.json", "--output_dir", str(tmp_path), "--learning_r", "0.1"])
    with pytest.raises(ValueError, match=r"--model_name \(did you mean --model_name_or_path\?\)"):
        parse_args(["--dataset_name", "d.json", "--output_dir", str(tmp_path), "--model_name", "m"])


@pytest.mark.parametrize(
    ("flags", "tune_merger"),
    [
        ([], True),  # the vision tower trains, so does the merger (it used to stay frozen, with a warning)
        (["--freeze_vision_tower", "True"], False),  # frozen tower: frozen merger, as in the original
        (["--tune_merger", "False"], False),  # explicit values win, without a warning
        (["--freeze_vision_tower", "True", "--tune_merger"], True),
    ],
)
def test_default_run_is_silent_and_merger_follows_the_vision_tower(tmp_path: Path, flags, tune_merger, caplog):
    with warnings.catch_warnings(), caplog.at_level("WARNING"):
        warnings.simplefilter("error")
        model_args, _, _ = parse_args(["--dataset_name", "d.json", "--output_dir", str(tmp_path), *flags])
    assert model_args.tune_merger is tune_merger
    assert caplog.records == []


@pytest.mark.parametrize("recipe", [r for r in RECIPES if r.stem != "cpu_demo"], ids=lambda p: p.name)
def test_shipped_recipes_parse_without_any_warning(recipe: Path, tmp_path: Path, caplog):
    text = recipe.read_text()
    assert "model_name_or_path:" in text and "dataset_name:" in text and "model_id:" not in text
    assert "hf download aybora/" in text and "--local-dir ../" in text and "huggingface-cli" not in text
    with warnings.catch_warnings(), caplog.at_level("WARNING"):
        warnings.simplefilter("error")
        _, data_args, training_args = parse_args(
            ["--config", str(recipe), "--output_dir", str(tmp_path), "--tf32", "False", "--use_cpu", "True"]
        )
    assert caplog.records == []
    assert training_args.activation_checkpointing and training_args.gradient_checkpointing
    assert data_args.training_stage == {"pretrain": "pretraining", "sft": "sft", "cot_sft": "cot_sft"}[recipe.stem]


def test_training_stage_is_checked(tmp_path: Path):
    with pytest.raises(ValueError, match="training_stage must be one of"):
        parse_args(["--dataset_name", "d.json", "--output_dir", str(tmp_path), "--training_stage", "rl"])
