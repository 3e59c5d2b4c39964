"""The demo driver reuses a finished stage only when nothing it depends on changed (no stale result, ever)."""

from __future__ import annotations

import sys

import run_demo
import yaml


def _cmd(recipe) -> list[str]:
    return [sys.executable, "-c", "pass", str(recipe)]


def test_a_stage_is_reused_only_while_its_command_and_files_are_the_same(tmp_path, capsys):
    out = tmp_path / "out"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("learning_rate: 1.0e-3\n")

    first = run_demo.StageRunner(out, fresh=False)
    assert first("a", _cmd(recipe)) > 0 or (out / "a" / "DONE").is_file()
    first("b", _cmd(tmp_path / "other.yaml"))

    again = run_demo.StageRunner(out, fresh=False)
    assert again("a", _cmd(recipe)) == 0.0
    assert again("b", _cmd(tmp_path / "other.yaml")) == 0.0
    assert capsys.readouterr().out.count("done before, reused") == 2

    recipe.write_text("learning_rate: 3.0e-4\n")  # the recipe changed: its stage and every later one are redone
    changed = run_demo.StageRunner(out, fresh=False)
    changed("a", _cmd(recipe))
    changed("b", _cmd(tmp_path / "other.yaml"))
    text = capsys.readouterr().out
    assert "a: made by another command, recipe or code version: redone" in text
    assert "done before" not in text

    extra_flag = run_demo.StageRunner(out, fresh=False)
    assert extra_flag("a", [*_cmd(recipe), "--seed", "1"]) >= 0.0
    assert "redone" in capsys.readouterr().out


def test_a_launcher_port_does_not_count_and_fresh_redoes_everything(tmp_path, capsys):
    out = tmp_path / "out"
    run_demo.StageRunner(out, fresh=False)("a", [sys.executable, "-c", "pass", "--master_port", "1234"])
    run_demo.StageRunner(out, fresh=False)("a", [sys.executable, "-c", "pass", "--master_port", "4321"])
    assert "done before, reused" in capsys.readouterr().out
    run_demo.StageRunner(out, fresh=True)("a", [sys.executable, "-c", "pass", "--master_port", "4321"])
    assert "done before" not in capsys.readouterr().out


def test_a_file_named_inside_a_recipe_counts_like_the_recipe(tmp_path):
    """The SFT recipe names its DeepSpeed config by a relative path; an edit to that config must redo the stage,
    not reuse its checkpoint."""
    ds_config = tmp_path / "deepspeed" / "zero.json"
    ds_config.parent.mkdir()
    ds_config.write_text('{"zero_optimization": {"stage": 3}}')
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("deepspeed: deepspeed/zero.json\nlearning_rate: 1.0e-3\noutput_dir: not/a/file\n")
    assert run_demo.files_named_in(recipe) == [ds_config]

    before = run_demo.stage_key(_cmd(recipe))
    assert run_demo.stage_key(_cmd(recipe)) == before
    ds_config.write_text('{"zero_optimization": {"stage": 2}}')
    assert run_demo.stage_key(_cmd(recipe)) != before


def test_the_demo_recipe_names_its_deepspeed_config():
    recipe = run_demo.REPO / "sft" / "configs" / "cpu_demo.yaml"
    named = run_demo.files_named_in(recipe)
    assert [path.name for path in named] == ["zero3.json"]
    assert yaml.safe_load(recipe.read_text(encoding="utf-8"))["deepspeed"] == "deepspeed/zero3.json"
