"""Golden tables for every reward rule (tinyrs_grpo.rewards), including the original's box-IoU bug (G1)."""

from __future__ import annotations

import asyncio

import pytest

from tinyrs_grpo import rewards
from tinyrs_grpo.rewards import (
    REWARD_FUNCS,
    REWARD_NAMES,
    accuracy_reward,
    exact_reward,
    format_reward,
    get_reward_funcs,
    iou_reward,
)
from tinyrs_grpo.text import (
    REASONING_SYSTEM_PROMPT,
    answer_type_code,
    completion_text,
    extract_answer,
    normalize_answer,
    parse_box,
)


def conv(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def parts(*texts: str) -> list[dict]:
    return [{"role": "assistant", "content": [{"type": "text", "text": t} for t in texts]}]


def sol(answer_type, answer: str) -> list:
    return [answer_type, answer, "question?", ""]


# ---------------------------------------------------------------------------------------------------------------
# format_reward
# ---------------------------------------------------------------------------------------------------------------
FORMAT_CASES = [
    ("<reasoning>r</reasoning><answer>a</answer>", 1.0),  # minimal valid
    ("<reasoning>two\nlines</reasoning>\n  <answer>forest</answer>", 1.0),  # whitespace between blocks
    ("  \n<reasoning>r</reasoning><answer>a</answer>\n ", 1.0),  # surrounding whitespace is stripped
    ("<reasoning>r</reasoning><answer>a</answer> trailing", 0.0),  # trailing text (original accepted it)
    ("lead <reasoning>r</reasoning><answer>a</answer>", 0.0),  # leading text
    ("<reasoning></reasoning><answer>a</answer>", 0.0),  # empty reasoning
    ("<reasoning>r</reasoning><answer>  </answer>", 0.0),  # blank answer
    ("<reasoning>r</reasoning>", 0.0),  # no answer block
    ("<answer>a</answer>", 0.0),  # no reasoning block
    ("<answer>a</answer><reasoning>r</reasoning>", 0.0),  # wrong order
    ("<reasoning>r</reasoning><answer>a</answer><answer>b</answer>", 0.0),  # two answer blocks
    ("<reasoning>r</reasoning><reasoning>s</reasoning><answer>a</answer>", 0.0),  # two reasoning blocks
    ("<reasoning>r <answer>x</answer></reasoning><answer>a</answer>", 0.0),  # nested tag
    ("<reasoning>r</reasoning>text<answer>a</answer>", 0.0),  # text between blocks
    ("", 0.0),  # empty completion
]


@pytest.mark.parametrize(("text", "expected"), FORMAT_CASES)
def test_format_reward_golden(text: str, expected: float) -> None:
    assert format_reward([text]) == [expected]
    assert format_reward([conv(text)]) == [expected]  # conversational completions give the same result


def test_format_reward_content_parts() -> None:
    assert format_reward([parts("<reasoning>r</reasoning>", "<answer>a</answer>")]) == [1.0]


# ---------------------------------------------------------------------------------------------------------------
# Answer text, normalisation, box parsing
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<reasoning>x</reasoning><answer> Forest </answer>", "Forest"),  # answer block content, stripped
        ("<answer>a</answer> then <answer>b</answer>", "b"),  # last complete block
        ("<answer>unfinished", "<answer>unfinished"),  # no complete block -> whole text
        ("<reasoning>x</reasoning> airport", "airport"),  # text after </reasoning>
        ("  just text ", "just text"),  # no tags -> whole completion
    ],
)
def test_extract_answer(text: str, expected: str) -> None:
    assert extract_answer(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Forest.", "forest"),
        ("  Dense   Residential \n", "dense residential"),
        ("yes...", "yes"),
        ("YES . .", "yes"),
        ("3.5", "3.5"),  # inner periods stay
        ("Straße", "strasse"),  # case-fold, not just lower()
    ],
)
def test_normalize_answer(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[10, 20, 30, 40]]", (10.0, 20.0, 30.0, 40.0)),
        ("[0.25, 0.5, 0.75, 1]", (0.25, 0.5, 0.75, 1.0)),  # decimals (original split 0.25 into 0 and 25)
        ("[-5, +3, 10, 20]", (-5.0, 3.0, 10.0, 20.0)),  # signs
        ("box (1,2),(3,4) and more 5 6", (1.0, 2.0, 3.0, 4.0)),  # first four numbers
        ("[1, 2, 3]", None),  # fewer than four numbers
        ("no numbers", None),
    ],
)
def test_parse_box(text: str, expected) -> None:
    assert parse_box(text) == expected


# ---------------------------------------------------------------------------------------------------------------
# exact ("1")
# ---------------------------------------------------------------------------------------------------------------
EXACT_CASES = [
    ("<reasoning>r</reasoning><answer>Forest.</answer>", "forest", 1.0),  # case and trailing period
    ("<reasoning>r</reasoning><answer>dense  residential</answer>", "Dense Residential", 1.0),  # whitespace runs
    ("<reasoning>r</reasoning><answer>residential</answer>", "dense residential", 0.0),  # substring is not a match
    ("<reasoning>r</reasoning><answer></answer>", "yes", 0.0),  # empty answer never matches
    ("<reasoning>r</reasoning><answer>1</answer>", "12", 0.0),  # partial number
    ("yes", "Yes", 1.0),  # no tags: whole completion
    ("<reasoning>the answer is no</reasoning><answer>yes</answer>", "no", 0.0),  # only the answer block counts
]


@pytest.mark.parametrize(("text", "truth", "expected"), EXACT_CASES)
def test_exact_golden(text: str, truth: str, expected: float) -> None:
    assert exact_reward([text], [sol("1", truth)]) == [expected]
    assert accuracy_reward([conv(text)], [sol("1", truth)]) == [expected]


# ---------------------------------------------------------------------------------------------------------------
# box IoU ("2")
# ---------------------------------------------------------------------------------------------------------------
IOU_CASES = [
    ("<answer>[[0, 0, 10, 10]]</answer>", "[[0, 0, 10, 10]]", 1.0),  # identical
    ("<answer>[[0, 0, 10, 10]]</answer>", "[[5, 0, 15, 10]]", 50 / 150),  # half overlap: 50 / 150
    ("<answer>[[0, 0, 10, 10]]</answer>", "[[20, 20, 30, 30]]", 0.0),  # disjoint
    ("<answer>[[0, 0, 10, 10]]</answer>", "[[0, 0, 20, 20]]", 0.25),  # contained: 100 / 400
    ("<answer>[[0.5, 0.5, 1.5, 1.5]]</answer>", "[[0, 0, 1, 1]]", 0.25 / 1.75),  # decimals, continuous IoU
    ("<answer>[[10, 10, 0, 0]]</answer>", "[[0, 0, 10, 10]]", 0.0),  # x2 <= x1 (reversed)
    ("<answer>[[0, 0, 10, 0]]</answer>", "[[0, 0, 10, 10]]", 0.0),  # zero height
    ("<answer>[[0, 0, 10]]</answer>", "[[0, 0, 10, 10]]", 0.0),  # three numbers
    ("<answer>no box</answer>", "[[0, 0, 10, 10]]", 0.0),  # no numbers
    ("<answer>[[0, 0, 10, 10], [50, 50, 60, 60]]</answer>", "[[0, 0, 10, 10]]", 1.0),  # first box only
    ("[[100, 200, 300, 400]]", "[100, 200, 300, 400]", 1.0),  # no tags, single brackets
]


@pytest.mark.parametrize(("text", "truth", "expected"), IOU_CASES)
def test_iou_golden(text: str, truth: str, expected: float) -> None:
    assert iou_reward([text], [sol("2", truth)]) == [pytest.approx(expected)]
    assert accuracy_reward([conv(text)], [sol(2, truth)]) == [pytest.approx(expected)]


def test_original_iou_bug_g1_is_fixed() -> None:
    """The original compared the predicted box with itself, so any well-ordered box scored 1.0."""
    prediction = "<reasoning>tank on the left</reasoning><answer>[[600, 600, 900, 900]]</answer>"
    ground_truth = "[[112, 530, 205, 640]]"
    score = iou_reward([prediction], [sol("2", ground_truth)])[0]
    assert score < 1.0
    assert score == 0.0  # these boxes do not overlap at all
    near = "<answer>[[112, 530, 205, 700]]</answer>"
    assert 0.0 < iou_reward([near], [sol("2", ground_truth)])[0] < 1.0


# ---------------------------------------------------------------------------------------------------------------
# dispatch, None for other types, answer-type codes
# ---------------------------------------------------------------------------------------------------------------
def test_accuracy_dispatch_and_none_routing() -> None:
    completions = ["<answer>yes</answer>", "<answer>[[0, 0, 10, 10]]</answer>", "<answer>a nice view</answer>"]
    solution = [sol("1", "yes"), sol("2", "[[0, 0, 10, 10]]"), sol("0", "")]
    assert accuracy_reward(completions, solution) == [1.0, 1.0, None]  # open-ended: no judge here
    assert exact_reward(completions, solution) == [1.0, None, None]
    assert iou_reward(completions, solution) == [None, 1.0, None]


@pytest.mark.parametrize(("code", "expected"), [("0", "0"), (1, "1"), ("2", "2"), (" 1 ", "1"), (2.0, "2")])
def test_answer_type_codes(code, expected: str) -> None:
    assert answer_type_code(code) == expected


@pytest.mark.parametrize("code", ["3", 7, "", None, True, "exact"])
def test_unknown_answer_type_is_an_error(code) -> None:
    with pytest.raises(ValueError, match="unknown answer_type"):
        accuracy_reward(["x"], [sol(code, "x")])


def test_integer_codes_score_like_strings() -> None:
    """The original compared codes as strings, so integer codes silently scored 0 (G5)."""
    assert accuracy_reward(["<answer>yes</answer>"], [[1, "yes", "q", ""]]) == [1.0]


def test_dict_solution_rows() -> None:
    assert accuracy_reward(["<answer>yes</answer>"], [{"answer_type": "1", "answer": "Yes"}]) == [1.0]


def test_length_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="completions"):
        exact_reward(["a", "b"], [sol("1", "a")])


def test_completion_text_shapes() -> None:
    assert completion_text("plain") == "plain"
    assert completion_text(conv("c")) == "c"
    assert completion_text(parts("a", "b")) == "ab"
    with pytest.raises(TypeError):
        completion_text(42)


# ---------------------------------------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------------------------------------
def test_registry_names_and_function_names() -> None:
    assert sorted(REWARD_FUNCS) == ["accuracy", "exact", "format", "iou"]  # every entry a function, no placeholder
    assert REWARD_NAMES == ["accuracy", "exact", "format", "iou", "judge"]  # judge: built by train.py, passed in
    for name in ("accuracy", "format", "exact", "iou"):
        (func,) = get_reward_funcs([name])
        assert func.__name__ == f"{name}_reward"  # TRL logs rewards/<__name__>/mean


def test_registry_unknown_name_lists_valid_ones() -> None:
    with pytest.raises(ValueError) as info:
        get_reward_funcs(["accuracy", "bleu"])
    message = str(info.value)
    assert "bleu" in message
    for name in ("accuracy", "exact", "format", "iou", "judge"):
        assert name in message


def test_registry_judge_needs_a_judge() -> None:
    with pytest.raises(ValueError, match="judge"):
        get_reward_funcs(["judge"])


def test_registry_dotted_path() -> None:
    (func,) = get_reward_funcs(["tinyrs_grpo.rewards.format_reward"])
    assert func is rewards.format_reward
    with pytest.raises(ValueError, match="cannot import"):
        get_reward_funcs(["tinyrs_grpo.rewards.no_such_reward"])


class _FakeJudge:
    """Stands in for tinyrs_grpo.judge.Judge: scores by answer length, records what it was asked."""

    def __init__(self) -> None:
        from tinyrs_grpo.judge import JudgeStats

        self.stats = JudgeStats()
        self.asked: list[tuple] = []

    async def score_many(self, items):
        self.asked.extend(items)
        return [min(len(answer) / 10, 1.0) for _, answer, _ in items]


def test_accuracy_with_judge_grades_only_open_ended_rows() -> None:
    from tinyrs_grpo.judge import make_judge_reward

    judge = _FakeJudge()
    funcs = get_reward_funcs(["accuracy", "judge"], judge_reward=make_judge_reward(judge))
    assert [f.__name__ for f in funcs] == ["accuracy_reward", "judge_reward"]
    completions = [conv("<answer>yes</answer>"), conv("<reasoning>r</reasoning><answer>a long answer</answer>")]
    solution = [sol("1", "yes"), ["0", "", "Describe it.", "aW1n"]]
    assert asyncio.run(funcs[0](completions, solution)) == [1.0, 1.0]
    assert judge.asked == [("Describe it.", "a long answer", "aW1n")]  # question, answer text only, image
    assert asyncio.run(funcs[1](completions, solution)) == [None, 1.0]


def test_reasoning_system_prompt_is_the_convention() -> None:
    assert REASONING_SYSTEM_PROMPT.startswith("A conversation between User and Assistant.")
    assert REASONING_SYSTEM_PROMPT.endswith(
        "i.e., <reasoning> reasoning process here </reasoning><answer> answer here </answer>"
    )
