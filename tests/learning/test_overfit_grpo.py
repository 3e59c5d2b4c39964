"""Overfit test of the GRPO stage: a verifiable reward rises within a few dozen steps through
``tinyrs_grpo.train.main``, and does not when the advantage sign is flipped (the negative control)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from helpers import cell_box, draw_scene


STEPS = 24
QUARTER = STEPS // 4
MIN_RISE = 0.15  # last-quarter mean reward minus first-quarter mean; measured: +0.3 (normal), below 0 (control)

# The completion's token ids are what the policy controls directly; an untrained model hits the row's parity about
# half the time, so the reward has a non-zero base rate and variance inside every group from the first step.
REWARD_MODULE = '''
import random

_shuffle = random.Random(0)


def parity_reward(completions, completion_ids, parity, **kwargs):
    """Fraction of a completion's token ids with the row's parity (0 even, 1 odd)."""
    return [sum(t % 2 == p for t in ids) / max(len(ids), 1) for ids, p in zip(completion_ids, parity)]


def shuffled_parity_reward(completions, completion_ids, parity, **kwargs):
    """Negative control: the same rewards, handed to the wrong completions of the batch."""
    rewards = parity_reward(completions, completion_ids, parity)
    _shuffle.shuffle(rewards)
    return rewards
'''


def save_dataset(folder: Path, n_rows: int = 4) -> Path:
    """``n_rows`` GRPO rows, each a scene with the object in another cell, all asking for even token ids."""
    import datasets

    rows = []
    for i in range(n_rows):
        image = draw_scene(folder / "images" / f"{i}.png", [("building", cell_box(i % 4, i // 4))], 56)
        data = image.read_bytes()
        problem = "{VQA} Answer in even tokens."
        rows.append(
            {
                "image": {"bytes": data, "path": None},
                "problem": problem,
                "parity": 0,
                "solution": ["1", "yes", problem, base64.b64encode(data).decode("ascii")],
            }
        )
    features = datasets.Features(
        {
            "image": datasets.Image(),
            "problem": datasets.Value("string"),
            "parity": datasets.Value("int64"),
            "solution": datasets.List(datasets.Value("string")),
        }
    )
    path = folder / "grpo"
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows, features=features)}).save_to_disk(str(path))
    return path


@pytest.fixture
def reward_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "learning_grpo_rewards.py").write_text(REWARD_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "learning_grpo_rewards"


def grpo_rewards(model_dir: Path, data_dir: Path, output_dir: Path, reward: str) -> list[float]:
    """Train STEPS GRPO steps in-process and return the logged mean reward of every step."""
    from tinyrs_grpo.train import main, make_parser

    args = [
        "--model_name_or_path", str(model_dir),
        "--dataset_name", str(data_dir),
        "--output_dir", str(output_dir),
        "--use_cpu", "true",
        "--bf16", "false",
        "--gradient_checkpointing", "false",
        "--report_to", "none",
        "--per_device_train_batch_size", "16",
        "--num_generations", "8",
        "--max_completion_length", "8",
        "--learning_rate", "1e-2",
        "--lr_scheduler_type", "constant",
        "--loss_type", "grpo",
        "--beta", "0.0",
        "--min_pixels", "3136",
        "--max_pixels", "3136",
        "--logging_steps", "1",
        "--save_strategy", "no",
        "--reward_funcs", reward,
        "--judge", "none",
        "--seed", "0",
        "--disable_tqdm", "true",
        "--max_steps", str(STEPS),
    ]  # fmt: skip
    script_args, training_args, model_args = make_parser().parse_args_and_config(args=args)
    main(script_args, training_args, model_args)
    name = reward.rsplit(".", 1)[1]
    log = [json.loads(line) for line in (output_dir / "train_log.jsonl").read_text().splitlines()]
    rewards = [r[f"rewards/{name}/mean"] for r in log if f"rewards/{name}/mean" in r]
    assert len(rewards) == STEPS, log
    return rewards


def rise(rewards: list[float]) -> float:
    """Mean reward of the last quarter of the steps minus that of the first quarter."""
    return sum(rewards[-QUARTER:]) / QUARTER - sum(rewards[:QUARTER]) / QUARTER


def flip_advantages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Negative control: the advantages TRL computes are negated before the loss sees them."""
    from tinyrs_grpo.train import ResumableGRPOTrainer

    score = ResumableGRPOTrainer._generate_and_score_completions

    def flipped(self, inputs):
        batch = score(self, inputs)
        batch["advantages"] = -batch["advantages"]
        return batch

    monkeypatch.setattr(ResumableGRPOTrainer, "_generate_and_score_completions", flipped)


def test_grpo_reward_rises_and_not_with_flipped_advantages(tiny_model_dir, tmp_path, reward_module, monkeypatch):
    data = save_dataset(tmp_path)
    reward = f"{reward_module}.parity_reward"
    normal = grpo_rewards(tiny_model_dir, data, tmp_path / "normal", reward)
    flip_advantages(monkeypatch)
    control = grpo_rewards(tiny_model_dir, data, tmp_path / "flipped", reward)
    print(f"GRPO reward rise: {rise(normal):+.3f} normal, {rise(control):+.3f} flipped advantages")
    print("normal", [round(r, 2) for r in normal], "\nflipped", [round(r, 2) for r in control])
    assert rise(normal) >= MIN_RISE, normal
    assert rise(control) < MIN_RISE / 2, control  # the check has teeth: a wrong-sign advantage does not pass it


@pytest.mark.slow
def test_grpo_reward_does_not_rise_when_shuffled_across_completions(tiny_model_dir, tmp_path, reward_module):
    """Negative control: rewards handed to the wrong completions of the batch carry no signal."""
    data = save_dataset(tmp_path)
    control = grpo_rewards(tiny_model_dir, data, tmp_path / "shuffled", f"{reward_module}.shuffled_parity_reward")
    print(f"GRPO reward rise: {rise(control):+.3f} shuffled", [round(r, 2) for r in control])
    assert rise(control) < MIN_RISE, control
