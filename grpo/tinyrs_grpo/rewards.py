"""Reward functions with TRL's signature, and the registry behind ``--reward_funcs``.

Every function takes ``completions`` (strings, or conversational ``[{"role": "assistant", "content": ...}]`` lists)
plus dataset columns as keyword arguments and returns one value per completion. ``None`` means "this rule does not
apply to this row": TRL ignores it for that row (it becomes NaN and is left out of the sum and of the logged means).

``solution`` rows follow docs/data-format.md: ``[answer_type, answer, question, image_base64]`` where answer_type is
"0" (open-ended, judged), "1" (exact answer) or "2" (bounding box); integer codes are accepted.

Difference from the original TinyRS ``grpo.py``: the box reward measures IoU against the ground-truth box (the
original compared the model's box with itself, so any well-ordered box scored 1.0), numbers may be decimals or
signed, the format reward must match the whole completion, and exact match collapses whitespace runs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from tinyrs_grpo.reward_imports import import_reward, load_reward_files
from tinyrs_grpo.text import (
    BOX,
    EXACT,
    OPEN_ENDED,
    answer_type_code,
    box_iou,
    completion_text,
    extract_answer,
    normalize_answer,
    parse_box,
)


logger = logging.getLogger(__name__)

_TAG = r"</?(?:reasoning|answer)>"
_FORMAT_RE = re.compile(
    rf"<reasoning>((?:(?!{_TAG}).)*)</reasoning>\s*<answer>((?:(?!{_TAG}).)*)</answer>",
    re.DOTALL,
)


def _solution_fields(solution: Sequence[Any] | dict) -> tuple[str, str]:
    """(answer_type code, ground-truth answer) of one ``solution`` row."""
    if isinstance(solution, dict):
        return answer_type_code(solution.get("answer_type")), str(solution.get("answer", ""))
    if len(solution) < 2:
        raise ValueError(f"solution must hold at least [answer_type, answer], got {solution!r}")
    return answer_type_code(solution[0]), str(solution[1])


def _check_lengths(completions: Sequence[Any], solution: Sequence[Any]) -> None:
    if len(completions) != len(solution):
        raise ValueError(f"got {len(completions)} completions but {len(solution)} solution rows")


# ---------------------------------------------------------------------------------------------------------------
# Single-completion scores (pure)
# ---------------------------------------------------------------------------------------------------------------
def format_score(text: str) -> float:
    """1.0 for exactly ``<reasoning>R</reasoning> <answer>A</answer>`` (R, A non-blank, nothing else), else 0.0."""
    match = _FORMAT_RE.fullmatch(text.strip())
    if match is None:
        return 0.0
    reasoning, answer = match.groups()
    return 1.0 if reasoning.strip() and answer.strip() else 0.0


def exact_score(text: str, ground_truth: str) -> float:
    """1.0 when the answer text equals the ground truth after normalisation, else 0.0."""
    return 1.0 if normalize_answer(extract_answer(text)) == normalize_answer(ground_truth) else 0.0


def iou_score(text: str, ground_truth: str) -> float:
    """IoU between the first box (first four numbers) of the answer text and the first ground-truth box."""
    return box_iou(parse_box(extract_answer(text)), parse_box(ground_truth))


# ---------------------------------------------------------------------------------------------------------------
# Reward functions (TRL signature)
# ---------------------------------------------------------------------------------------------------------------
def format_reward(completions: list[Any], **kwargs: Any) -> list[float]:
    """1.0 when a completion is exactly one reasoning block then one answer block (see ``format_score``)."""
    return [format_score(completion_text(c)) for c in completions]


def exact_reward(completions: list[Any], solution: list[Any], **kwargs: Any) -> list[float | None]:
    """Normalised exact match for answer_type "1" rows; None for other rows."""
    _check_lengths(completions, solution)
    rewards: list[float | None] = []
    for completion, sol in zip(completions, solution):
        code, answer = _solution_fields(sol)
        rewards.append(exact_score(completion_text(completion), answer) if code == EXACT else None)
    return rewards


def iou_reward(completions: list[Any], solution: list[Any], **kwargs: Any) -> list[float | None]:
    """Box IoU in [0, 1] for answer_type "2" rows; None for other rows."""
    _check_lengths(completions, solution)
    rewards: list[float | None] = []
    for completion, sol in zip(completions, solution):
        code, answer = _solution_fields(sol)
        rewards.append(iou_score(completion_text(completion), answer) if code == BOX else None)
    return rewards


def accuracy_reward(completions: list[Any], solution: list[Any], **kwargs: Any) -> list[float | None]:
    """Dispatch on answer type: exact match ("1"), box IoU ("2"); open-ended ("0") rows get None (no judge here).

    The training entry point swaps in ``make_accuracy_reward(judge_reward)`` when a judge is configured.
    """
    _check_lengths(completions, solution)
    rewards: list[float | None] = []
    for completion, sol in zip(completions, solution):
        code, answer = _solution_fields(sol)
        text = completion_text(completion)
        if code == EXACT:
            rewards.append(exact_score(text, answer))
        elif code == BOX:
            rewards.append(iou_score(text, answer))
        else:
            rewards.append(None)
    return rewards


def make_accuracy_reward(judge_reward: Callable[..., Awaitable[list[float | None]]]) -> Callable[..., Any]:
    """Accuracy reward whose open-ended rows are graded by ``judge_reward`` (``tinyrs_grpo.judge.make_judge_reward``,
    built by the training entry point and passed in, so this module never imports the judge).

    Returns an ``async`` function named ``accuracy_reward`` so TRL runs it concurrently with other async rewards and
    logs it under the same name as the judge-less version.
    """

    async def judged_accuracy_reward(completions: list[Any], solution: list[Any], **kwargs: Any) -> list[float | None]:
        rules = accuracy_reward(completions, solution)
        judged = await judge_reward(completions, solution, **kwargs)
        return [j if _solution_fields(s)[0] == OPEN_ENDED else r for r, j, s in zip(rules, judged, solution)]

    judged_accuracy_reward.__name__ = judged_accuracy_reward.__qualname__ = "accuracy_reward"
    return judged_accuracy_reward


# ---------------------------------------------------------------------------------------------------------------
# Registry: the names accepted by --reward_funcs
# ---------------------------------------------------------------------------------------------------------------
REWARD_FUNCS: dict[str, Callable[..., Any]] = {
    "accuracy": accuracy_reward,
    "format": format_reward,
    "exact": exact_reward,
    "iou": iou_reward,
}
JUDGE_REWARD = "judge"  # needs a configured judge: its reward is built by the training entry point and passed in
REWARD_NAMES = sorted([*REWARD_FUNCS, JUDGE_REWARD])


def get_reward_funcs(
    names: Sequence[str],
    judge_reward: Callable[..., Any] | None = None,
    reward_files: Sequence[str] = (),
) -> list[Callable[..., Any]]:
    """Resolve ``--reward_funcs`` names to functions.

    Args:
        names: registry names (``accuracy``, ``format``, ``exact``, ``iou``, ``judge``) or dotted import paths
            (``my_module.my_reward``) of custom rewards; a module is looked up on the import path, then in the
            current folder, then among ``reward_files``.
        judge_reward: the async judge reward (``tinyrs_grpo.judge.make_judge_reward(judge)``) or None. With it,
            ``accuracy`` grades open-ended rows through the judge; ``judge`` requires it.
        reward_files: ``--reward_module`` files, each importable afterwards under its file name without ``.py``.

    Raises:
        ValueError: for an unknown name (the message lists the valid ones), ``judge`` without a judge, or a custom
            reward that cannot be imported.
    """
    if not names:
        raise ValueError(f"no reward functions given; valid names: {REWARD_NAMES}")
    load_reward_files(reward_files)
    funcs: list[Callable[..., Any]] = []
    for name in names:
        if name == JUDGE_REWARD:
            if judge_reward is None:
                raise ValueError(
                    "reward 'judge' needs a judge: set OPENAI_API_KEY (or --judge_base_url) and --judge openai"
                )
            funcs.append(judge_reward)
        elif name == "accuracy" and judge_reward is not None:
            funcs.append(make_accuracy_reward(judge_reward))
        elif name in REWARD_FUNCS:
            funcs.append(REWARD_FUNCS[name])
        elif "." in name:
            funcs.append(import_reward(name))
        else:
            raise ValueError(
                f"unknown reward function {name!r}; valid names: {REWARD_NAMES} or a dotted import path "
                "(my_module.my_reward)"
            )
    return funcs
