"""LLM judge for open-ended answers (answer_type "0"), through any OpenAI-compatible chat endpoint.

The judge sees the question, the model's answer text and the image, with the original TinyRS instructions by
default (``prompt="remote_sensing"`` selects this toolkit's rewording), and replies with a 0-10 score that becomes
a reward in [0, 1]. Unlike the original (a new synchronous client per call, no retry, a crash or a stale score from
the previous sample on any API error), requests are concurrent under a limit, each has a timeout, rate limits /
server errors / timeouts are retried with exponential backoff, and a request that still fails yields None (or 0.0
with ``on_error="zero"``) and increments a failure counter. Identical (question, answer, image) requests are
answered from an in-memory cache.

The API key comes only from the ``OPENAI_API_KEY`` environment variable. It is never a parameter, never logged and
never part of ``repr``; nothing in this module writes it anywhere.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import logging
import os
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from tinyrs_grpo.text import OPEN_ENDED, answer_type_code, completion_text, extract_answer


logger = logging.getLogger(__name__)

DEFAULT_JUDGE_MODEL = "gpt-4.1-mini-2025-04-14"
API_KEY_ENV = "OPENAI_API_KEY"

# The judge's instructions. "original" restates the TinyRS grpo.py instruction in its meaning and order: a teacher
# grading a student model's answer to a question about the image, no single correct answer, a 0-10 grade for
# explanatory ability, quality and word choice, only the number in reply, question and answer in tags. No reference
# answer is shown, as in the paper. "remote_sensing" is this toolkit's rewording (kept as an option).
JUDGE_PROMPTS = {
    "original": (
        "You are a teacher grading the answer that a student model gave to a question about the image. There is no "
        "single correct answer. Grade the answer from 0 to 10 for its explanatory ability, its quality and its "
        "choice of words. Reply with only the number. The question is given in <question> tags and the answer in "
        "<answer> tags."
    ),
    "remote_sensing": (
        "You are a teacher grading the answer of a student model to a question about the attached remote-sensing "
        "image. There is no single correct answer. Grade the answer from 0 to 10 for its explanatory ability, its "
        "quality and its choice of words, judged against what the image shows. The question is enclosed in "
        "<question> tags and the answer in <answer> tags. Reply with only the number."
    ),
}
DEFAULT_JUDGE_PROMPT = "original"
JUDGE_SYSTEM_PROMPT = JUDGE_PROMPTS[DEFAULT_JUDGE_PROMPT]

_RANGE_RE = re.compile(r"\b0\s*(?:-|–|to)\s*10\b", re.IGNORECASE)
_OUT_OF_RE = re.compile(r"(-?\d+(?:\.\d+)?)\s*(?:/|out of)\s*10\b", re.IGNORECASE)
_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?")
_RETRYABLE_STATUS = {408, 409, 429}


def parse_score(reply: str | None) -> float | None:
    """Map a judge reply to [0, 1]: "7" -> 0.7, "7/10" -> 0.7, "Score: 7.5" -> 0.75; None without a number.

    A scale statement such as "0-10" or "0 to 10" is ignored so that "On a 0-10 scale: 8" reads 8. A score outside
    0-10 ("12", "-3") is a broken reply, not a strong opinion: None (a failure), never clamped to a full reward.
    """
    if not reply:
        return None
    match = _OUT_OF_RE.search(reply)
    if match is None:
        match = _NUMBER_RE.search(_RANGE_RE.sub(" ", reply))
    if match is None:
        return None
    value = float(match.group(1) if match.groups() else match.group(0))
    if not 0.0 <= value <= 10.0:
        return None
    return value / 10.0


def image_mime(image_b64: str) -> str:
    """MIME type of base64 image bytes from their magic number (the original always said JPEG)."""
    head = image_b64[:16]
    if head.startswith("iVBOR"):
        return "image/png"
    if head.startswith("R0lG"):
        return "image/gif"
    if head.startswith("UklGR"):
        return "image/webp"
    return "image/jpeg"


def encode_image(image: Any) -> str:
    """Base64 PNG of a PIL image (used when a row carries no base64 copy of its image)."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


@dataclass
class JudgeStats:
    """Cumulative judge counters (also logged per step as judge/* metrics)."""

    requests: int = 0  # scores that needed the API (cache misses)
    api_calls: int = 0  # HTTP attempts, retries included
    retries: int = 0
    failures: int = 0  # requests that ended without a score
    cache_hits: int = 0

    def snapshot(self) -> dict[str, int]:
        return asdict(self)


class Judge:
    """Async, concurrent, cached OpenAI-compatible judge.

    Args:
        model: chat model name.
        base_url: OpenAI-compatible endpoint (e.g. a local vLLM or lmdeploy server); None for api.openai.com.
        concurrency: maximum requests in flight.
        timeout: seconds per request.
        max_retries: retries after the first attempt for 429 / 408 / 409 / 5xx / timeouts / connection errors.
        backoff_base, backoff_max: retry ``k`` waits ``min(backoff_max, backoff_base * 2**k)`` seconds, jittered.
        on_error: "none" (the row's reward is None, ignored by TRL) or "zero" (0.0) after the last failure.
        temperature, max_tokens: sampling settings of the judge (original: 0.2; it asked for 32768 tokens).
    """

    def __init__(
        self,
        model: str = DEFAULT_JUDGE_MODEL,
        base_url: str | None = None,
        concurrency: int = 16,
        timeout: float = 60.0,
        max_retries: int = 4,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        on_error: str = "none",
        temperature: float = 0.2,
        max_tokens: int = 64,
        prompt: str = DEFAULT_JUDGE_PROMPT,
    ) -> None:
        if prompt not in JUDGE_PROMPTS:
            raise ValueError(f"judge prompt must be one of {tuple(JUDGE_PROMPTS)}, got {prompt!r}")
        if on_error not in ("none", "zero"):
            raise ValueError(f"judge on_error must be 'none' or 'zero', got {on_error!r}")
        if concurrency < 1:
            raise ValueError(f"judge concurrency must be >= 1, got {concurrency}")
        if max_retries < 0:
            raise ValueError(f"judge max_retries must be >= 0, got {max_retries}")
        api_key = os.environ.get(API_KEY_ENV)
        if not api_key and base_url is None:
            raise ValueError(f"the judge needs the {API_KEY_ENV} environment variable (or a --judge_base_url)")
        # Local OpenAI-compatible servers usually accept any key; the client insists on a non-empty one.
        self.__api_key = api_key or "EMPTY"
        self.model = model
        self.base_url = base_url
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.on_error = on_error
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.prompt = prompt
        self.stats = JudgeStats()
        self._cache: dict[str, float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None
        self._semaphore: asyncio.Semaphore | None = None
        self._inflight: dict[str, asyncio.Future] = {}

    def __repr__(self) -> str:  # never shows the key
        return (
            f"Judge(model={self.model!r}, base_url={self.base_url!r}, concurrency={self.concurrency}, "
            f"timeout={self.timeout}, max_retries={self.max_retries}, on_error={self.on_error!r}, "
            f"prompt={self.prompt!r})"
        )

    def __getstate__(self) -> dict:
        raise TypeError("Judge objects are not picklable (they hold an API key)")

    # -- plumbing ------------------------------------------------------------------------------------------------
    def _bind_loop(self) -> None:
        """(Re)create the client and semaphore for the running loop; httpx pools cannot cross event loops."""
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        import openai

        self._client = openai.AsyncOpenAI(
            api_key=self.__api_key, base_url=self.base_url, timeout=self.timeout, max_retries=0
        )
        self._semaphore = asyncio.Semaphore(self.concurrency)
        self._inflight = {}
        self._loop = loop

    def _backoff(self, attempt: int) -> float:
        delay = min(self.backoff_max, self.backoff_base * (2**attempt))
        return delay * (0.5 + random.random() / 2)

    @staticmethod
    def _is_retryable(exc: BaseException) -> bool:
        import openai

        if isinstance(exc, (openai.APITimeoutError, openai.APIConnectionError)):
            return True
        if isinstance(exc, openai.APIStatusError):
            return exc.status_code in _RETRYABLE_STATUS or exc.status_code >= 500
        return False

    def _messages(self, question: str, answer: str, image_b64: str | None) -> list[dict]:
        text = f" <question> {question} </question> <answer> {answer} </answer> "
        content: list[dict] = [{"type": "text", "text": text}]
        if image_b64:
            url = f"data:{image_mime(image_b64)};base64,{image_b64}"
            content.append({"type": "image_url", "image_url": {"url": url}})
        return [{"role": "system", "content": JUDGE_PROMPTS[self.prompt]}, {"role": "user", "content": content}]

    def cache_key(self, question: str, answer: str, image_b64: str | None) -> str:
        image_digest = hashlib.sha256((image_b64 or "").encode("ascii", "ignore")).hexdigest()
        payload = json.dumps([self.model, self.prompt, question, answer, image_digest], ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    # -- scoring ---------------------------------------------------------------------------------------------------
    async def score(self, question: str, answer: str, image_b64: str | None = None) -> float | None:
        """Score one answer in [0, 1]; None (or 0.0 with on_error="zero") when the judge gives no usable reply."""
        self._bind_loop()
        key = self.cache_key(question, answer, image_b64)
        if key in self._cache:
            self.stats.cache_hits += 1
            return self._cache[key]
        if key in self._inflight:  # an identical request is already on its way
            self.stats.cache_hits += 1
            return await asyncio.shield(self._inflight[key])
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await self._request(question, answer, image_b64)
            if result is not None:
                self._cache[key] = result
            else:
                result = 0.0 if self.on_error == "zero" else None
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            self._inflight.pop(key, None)

    async def _request(self, question: str, answer: str, image_b64: str | None) -> float | None:
        self.stats.requests += 1
        messages = self._messages(question, answer, image_b64)
        reason = "no attempt"
        for attempt in range(self.max_retries + 1):
            try:
                assert self._semaphore is not None
                async with self._semaphore:
                    self.stats.api_calls += 1
                    response = await self._client.chat.completions.create(
                        model=self.model,
                        messages=messages,
                        temperature=self.temperature,
                        max_tokens=self.max_tokens,
                    )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure is counted and reported below
                reason = f"{type(exc).__name__}: {getattr(exc, 'status_code', '')} {str(exc)[:200]}".strip()
                if self._is_retryable(exc) and attempt < self.max_retries:
                    self.stats.retries += 1
                    await asyncio.sleep(self._backoff(attempt))
                    continue
                break
            reply = _reply_text(response)
            score = parse_score(reply)
            if score is not None:
                return score
            reason = f"no 0-10 score in reply {reply[:80]!r}" if reply is not None else "malformed response"
            break
        self.stats.failures += 1
        logger.warning("judge gave no score after %d attempt(s): %s", attempt + 1, reason)
        return None

    async def score_many(self, items: Sequence[tuple[str, str, str | None]]) -> list[float | None]:
        """Score (question, answer, image_b64) items concurrently, results in input order."""
        return list(await asyncio.gather(*(self.score(q, a, img) for q, a, img in items)))


def _reply_text(response: Any) -> str | None:
    try:
        content = response.choices[0].message.content
    except (AttributeError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None


def make_judge_reward(judge: Judge) -> Callable[..., Any]:
    """Async TRL reward ``judge_reward``: the judge's score for answer_type "0" rows, None for other rows.

    Per call it logs ``judge/requests``, ``judge/api_calls``, ``judge/failures`` and ``judge/cache_hits`` (counts for
    this batch) through TRL's ``log_metric`` when available.
    """

    async def judge_reward(
        completions: list[Any],
        solution: list[Any],
        image: list[Any] | None = None,
        log_metric: Callable[[str, float], None] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        if len(completions) != len(solution):
            raise ValueError(f"got {len(completions)} completions but {len(solution)} solution rows")
        before = judge.stats.snapshot()
        rows: list[int] = []
        items: list[tuple[str, str, str | None]] = []
        for i, (completion, sol) in enumerate(zip(completions, solution)):
            fields = list(sol.values()) if isinstance(sol, dict) else list(sol)
            if answer_type_code(fields[0]) != OPEN_ENDED:
                continue
            question = str(fields[2]) if len(fields) > 2 and fields[2] else str((kwargs.get("problem") or [""])[i])
            image_b64 = str(fields[3]) if len(fields) > 3 and fields[3] else None
            if image_b64 is None and image is not None and image[i] is not None:
                image_b64 = encode_image(image[i])
            rows.append(i)
            items.append((question, extract_answer(completion_text(completion)), image_b64))
        rewards: list[float | None] = [None] * len(completions)
        for i, score in zip(rows, await judge.score_many(items)):
            rewards[i] = score
        if log_metric is not None and rows:
            after = judge.stats.snapshot()
            for name in ("requests", "api_calls", "failures", "cache_hits"):
                log_metric(f"judge/{name}", float(after[name] - before[name]))
        return rewards

    return judge_reward
