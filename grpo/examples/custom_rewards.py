"""Two custom GRPO rewards, as a worked example of ``--reward_funcs module.function``.

A reward takes ``completions`` (strings, or ``[{"role": "assistant", "content": ...}]`` lists, which is what
``tinyrs-grpo train`` passes) plus every dataset column as a keyword argument (``solution``, ``problem``, ``image``,
...), and returns one float per completion, or None where the rule does not apply (TRL leaves that row out).

Run from the folder that holds this file (it is found in the current folder, also by the console script):

    cd grpo/examples
    tinyrs-grpo train --config ../configs/cpu_demo.yaml --model_name_or_path ../../demo_out/cot_sft \
        --dataset_name ../../demo_out/data/grpo --output_dir ../../demo_out/grpo_custom \
        --reward_funcs accuracy format custom_rewards.concise_answer_reward --reward_weights 1 1 0.5

or from anywhere, naming the file:

    tinyrs-grpo train --config grpo/configs/cpu_demo.yaml --model_name_or_path demo_out/cot_sft \
        --dataset_name demo_out/data/grpo --output_dir demo_out/grpo_custom \
        --reward_module grpo/examples/custom_rewards.py \
        --reward_funcs accuracy format custom_rewards.concise_answer_reward custom_rewards.colour_word_reward \
        --reward_weights 1 1 0.5 0.5

Add ``--dry_run true`` to check that the names resolve without loading a model. TRL logs each reward as
``rewards/<function name>/mean``.
"""

from __future__ import annotations

import re
from typing import Any


COLOUR_WORDS = ("red", "green", "blue", "white", "black", "grey", "gray", "brown", "yellow", "orange")
_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def _text(completion: Any) -> str:
    """The text of one completion (a string or a conversational message list)."""
    if isinstance(completion, str):
        return completion
    return "".join(m["content"] if isinstance(m["content"], str) else "" for m in completion)


def _answer(text: str) -> str:
    """Content of the last ``<answer>`` block, else the whole text."""
    blocks = _ANSWER_RE.findall(text)
    return (blocks[-1] if blocks else text).strip()


def concise_answer_reward(completions: list[Any], max_words: int = 8, **kwargs: Any) -> list[float]:
    """1.0 for an answer of 1..max_words words, falling linearly to 0 at three times that length; 0 when empty."""
    rewards = []
    for completion in completions:
        words = len(_answer(_text(completion)).split())
        if words == 0:
            rewards.append(0.0)
        elif words <= max_words:
            rewards.append(1.0)
        else:
            rewards.append(max(0.0, 1.0 - (words - max_words) / (2 * max_words)))
    return rewards


def colour_word_reward(completions: list[Any], problem: list[str], **kwargs: Any) -> list[float | None]:
    """For questions that ask about a colour: 1.0 when the answer names a colour, else 0.0; None for other rows."""
    rewards: list[float | None] = []
    for completion, question in zip(completions, problem):
        if "colour" not in question.lower() and "color" not in question.lower():
            rewards.append(None)
            continue
        words = set(re.findall(r"[a-z]+", _answer(_text(completion)).lower()))
        rewards.append(1.0 if words & set(COLOUR_WORDS) else 0.0)
    return rewards
