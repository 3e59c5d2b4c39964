"""Batching in a real GRPO run (grpo/README.md, differences G7, G11) and a corrupt image skipped mid-run.

One run of two steps: 4 rows, per_device_train_batch_size 4 with num_generations 2 (two prompts per device per
step), a reward that depends on its row, and row 1's image broken in its pixel data (it passes the pre-training
check, fails when training decodes it, and is skipped).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path

import pytest

from helpers import damaged_png, noisy_png, write_json_dataset
from tinyrs_grpo.train import main, make_parser  # noqa: I001


ROW_REWARD = '''
import re

SEEN = []


def row_reward(prompts, completions, problem, solution, **kwargs):
    """K / 10 for the row asking "question K": each completion is scored against its own row only."""
    assert len(prompts) == len(completions) == len(problem) == len(solution)
    rewards = []
    for prompt, sol, prob in zip(prompts, solution, problem):
        text = " ".join(p["text"] or "" for m in prompt for p in m["content"] if p["type"] == "text")
        k = int(re.search(r"question (\\d+)", text).group(1))
        assert prob == "{VQA} question %d?" % k and sol[2] == "question %d" % k, (text, prob, sol)
        rewards.append(k / 10)
    SEEN.append([int(re.search(r"question (\\d+)", p).group(1)) for p in problem])
    return rewards
'''


@pytest.fixture(scope="module")
def batched_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("batching")
    (folder / "grpo_row_rewards.py").write_text(ROW_REWARD)
    images = {f"{i}.png": noisy_png(i) for i in (0, 2, 3)}
    images["1.png"] = damaged_png(1)
    data = write_json_dataset(folder / "data", images, [f"{i}.png" for i in range(4)])
    output_dir = folder / "out"
    args = ["--model_name_or_path", str(tiny_model_dir), "--dataset_name", str(data), "--output_dir",
            str(output_dir), "--use_cpu", "true", "--report_to", "none", "--judge", "none",
            "--reward_funcs", "format", "grpo_row_rewards.row_reward", "--per_device_train_batch_size", "4",
            "--num_generations", "2", "--max_completion_length", "6", "--max_pixels", str(56 * 56),
            "--max_steps", "2", "--save_strategy", "no", "--logging_steps", "1", "--log_completions", "true",
            "--seed", "0", "--disable_tqdm", "true"]  # fmt: skip
    handler = _ListHandler()
    logging.getLogger("tinyrs_grpo").addHandler(handler)
    try:
        with pytest.MonkeyPatch.context() as mp:  # the module-scoped form of the monkeypatch fixture
            mp.syspath_prepend(str(folder))
            trainer = main(*make_parser().parse_args_and_config(args=args))
    finally:
        logging.getLogger("tinyrs_grpo").removeHandler(handler)
    import grpo_row_rewards

    yield {"trainer": trainer, "output_dir": output_dir, "seen": grpo_row_rewards.SEEN, "log": handler.messages}
    sys.modules.pop("grpo_row_rewards", None)


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def completions_table(output_dir: Path):
    import pandas as pd

    return pd.concat([pd.read_parquet(p) for p in sorted((output_dir / "completions").glob("*.parquet"))])


def test_g7_each_completion_is_scored_against_its_own_row(batched_run: dict) -> None:
    """Several prompts per device: the reward saw prompt-major rows (each prompt's completions together), and every
    logged completion carries the reward of the row its prompt came from."""
    calls = batched_run["seen"]
    assert len(calls) == 2
    for problems in calls:
        assert len(problems) == 4  # 4 completions per device per step ...
        assert problems[0] == problems[1] and problems[2] == problems[3] and problems[0] != problems[2]  # 2 prompts
    table = completions_table(batched_run["output_dir"])
    column = next(c for c in table.columns if "row_reward" in c)
    for _, row in table.iterrows():
        k = int(re.search(r"question (\d+)\?", str(row["prompt"])).group(1))
        assert row[column] == pytest.approx(k / 10)
    assert len(table) == 8


def test_corrupt_image_mid_training_is_skipped_and_counted(batched_run: dict) -> None:
    """Row 1 decodes in no step: its copies were replaced by row 2, logged with file and row, and totalled."""
    assert all(1 not in problems for problems in batched_run["seen"])
    assert sorted({k for problems in batched_run["seen"] for k in problems}) == [0, 2, 3]
    log = batched_run["log"]
    warned = [m for m in log if "corrupt image" in m and "skipped" in m and "row 1" in m]
    assert warned and "1.png" in warned[0]
    assert any(m.startswith("corrupt images skipped during training: 1 (train row 1") for m in log)
    records = [
        json.loads(line) for line in (batched_run["output_dir"] / "corrupt_images.jsonl").read_text().splitlines()
    ]
    assert {(r["split"], r["row"]) for r in records} == {("train", 1)}


def test_g11_completions_end_at_any_eos_id(batched_run: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """A completion ends at the first token that is any of the generation config's eos ids (<|im_end|> and
    <|endoftext|>), not only <|im_end|>: what follows is not part of the completion (nor of its loss)."""
    import torch

    trainer = batched_run["trainer"]
    tokenizer = trainer.processing_class.tokenizer
    im_end, endoftext = (tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>"))
    assert {im_end, endoftext} <= set(trainer.eos_token_ids)
    prompt = [11, 12, 13]
    fake = torch.tensor([[*prompt, 21, endoftext, 22, 23], [*prompt, 21, 22, im_end, 23], [*prompt, 21, 22, 23, 24]])
    monkeypatch.setattr(trainer.model, "generate", lambda *a, **k: fake, raising=False)
    completion_ids, _ = trainer._generate_single_turn([prompt] * 3, None, {}, 1)
    assert completion_ids == [[21, endoftext], [21, 22, im_end], [21, 22, 23, 24]]
