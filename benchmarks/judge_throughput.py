"""Judge throughput: the concurrent tinyrs_grpo judge against the original's one-call-at-a-time judge.

A local OpenAI-compatible server on 127.0.0.1 (``tinyrs_demo.fake_openai``, the tests' fake server) answers every
chat request after a fixed delay (200 ms by default) with a score derived from the question, so both judges must
return identical scores. The "original" path mirrors TinyRS grpo.py: a new synchronous ``openai.OpenAI`` client per
completion, one request at a time, first number of the reply divided by 10.

    python benchmarks/judge_throughput.py                       # 64 completions, 200 ms, concurrency 16
    python benchmarks/judge_throughput.py --n 128 --delay 0.5 --concurrency 32
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import time
from collections.abc import Callable

import openai

from tinyrs_demo.fake_openai import serve_openai
from tinyrs_grpo.judge import Judge


def _score_for(text: str) -> str:
    return str(int(hashlib.sha256(text.encode()).hexdigest(), 16) % 11)


def fixed_latency(delay: float) -> Callable[[str, int], dict]:
    """The server's behaviour: every request waits ``delay`` seconds, then gets the question's score."""
    return lambda question, attempt: {"delay": delay, "content": _score_for(question)}


def original_sequential(items: list[tuple[str, str, str]], base_url: str, model: str) -> list[float]:
    """The original judge loop: new client per call, sequential, first number / 10, clamped."""
    scores = []
    for question, answer, image_b64 in items:
        client = openai.OpenAI(api_key=os.environ.get("OPENAI_API_KEY", "EMPTY"), base_url=base_url)
        response = client.chat.completions.create(
            model=model,
            messages=[
                {"role": "system", "content": "grade 0-10"},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": f" <question> {question} </question> <answer> {answer} </answer> "},
                        {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{image_b64}"}},
                    ],
                },
            ],  # fmt: skip
            temperature=0.2,
        )
        match = re.search(r"\d+(\.\d+)?", response.choices[0].message.content or "")
        scores.append(min(max(float(match.group()) / 10, 0.0), 1.0) if match else 0.0)
        client.close()
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=64, help="completions to grade")
    parser.add_argument("--delay", type=float, default=0.2, help="server latency per request (s)")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()

    items = [(f"Describe the scene in image {i}.", f"answer number {i}", "aW1hZ2U=") for i in range(args.n)]
    with serve_openai(fixed_latency(args.delay)) as server:
        start = time.perf_counter()
        sequential = original_sequential(items, server.base_url, "judge-bench")
        t_sequential = time.perf_counter() - start

        judge = Judge(model="judge-bench", base_url=server.base_url, concurrency=args.concurrency, max_retries=0)
        start = time.perf_counter()
        concurrent = asyncio.run(judge.score_many(items))
        t_concurrent = time.perf_counter() - start

    identical = sequential == concurrent
    result = {
        "completions": args.n,
        "server_delay_s": args.delay,
        "concurrency": args.concurrency,
        "sequential_s": round(t_sequential, 3),
        "concurrent_s": round(t_concurrent, 3),
        "speedup": round(t_sequential / t_concurrent, 1),
        "identical_scores": identical,
        "server_max_in_flight": server.max_in_flight,
        "judge_stats": judge.stats.snapshot(),
    }
    print(json.dumps(result, indent=1))
    if not identical:
        raise SystemExit("scores differ between the sequential and the concurrent judge")


if __name__ == "__main__":
    main()
