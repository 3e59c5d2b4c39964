"""scripts/probe_tasks.py: fresh questions, a tally with teeth, and a run on the tiny checkpoint."""

from __future__ import annotations

import probe_tasks as probe
import pytest


@pytest.mark.parametrize("task", sorted(probe.TASKS))
def test_questions_are_repeatable_and_seeded(task):
    qas = probe.held_out_questions(task, 12, seed=0)
    again = probe.held_out_questions(task, 12, seed=0)
    other = probe.held_out_questions(task, 12, seed=1)
    assert [(q.prompt_text, q.answer, q.scenes) for q in qas] == [(q.prompt_text, q.answer, q.scenes) for q in again]
    assert len({q.answer for q in qas}) > 1  # builders alternate or vary their answers
    if task != "text":  # text-only questions have no scene and one prompt per object kind
        assert [q.scenes for q in qas] != [q.scenes for q in other]


def test_tally_rewards_only_the_right_answers():
    qas = probe.held_out_questions("count", 40, seed=0)
    right, pairs = probe.tally(lambda qa: f" {qa.answer}\n", qas)
    assert right == 40 and sum(pairs.values()) == 40
    # Negative control: one constant count is right only on its own share of the questions.
    right, pairs = probe.tally(lambda qa: "2", qas)
    assert right == sum(qa.answer == "2" for qa in qas) < 20
    assert set(pairs) == {(qa.answer, "2") for qa in qas}


def test_cli_runs_on_the_tiny_checkpoint(tiny_model_dir, capsys):
    assert probe.main([str(tiny_model_dir), "--task", "comp", "--questions", "2"]) == 0
    out = capsys.readouterr().out
    assert "comp " in out and "/2 right" in out and "expected -> answered" in out
    with pytest.raises(SystemExit):
        probe.main([str(tiny_model_dir), "--task", "comp", "--questions", "0"])
