"""The GRPO judge against a local OpenAI-compatible server that fails in every way the issue lists: HTTP errors,
timeouts, hangs, malformed JSON, scores outside 0-10, dropped connections. Scoring goes on, failed rows get None
(or 0.0 with on_error=zero), failures are counted, and every score belongs to its own sample: the server's reply
is a function of the question it was sent, and replies arrive out of order."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import random
import re
from pathlib import Path

import pytest

from helpers import call_cli, png_bytes, save_grpo_dataset, scan_for


FAULTS = ["ok", "error500", "429_then_ok", "hang", "malformed_json", "out_of_range", "close", "ok_slow"]
FAILING = {"error500", "hang", "malformed_json", "out_of_range", "close"}


def question_number(text: str) -> int:
    match = re.search(r"question-(\d+)", text)
    assert match, text
    return int(match.group(1))


def expected_score(n: int) -> float:
    return (n * 7 % 11) / 10.0  # 0..10 -> 0..1, different for neighbours


def faulty(question: str, attempt: int) -> dict:
    n = question_number(question)
    kind = FAULTS[n % len(FAULTS)]
    delay = random.Random(n).uniform(0, 0.15)  # replies come back out of order
    if kind == "error500":
        return {"status": 500}
    if kind == "429_then_ok" and attempt == 0:
        return {"status": 429}
    if kind == "hang":
        return {"hang": True}
    if kind == "malformed_json":
        return {"raw": b'{"choices": [{"message": {"content": "7"'}
    if kind == "out_of_range":
        return {"content": str(11 + n % 5)}
    if kind == "close":
        return {"close": True}
    if kind == "ok_slow":
        delay += 0.3
    return {"content": f"Score: {n * 7 % 11}", "delay": delay}


@pytest.mark.parametrize("on_error", ["none", "zero"])
def test_judge_faults_are_contained_and_never_misattributed(openai_server, monkeypatch, on_error: str) -> None:
    from tinyrs_grpo.judge import Judge

    monkeypatch.setenv("OPENAI_API_KEY", "sk-rel-judge-test")
    openai_server.behaviour = faulty
    # timeout 1 s: "ok_slow" replies take up to 0.45 s, which left 50 ms of slack under 0.5 s and timed out (a retry,
    # 2 attempts where 1 is expected) in about one run in three on the shared 2-core machine.
    judge = Judge(model="judge", base_url=openai_server.base_url, concurrency=8, timeout=1.0, max_retries=1,
                  backoff_base=0.01, backoff_max=0.02, on_error=on_error)  # fmt: skip
    items = [(f"question-{n}", f"answer to {n}", None) for n in range(48)]
    scores = asyncio.run(judge.score_many(items))
    failed_value = None if on_error == "none" else 0.0
    for n, score in enumerate(scores):
        kind = FAULTS[n % len(FAULTS)]
        if kind in FAILING:
            assert score == failed_value, (n, kind, score)
        else:
            assert score == pytest.approx(expected_score(n)), (n, kind, score)  # its own reply, not a neighbour's
    n_failing = sum(FAULTS[n % len(FAULTS)] in FAILING for n in range(48))
    assert judge.stats.failures == n_failing
    assert judge.stats.requests == 48
    assert judge.stats.retries >= 6  # 429s and retryable failures were retried
    # malformed JSON and out-of-range scores are not retried; 5xx, hangs (timeouts) and dropped connections are
    per_question = openai_server.attempts
    for n in range(48):
        kind = FAULTS[n % len(FAULTS)]
        expected_attempts = {"malformed_json": 1, "out_of_range": 1, "ok": 1, "ok_slow": 1}.get(kind, 2)
        assert per_question[f" <question> question-{n} </question> <answer> answer to {n} </answer> "] == (
            expected_attempts
        ), (n, kind)


SECRETS = {
    "OPENAI_API_KEY": "sk-rel-SECRET-9f1c2e7a55",
    "HF_TOKEN": "hf_relSECRETtoken8d3b",
    "WANDB_API_KEY": "wandb-rel-SECRET-42aa",
}

REWARD = """
def varying_reward(completions, **kwargs):
    texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
    return [float(len(t) % 5) / 4.0 for t in texts]
"""


def test_grpo_training_survives_a_faulty_judge_and_leaks_no_secret(
    tiny_model_dir, openai_server, tmp_path, monkeypatch, capfd, caplog
) -> None:
    """Two GRPO steps with the judge on open-ended rows whose server fails for some questions: training finishes,
    failures are counted in the metrics log, each logged completion's judge reward is its own question's score or
    None; and no secret from the environment is in any file written or anything printed or logged."""
    from tinyrs_grpo.cli import main

    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "rel_judge_rewards.py").write_text(REWARD)
    monkeypatch.syspath_prepend(str(tmp_path))

    def behaviour(question: str, attempt: int) -> dict:
        n = question_number(question)
        return {"status": 500} if n % 3 == 1 else {"raw": b"not json"} if n % 3 == 2 else {"content": str(n * 7 % 11)}

    openai_server.behaviour = behaviour
    rows = []
    for n in range(6):
        png = png_bytes((40 * n, 90, 200 - 30 * n))
        question = f"Describe question-{n}."
        rows.append({"image": {"bytes": png, "path": None}, "problem": question,
                     "solution": ["0", "", question, base64.b64encode(png).decode()]})  # fmt: skip
    data = save_grpo_dataset(tmp_path / "data", rows)
    out = tmp_path / "out"
    argv = ["train", "--model_name_or_path", str(tiny_model_dir), "--dataset_name", str(data), "--output_dir",
            str(out), "--use_cpu", "true", "--bf16", "false", "--report_to", "none", "--judge", "openai",
            "--judge_base_url", openai_server.base_url, "--judge_model", "judge", "--judge_timeout", "2",
            "--judge_max_retries", "0", "--reward_funcs", "accuracy", "rel_judge_rewards.varying_reward",
            "--per_device_train_batch_size", "4", "--num_generations", "2", "--max_completion_length", "8",
            "--max_pixels", str(56 * 56), "--max_steps", "2", "--save_steps", "1", "--logging_steps", "1",
            "--log_completions", "true", "--seed", "0", "--disable_tqdm", "true"]  # fmt: skip
    with caplog.at_level("DEBUG"):
        assert call_cli(main, argv) == 0
    printed = capfd.readouterr()
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    steps = [r for r in log if "reward" in r]
    assert [r["step"] for r in steps] == [1, 2]  # training went on
    failures = sum(r.get("judge/failures", 0) for r in steps)
    asked = {question_number(q) for q in openai_server.attempts}
    assert failures == 2 * sum(n % 3 != 0 for n in asked)  # 2 completions per prompt, each a failed request
    assert all(h == f"Bearer {SECRETS['OPENAI_API_KEY']}" for h in openai_server.auth_headers)  # the key was used...

    import pandas as pd

    tables = [pd.read_parquet(p) for p in sorted((out / "completions").glob("*.parquet"))]
    table = pd.concat(tables)
    column = next(c for c in table.columns if "accuracy" in c)
    checked = 0
    for _, row in table.iterrows():
        n = question_number(str(row["prompt"]))
        value = row[column]
        if n % 3 == 0:
            assert value == pytest.approx(expected_score(n)), (n, value)
        else:
            assert value is None or (isinstance(value, float) and math.isnan(value)), (n, value)
        checked += 1
    assert checked == 8

    # ...and appears nowhere: files (checkpoints, training_args.bin, configs, logs, parquet), stdout, stderr, logs
    text = printed.out + printed.err + caplog.text
    hits = scan_for(list(SECRETS.values()), out, text)
    assert hits == [], hits
    # the run met real judge failures and still trained to the end: the final model was saved
    assert failures > 0 and (out / "model.safetensors").is_file()


def test_eval_run_leaks_no_secret(tiny_model_dir, demo_data_dir, tmp_path, monkeypatch, capfd, caplog) -> None:
    from tinyrs_eval.run import cli as main

    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "out"
    argv = ["--model_path", str(tiny_model_dir), "--data_root", str(demo_data_dir / "eval"), "--output_dir",
            str(out), "--task", "cls_aid,rs_vg", "--limit", "2", "--max_new_tokens", "4"]  # fmt: skip
    with caplog.at_level("DEBUG"):
        assert main(argv) == 0
    from tinyrs_eval.report import main as report_main

    run_dir = next(p for p in out.iterdir() if p.is_dir())
    assert report_main([str(run_dir), "--output", str(out / "report.html")]) == 0
    printed = capfd.readouterr()
    assert (out / "report.html").is_file()
    hits = scan_for(list(SECRETS.values()), out, printed.out + printed.err + caplog.text)
    assert hits == [], hits
    assert Path(out / "results.json").is_file()
