"""scripts/probe_grpo_headroom.py: question families, a tally with teeth, and a run on the tiny checkpoint."""

from __future__ import annotations

import probe_grpo_headroom as probe
import pytest


ANSWER = "<reasoning>r</reasoning><answer>{}</answer>"


def test_question_family_keeps_the_tag_and_first_words():
    assert probe.question_family("{VQA} Is there a ship in the image? Answer yes or no.") == "{VQA} Is there a"
    assert probe.question_family("{VG} the ship") == "{VG} the ship"
    assert probe.question_family("What colour is the object?\nA. red\nB. white") == "What colour is"
    assert probe.question_family("  {CLS} Classify the image into") == "{CLS} Classify the image"


def _rows() -> list[dict]:
    return [
        {"problem": "{VQA} Is there a ship?", "solution": ["1", "yes"]},
        {"problem": "{VQA} Is there a plane?", "solution": ["1", "no"]},
        {"problem": "{VG} the ship", "solution": ["2", "[[0, 0, 500, 500]]"]},
    ]


def test_tally_scores_greedy_and_samples_per_family():
    def complete(row):
        truth = row["solution"][1]
        return ANSWER.format(truth), [ANSWER.format(truth), ANSWER.format("maybe"), ANSWER.format("maybe")]

    result = probe.summary(probe.tally(_rows(), complete))
    presence = result["families"]["{VQA} Is there a"]
    assert presence == {"prompts": 2, "greedy": 1.0, "sampled": pytest.approx(1 / 3), "groups_with_variance": 2}
    box = result["families"]["{VG} the ship"]
    assert box["greedy"] == 1.0 and box["sampled"] == pytest.approx(1 / 3)
    assert result["overall"]["prompts"] == 3 and result["overall"]["greedy"] == 1.0


def test_tally_negative_control_wrong_greedy_and_uniform_groups():
    # Greedy always wrong, samples all identical: no greedy headroom and no group carries a signal.
    def complete(row):
        return ANSWER.format("wrong"), [ANSWER.format("wrong")] * 4

    result = probe.summary(probe.tally(_rows(), complete))
    assert result["overall"] == {"prompts": 3, "greedy": 0.0, "sampled": 0.0, "groups_with_variance": 0}


def test_cli_runs_on_the_tiny_checkpoint(tiny_model_dir, demo_data_dir, tmp_path, capsys):
    out = tmp_path / "headroom.json"
    argv = [str(tiny_model_dir), "--dataset", str(demo_data_dir / "grpo"), "--limit", "3", "--generations", "2"]
    assert probe.main([*argv, "--max_new_tokens", "4", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "overall" in printed and "greedy" in printed
    assert out.read_text(encoding="utf-8").count('"prompts"') >= 2
    with pytest.raises(SystemExit):
        probe.main([*argv[:3], "--generations", "1"])
