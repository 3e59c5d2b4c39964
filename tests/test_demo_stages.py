"""The demo driver reuses a finished stage only when nothing it depends on changed (no stale result, ever)."""

from __future__ import annotations

import sys
from pathlib import Path

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


def test_every_training_stage_names_its_deepspeed_config_so_the_key_hashes_it(tmp_path):
    """A DeepSpeed config named only inside a recipe would not reach the stage key, and an edit to it would reuse
    stale checkpoints; the demo names it on the command line, and it must be the one the recipe names."""
    recipe = run_demo.REPO / "sft" / "configs" / "cpu_demo.yaml"
    named_in_recipe = (recipe.parent / yaml.safe_load(recipe.read_text(encoding="utf-8"))["deepspeed"]).resolve()
    budget = run_demo.FULL
    commands = [
        run_demo.sft_command(tmp_path, "sft", tmp_path / "model", tmp_path / "data.json", 1.0, budget),
        run_demo.grpo_command(tmp_path, tmp_path / "model", budget),
    ]
    for cmd in commands:
        config = Path(cmd[cmd.index("--deepspeed") + 1])
        assert config.is_file(), config
    sft_config = Path(commands[0][commands[0].index("--deepspeed") + 1]).resolve()
    assert sft_config == named_in_recipe
