"""The LLM judge: the real openai client against a local OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from helpers import png_bytes
from tinyrs_grpo.judge import Judge, make_judge_reward, parse_score


SECRET = "sk-test-DO-NOT-LEAK-0123456789abcdef"


@pytest.fixture(autouse=True)
def _secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)


def make_judge(server, **kwargs) -> Judge:
    options = dict(model="judge-test", base_url=server.base_url, timeout=5.0, max_retries=3, backoff_base=0.01)
    options.update(kwargs)
    return Judge(**options)


def number_in(text: str) -> int:
    return int(re.search(r"q(\d+)", text).group(1))


# ---------------------------------------------------------------------------------------------------------------
# score parsing
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("7", 0.7),
        ("7/10", 0.7),
        ("Score: 7.5", 0.75),
        ("8 out of 10", 0.8),
        ("On a 0-10 scale: 6", 0.6),  # the scale statement is not the score (the original read 0)
        ("10", 1.0),
        ("12", None),  # outside 0-10: a failure, not a full reward
        ("-3", None),  # outside 0-10: a failure
        ("0", 0.0),
        (" 9\n", 0.9),
        ("no idea", None),  # no number is a failure
        ("", None),
        (None, None),
    ],
)
def test_parse_score(reply, expected) -> None:
    assert parse_score(reply) == (pytest.approx(expected) if expected is not None else None)


# ---------------------------------------------------------------------------------------------------------------
# server behaviours
# ---------------------------------------------------------------------------------------------------------------
def test_normal_scores_are_per_sample(openai_server) -> None:
    """Each answer gets the score of its own request (the original could reuse the previous sample's reply)."""
    openai_server.behaviour = lambda question, n: {"content": str(number_in(question) % 11)}
    judge = make_judge(openai_server)
    items = [(f"question q{i}", f"answer {i}", "aW1hZ2U=") for i in range(11)]
    scores = asyncio.run(judge.score_many(items))
    assert scores == [pytest.approx(i / 10) for i in range(11)]
    assert judge.stats.requests == 11 and judge.stats.failures == 0 and judge.stats.api_calls == 11
    body = openai_server.requests[0]
    assert body["model"] == "judge-test"
    user = next(m for m in body["messages"] if m["role"] == "user")
    assert "<question> question q" in user["content"][0]["text"] and "<answer> answer" in user["content"][0]["text"]
    assert user["content"][1]["image_url"]["url"].startswith("data:image/jpeg;base64,")  # "aW1h..." is not PNG
    assert openai_server.auth_headers[0] == f"Bearer {SECRET}"  # the key comes from OPENAI_API_KEY


def test_png_images_are_labelled_png(openai_server) -> None:
    import base64

    judge = make_judge(openai_server)
    png = base64.b64encode(png_bytes()).decode()
    asyncio.run(judge.score("q1", "a", png))
    url = openai_server.requests[0]["messages"][1]["content"][1]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")


def test_429_then_success(openai_server) -> None:
    openai_server.behaviour = lambda question, n: {"status": 429} if n < 2 else {"content": "Score: 8"}
    judge = make_judge(openai_server)
    assert asyncio.run(judge.score("q1", "answer")) == pytest.approx(0.8)
    assert judge.stats.api_calls == 3 and judge.stats.retries == 2 and judge.stats.failures == 0


def test_repeated_500_gives_none_and_counts(openai_server, caplog: pytest.LogCaptureFixture) -> None:
    openai_server.behaviour = lambda question, n: {"status": 500}
    judge = make_judge(openai_server, max_retries=2)
    with caplog.at_level(logging.WARNING):
        assert asyncio.run(judge.score("q1", "answer")) is None
    assert judge.stats.failures == 1 and judge.stats.api_calls == 3  # first try + 2 retries
    assert "no score after 3 attempt" in caplog.text


def test_on_error_zero(openai_server) -> None:
    openai_server.behaviour = lambda question, n: {"status": 503}
    judge = make_judge(openai_server, max_retries=1, on_error="zero")
    assert asyncio.run(judge.score("q1", "answer")) == 0.0
    assert judge.stats.failures == 1


def test_failures_are_not_cached(openai_server) -> None:
    openai_server.behaviour = lambda question, n: {"status": 500} if n < 2 else {"content": "5"}
    judge = make_judge(openai_server, max_retries=1)
    assert asyncio.run(judge.score("q1", "answer")) is None  # attempts 0 and 1 fail
    assert asyncio.run(judge.score("q1", "answer")) == pytest.approx(0.5)  # asked again, not served a cached None


def test_timeouts_are_retried_then_fail(openai_server) -> None:
    openai_server.behaviour = lambda question, n: {"delay": 1.5, "content": "9"}
    judge = make_judge(openai_server, timeout=0.3, max_retries=1)
    assert asyncio.run(judge.score("q1", "answer")) is None
    assert judge.stats.api_calls == 2 and judge.stats.failures == 1


def test_timeout_then_success(openai_server) -> None:
    openai_server.behaviour = lambda question, n: {"delay": 1.5, "content": "1"} if n == 0 else {"content": "6"}
    judge = make_judge(openai_server, timeout=0.3, max_retries=2)
    assert asyncio.run(judge.score("q1", "answer")) == pytest.approx(0.6)


@pytest.mark.parametrize(
    "reply",
    [
        {"content": "I cannot grade this."},  # a reply without any number
        {"content": None},  # no content at all
        {"raw": b"<html>not json</html>"},  # not JSON
        {"raw": b'{"choices": []}'},  # JSON without choices
        {"status": 400},  # a client error is not retried
    ],
)
def test_garbage_replies_fail_cleanly(openai_server, reply: dict) -> None:
    openai_server.behaviour = lambda question, n: reply
    judge = make_judge(openai_server)
    assert asyncio.run(judge.score("q1", "answer")) is None
    assert judge.stats.failures == 1
    assert judge.stats.api_calls == 1  # not retried


def test_concurrency_limit_respected(openai_server) -> None:
    openai_server.behaviour = lambda question, n: {"delay": 0.2, "content": "5"}
    judge = make_judge(openai_server, concurrency=3)
    scores = asyncio.run(judge.score_many([(f"q{i}", "a", None) for i in range(9)]))
    assert scores == [pytest.approx(0.5)] * 9
    assert openai_server.max_in_flight == 3  # reached, never exceeded


def test_cache_by_question_answer_image(openai_server) -> None:
    openai_server.behaviour = lambda question, n: {"content": "4"}
    judge = make_judge(openai_server)
    items = [("q1", "a", "img"), ("q1", "a", "img"), ("q1", "a", "other-img"), ("q1", "b", "img"), ("q2", "a", "img")]
    asyncio.run(judge.score_many(items))  # the duplicate is served from the in-flight request
    asyncio.run(judge.score_many(items[:1]))  # later, from the cache (and on a new event loop)
    assert len(openai_server.requests) == 4
    assert judge.stats.cache_hits == 2 and judge.stats.requests == 4


def test_judge_reward_routes_rows_and_logs_metrics(openai_server) -> None:
    openai_server.behaviour = lambda question, n: {"content": "3"} if "q1" in question else {"status": 500}
    judge = make_judge(openai_server, max_retries=0)
    reward = make_judge_reward(judge)
    assert reward.__name__ == "judge_reward"
    completions = [
        [{"role": "assistant", "content": "<reasoning>r</reasoning><answer>nice</answer>"}],
        [{"role": "assistant", "content": "<answer>yes</answer>"}],
        [{"role": "assistant", "content": "<answer>broken</answer>"}],
    ]
    solution = [["0", "", "q1", ""], ["1", "yes", "q", ""], [0, "", "q2", ""]]
    logged: dict[str, float] = {}
    images = [_image(), None, _image()]
    scores = asyncio.run(reward(completions, solution, image=images, log_metric=logged.__setitem__))
    assert scores == [pytest.approx(0.3), None, None]
    assert logged == {"judge/requests": 2.0, "judge/api_calls": 2.0, "judge/failures": 1.0, "judge/cache_hits": 0.0}
    # the two requests run concurrently: take q1's, whichever arrived first
    sent = next(r for r in openai_server.requests if "q1" in openai_server.question_of(r))["messages"][1]["content"]
    assert "<answer> nice </answer>" in sent[0]["text"]  # the answer text, not the reasoning
    assert sent[1]["image_url"]["url"].startswith("data:image/png;base64,")  # encoded from the image column


def _image():
    import io

    from PIL import Image

    return Image.open(io.BytesIO(png_bytes()))


# ---------------------------------------------------------------------------------------------------------------
# the key
# ---------------------------------------------------------------------------------------------------------------
def test_key_never_in_logs_or_repr(openai_server, caplog: pytest.LogCaptureFixture, capsys) -> None:
    openai_server.behaviour = lambda question, n: {"status": 500} if n == 0 else {"content": "x"}
    judge = make_judge(openai_server, max_retries=1)
    with caplog.at_level(logging.DEBUG):  # openai/httpx debug logging included
        asyncio.run(judge.score_many([("q1", "a", None), ("q2", "b", None)]))
    captured = capsys.readouterr()
    assert judge.stats.failures == 2
    for text in (caplog.text, captured.out, captured.err, repr(judge), str(judge.stats.snapshot())):
        assert SECRET not in text
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(judge)


def test_no_key_and_no_base_url_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        Judge(model="m")


def test_local_server_without_key(openai_server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    judge = make_judge(openai_server)
    assert asyncio.run(judge.score("q1", "a")) == pytest.approx(0.7)


@pytest.mark.parametrize("prompt", ["original", "remote_sensing"])
def test_judge_prompt_choice(openai_server, prompt: str) -> None:
    """Default: the original TinyRS instructions (teacher, student model, no single correct answer, 0-10 for
    explanatory ability, quality and word choice, number only, tags); remote_sensing: this toolkit's rewording."""
    from tinyrs_grpo.judge import JUDGE_PROMPTS

    judge = Judge(base_url=openai_server.base_url, prompt=prompt)
    assert asyncio.run(judge.score("What is shown?", "fields", None)) == pytest.approx(0.7)
    system = openai_server.requests[0]["messages"][0]
    assert system["role"] == "system" and system["content"] == JUDGE_PROMPTS[prompt]
    text = system["content"]
    for phrase in ("teacher", "student model", "no single correct answer", "0 to 10", "explanatory ability",
                   "only the number", "<question>", "<answer>"):  # fmt: skip
        assert phrase in text, phrase
    assert ("remote-sensing" in text) == (prompt == "remote_sensing")
    assert ("what the image shows" in text) == (prompt == "remote_sensing")
    assert Judge(base_url=openai_server.base_url).prompt == "original"
    with pytest.raises(ValueError, match="judge prompt"):
        Judge(base_url=openai_server.base_url, prompt="other")
