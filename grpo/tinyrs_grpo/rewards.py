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

import importlib
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

from tinyrs_grpo.text import box_iou, completion_text, extract_answer, normalize_answer, parse_box


logger = logging.getLogger(__name__)

OPEN_ENDED, EXACT, BOX = "0", "1", "2"
ANSWER_TYPES = {OPEN_ENDED: "open-ended (judge)", EXACT: "exact answer", BOX: "bounding box"}

_TAG = r"</?(?:reasoning|answer)>"
_FORMAT_RE = re.compile(
    rf"<reasoning>((?:(?!{_TAG}).)*)</reasoning>\s*<answer>((?:(?!{_TAG}).)*)</answer>",
    re.DOTALL,
)


def answer_type_code(value: Any) -> str:
    """Normalise an answer-type code ("0"/"1"/"2", or the integers 0/1/2) to its string form.

    Raises:
        ValueError: for any other value.
    """
    if isinstance(value, bool):
        raise ValueError(f"unknown answer_type {value!r}; expected one of {sorted(ANSWER_TYPES)}")
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        code = str(int(value))
    elif isinstance(value, str):
        code = value.strip()
    else:
        code = repr(value)
    if code not in ANSWER_TYPES:
        raise ValueError(f"unknown answer_type {value!r}; expected one of {sorted(ANSWER_TYPES)} (str or int)")
    return code


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

    The training entry point swaps in ``make_accuracy_reward(judge)`` when a judge is configured.
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


_rule_accuracy_reward = accuracy_reward


def make_accuracy_reward(judge: Any) -> Callable[..., Any]:
    """Accuracy reward whose open-ended rows are graded by ``judge`` (a ``tinyrs_grpo.judge.Judge``).

    Returns an ``async`` function named ``accuracy_reward`` so TRL runs it concurrently with other async rewards and
    logs it under the same name as the judge-less version.
    """
    from tinyrs_grpo.judge import make_judge_reward

    judge_reward = make_judge_reward(judge)

    async def accuracy_reward(completions: list[Any], solution: list[Any], **kwargs: Any) -> list[float | None]:
        rewards = _rule_accuracy_reward(completions, solution)
        judged = await judge_reward(completions, solution, **kwargs)
        return [j if _solution_fields(s)[0] == OPEN_ENDED else r for r, j, s in zip(rewards, judged, solution)]

    return accuracy_reward


# ---------------------------------------------------------------------------------------------------------------
# Registry: the names accepted by --reward_funcs
# ---------------------------------------------------------------------------------------------------------------
REWARD_FUNCS: dict[str, Callable[..., Any] | None] = {
    "accuracy": accuracy_reward,
    "format": format_reward,
    "exact": exact_reward,
    "iou": iou_reward,
    "judge": None,  # built by get_reward_funcs from a configured judge
}


def get_reward_funcs(names: Sequence[str], judge: Any = None) -> list[Callable[..., Any]]:
    """Resolve ``--reward_funcs`` names to functions.

    Args:
        names: registry names (``accuracy``, ``format``, ``exact``, ``iou``, ``judge``) or dotted import paths
            (``my_pkg.my_module.my_reward``) for custom rewards.
        judge: a configured ``tinyrs_grpo.judge.Judge`` or None. With a judge, ``accuracy`` grades open-ended rows
            through it; ``judge`` requires one.

    Raises:
        ValueError: for an unknown name (the message lists the valid ones), or ``judge`` without a judge.
    """
    if not names:
        raise ValueError(f"no reward functions given; valid names: {sorted(REWARD_FUNCS)}")
    funcs: list[Callable[..., Any]] = []
    for name in names:
        if name == "judge":
            if judge is None:
                raise ValueError(
                    "reward 'judge' needs a judge: set OPENAI_API_KEY (or --judge_base_url) and --judge openai"
                )
            from tinyrs_grpo.judge import make_judge_reward

            funcs.append(make_judge_reward(judge))
        elif name == "accuracy" and judge is not None:
            funcs.append(make_accuracy_reward(judge))
        elif name in REWARD_FUNCS:
            funcs.append(REWARD_FUNCS[name])
        elif "." in name:
            module_name, func_name = name.rsplit(".", 1)
            try:
                funcs.append(getattr(importlib.import_module(module_name), func_name))
            except (ImportError, AttributeError) as exc:
                raise ValueError(f"cannot import reward function {name!r}: {exc}") from exc
        else:
            raise ValueError(
                f"unknown reward function {name!r}; valid names: {sorted(REWARD_FUNCS)} or a dotted import path"
            )
    return funcs
