"""The one helpers package of the test suite: every test imports what it needs as ``from helpers import ...``
(pytest puts tests/ on the import path: ``pythonpath`` in pyproject.toml). Fixtures live in conftest.py files;
helper functions and classes live here, one module per concern:

- files: images, SFT records and files, GRPO rows and datasets, JSON lines
- processes: console-script calls in-process, subprocesses, forked children killed with SIGKILL, one torch thread
- entry_points: argument lists for every entry point, an in-process SFT run
- the fake OpenAI-compatible chat server is ``tinyrs_demo.fake_openai`` (the benchmarks use it too), re-exported
  here; tests ask for the fixture ``openai_server`` of tests/conftest.py
- fakes: a fake inference backend and a fake lmdeploy package
- prompts: chat prompts rendered with a processor (tests/gpu)
- scenes: one-object scenes, SFT on them and greedy answers for the overfit tests (tests/learning)
- data_format: validators of docs/data-format.md and answer-versus-pixel checks for the demo data and
  tests/fixtures (imported as ``from helpers.data_format import ...``; registered for assertion rewriting)
"""

import pytest

from tinyrs_demo.fake_openai import FakeOpenAIServer, Reply, chat_completion, question_of, serve_openai

from .entry_points import BAD_INPUTS, entry_argv, run_sft
from .fakes import FakeBackend, FakeLmdeploy
from .files import (
    damaged_png,
    grpo_row,
    make_image,
    noisy_png,
    png_bytes,
    save_grpo_dataset,
    sft_record,
    simple_record,
    write_json,
    write_json_dataset,
)
from .processes import (
    REPO_ROOT,
    call_cli,
    drop_privileges,
    free_port,
    result_like_files,
    run_eval_cli,
    run_forked,
    scan_for,
    single_torch_thread,
    subprocess_env,
)
from .prompts import chat_texts
from .scenes import cell_box, draw_scene, greedy_answers, grid_answer, sft_train


# Before anything imports it: its asserts then report the compared values, as they did in a test module.
pytest.register_assert_rewrite("helpers.data_format")


__all__ = [
    "sft_train",
    "grid_answer",
    "greedy_answers",
    "draw_scene",
    "cell_box",
    "BAD_INPUTS",
    "REPO_ROOT",
    "FakeBackend",
    "FakeLmdeploy",
    "FakeOpenAIServer",
    "Reply",
    "call_cli",
    "chat_completion",
    "chat_texts",
    "damaged_png",
    "drop_privileges",
    "entry_argv",
    "free_port",
    "grpo_row",
    "make_image",
    "noisy_png",
    "png_bytes",
    "question_of",
    "result_like_files",
    "run_eval_cli",
    "run_forked",
    "run_sft",
    "save_grpo_dataset",
    "scan_for",
    "serve_openai",
    "sft_record",
    "simple_record",
    "single_torch_thread",
    "subprocess_env",
    "write_json",
    "write_json_dataset",
]
