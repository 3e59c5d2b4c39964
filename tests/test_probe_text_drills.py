"""scripts/probe_text_drills.py: drills mean what they say, held-out prompts are new, and the score has teeth."""

from __future__ import annotations

import json
import random
import re

import probe_text_drills as drills
import pytest


@pytest.mark.parametrize("task", drills.TASKS)
def test_answers_follow_from_the_prompt(task):
    rng = random.Random(0)
    for _ in range(300):
        prompt, answer = drills.drill(task, rng)
        if task == "copy":
            assert prompt == f"Repeat this word: {answer}" and answer in drills.WORDS
        elif task == "membership":
            listed, word = re.fullmatch(r"List: (.*)\. Is (.*) in the list\?", prompt).groups()
            assert answer == ("yes" if word in listed.split(", ") else "no")
        elif task == "membership_first":
            word, listed = re.fullmatch(r"Is (.*) in this list: (.*)\?", prompt).groups()
            assert answer == ("yes" if word in listed.split(", ") else "no")
        elif task == "membership_dense":
            listed, asked = re.fullmatch(r"List: (.*)\. Which are in the list: (.*)\?", prompt).groups()
            expected = ["yes" if w in listed.split(", ") else "no" for w in asked.split(", ")]
            assert answer.split(", ") == expected and len(expected) == 4
        elif task == "lookup_dense":
            options = dict(re.findall(r"^([A-D])\. (.*)$", prompt, flags=re.M))
            asked = re.search(r"\nLetters of: (.*)$", prompt).group(1).split(", ")
            letters = answer.split(", ")
            assert [options[letter] for letter in letters] == asked and sorted(letters) == list("ABCD")
        else:
            word = re.match(r"Which option is (.*)\?\n", prompt).group(1)
            options = dict(re.findall(r"^([A-D])\. (.*)$", prompt, flags=re.M))
            assert options[answer] == word and list(options) == list("ABCD")[: len(options)]
            assert any(set(options.values()) <= set(pool) for pool in drills.OPTION_POOLS)


def test_written_drills_are_balanced_and_held_out(tmp_path):
    train, held = drills.write_drills("membership", 600, tmp_path / "m")
    listing = json.loads(train.read_text())
    heldout = json.loads(held.read_text())
    assert len(listing) == 600 and len(heldout) == drills.HELDOUT
    assert all("image" not in r and r["conversations"][0]["from"] == "human" for r in listing)
    yes = sum(r["conversations"][1]["value"] == "yes" for r in listing)
    assert 0.4 * 600 <= yes <= 0.6 * 600
    prompts = {r["conversations"][0]["value"] for r in listing}
    assert not prompts & {p for p, _ in heldout}
    # Same seed, same files; another seed, other drills.
    again, _ = drills.write_drills("membership", 600, tmp_path / "m2")
    other, _ = drills.write_drills("membership", 600, tmp_path / "m3", seed=1)
    assert again.read_text() == train.read_text() != other.read_text()


def test_score_rewards_the_right_answers_only(tmp_path):
    _, held = drills.write_drills("membership", 50, tmp_path / "m")
    heldout = json.loads(held.read_text())
    truth = dict(map(tuple, heldout))
    assert drills.score(lambda p: f" {truth[p]}\n", heldout) == 1.0
    # Negative control: one constant answer scores what the answer balance allows, nowhere near the oracle.
    assert 0.3 <= drills.score(lambda p: "yes", heldout) <= 0.7
    with pytest.raises(ValueError, match="empty"):
        drills.score(lambda p: "yes", [])


def test_item_score_counts_items_in_order():
    heldout = [["p1", "yes, no, no, yes"], ["p2", "A, B"]]
    assert drills.item_score(lambda p: {"p1": "yes, no, no, yes", "p2": "A, B"}[p], heldout) == 1.0
    # Right items in the wrong order, or a truncated answer, count only where they line up.
    assert drills.item_score(lambda p: {"p1": "no, yes, yes, no", "p2": "A"}[p], heldout) == 1 / 6
    with pytest.raises(ValueError, match="empty"):
        drills.item_score(lambda p: "", [])


def test_greedy_answerer_runs_on_the_tiny_checkpoint(tiny_model_dir):
    answer = drills.greedy_answerer(str(tiny_model_dir), max_new_tokens=3)
    first, second = answer("Repeat this word: forest"), answer("Repeat this word: forest")
    assert isinstance(first, str) and first == second  # greedy: deterministic
