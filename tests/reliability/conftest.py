"""Reliability-suite helpers: running the three CLIs in-process, forked children killed with SIGKILL, a scriptable
OpenAI-compatible judge server on 127.0.0.1, and a scan for secrets in files and output."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import threading
import time
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
CORPUS = HERE / "bad_inputs"
# Names of files that, if present in an output folder, could be taken for a result.
RESULT_NAMES = {"results.json", "summary.md", "model.safetensors", "trainer_state.json", "dataset_dict.json",
                "state.json", "train_log.jsonl", "adapter_model.safetensors", "config.json"}  # fmt: skip


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The tiny model is latency-bound; one thread is much faster on the shared 2-core machine."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# ---------------------------------------------------------------------------------------------------------------
# CLI entry points, in-process
# ---------------------------------------------------------------------------------------------------------------
def call_cli(main: Callable[[list[str]], int | None], argv: list[str]) -> int:
    """Run a console-script ``main`` like the interpreter would: its return value or SystemExit code is the exit
    status. Any other exception propagates (it would be a traceback for the user)."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def entry_argv(entry: str, data: Path, out: Path, model: Path, flags: list[str]) -> tuple[Callable, list[str]]:
    """(main function, argv) of one entry point for a data file (or eval data_root)."""
    if entry.startswith("sft"):
        from tinyrs_sft.cli import main

        media = CORPUS / "media"
        if entry == "sft-check":
            return main, ["check-data", "--data_path", str(data), "--image_folder", str(media), *flags]
        flags = [f if f != "--verify_images" else "--verify_images=True" for f in flags]
        return main, ["train", "--model_id", str(model), "--data_path", str(data), "--image_folder", str(media),
                      "--output_dir", str(out), "--use_cpu", "True", "--report_to", "none", "--max_steps", "1",
                      "--per_device_train_batch_size", "1", "--dataloader_num_workers", "0", *flags]  # fmt: skip
    if entry.startswith("grpo"):
        from tinyrs_grpo.cli import main

        if entry == "grpo-check":
            return main, ["check-data", "--dataset_name", str(data), *flags]
        if entry == "grpo-build":
            return main, ["build-data", "--data_path", str(data), "--image_folder", str(CORPUS / "media"),
                          "--output_dir", str(out / "grpo_data"), *flags]  # fmt: skip
        return main, ["train", "--model_name_or_path", str(model), "--dataset_name", str(data), "--output_dir",
                      str(out), "--use_cpu", "true", "--report_to", "none", "--judge", "none", "--max_steps", "1",
                      "--per_device_train_batch_size", "2", "--num_generations", "2", "--max_completion_length", "4",
                      "--bf16", "false", *flags]  # fmt: skip
    from tinyrs_eval.cli import main

    return main, ["run", "--model_path", str(model), "--data_root", str(data.parent), "--output_dir", str(out),
                  "--max_new_tokens", "4", *flags]  # fmt: skip


def result_like_files(folder: Path) -> list[str]:
    """Files under ``folder`` that could later be taken for a result (anything but empty folders counts)."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# ---------------------------------------------------------------------------------------------------------------
# Forked children: run a function in a copy of this process and kill it with SIGKILL
# ---------------------------------------------------------------------------------------------------------------
def run_forked(
    target: Callable[[], Any],
    kill_when: Callable[[], bool] | None = None,
    timeout: float = 300.0,
    setup: Callable[[], None] | None = None,
) -> int:
    """Run ``target`` in a forked child; return its exit status (negative signal number if killed).

    ``kill_when`` is polled every 10 ms in the parent: when it returns True the child gets SIGKILL (a real kill: no
    ``finally``, no flush of Python buffers). ``setup`` runs first in the child (fault injection: monkeypatches,
    resource limits, a different user). Works because torch runs on one thread and the CPU only (no CUDA, no
    OpenMP pool crossing the fork).
    """
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # child
        code = 70
        try:
            import torch

            torch.set_num_threads(1)
            if setup is not None:
                setup()
            result = target()
            code = result if isinstance(result, int) else 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # noqa: BLE001 - report and leave with a distinctive status
            traceback.print_exc()
            code = 70
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    deadline = time.monotonic() + timeout
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            if kill_when is not None and kill_when():
                os.kill(pid, signal.SIGKILL)
                _, status = os.waitpid(pid, 0)
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() > deadline:
                raise TimeoutError(f"forked child {pid} still running after {timeout} s")
            time.sleep(0.01)
    except BaseException:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        raise


def kill_self() -> None:
    """SIGKILL this process now (fault injection inside a forked child)."""
    os.kill(os.getpid(), signal.SIGKILL)


def drop_privileges() -> None:
    """In a forked child running as root: become 'nobody' so file permissions apply (root ignores them)."""
    if os.geteuid() == 0:
        os.setgid(65534)
        os.setuid(65534)


# ---------------------------------------------------------------------------------------------------------------
# A scriptable OpenAI-compatible judge server
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class JudgeServer:
    """``behaviour(question_text, attempt) -> action`` for each POST /v1/chat/completions.

    Actions: {"content": str} (a normal reply), {"status": int}, {"delay": s, ...}, {"hang": True} (no reply until the
    test ends), {"raw": bytes} (sent as the body), {"close": True} (drop the connection without a reply).
    """

    behaviour: Callable[[str, int], dict] = lambda question, attempt: {"content": "5"}
    requests: list[dict] = field(default_factory=list)
    auth: list[str] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    actions: list[tuple[str, str]] = field(default_factory=list)  # (question, action kind)
    lock: threading.Lock = field(default_factory=threading.Lock)
    release: threading.Event = field(default_factory=threading.Event)
    base_url: str = ""

    def decide(self, body: dict, auth: str) -> tuple[str, dict]:
        question = user_text(body)
        with self.lock:
            self.requests.append(body)
            self.auth.append(auth)
            n = self.attempts.get(question, 0)
            self.attempts[question] = n + 1
        action = self.behaviour(question, n)
        with self.lock:
            kind = next((k for k in ("hang", "close", "raw", "status") if k in action), "content")
            self.actions.append((question, kind))
        return question, action


def user_text(body: dict) -> str:
    for message in body.get("messages", []):
        if message.get("role") == "user":
            content = message["content"]
            if isinstance(content, str):
                return content
            return "".join(p.get("text", "") for p in content if p.get("type") == "text")
    return ""


def _completion(content: str | None) -> bytes:
    return json.dumps({
        "id": "chatcmpl-reliability", "object": "chat.completion", "created": 0, "model": "judge",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }).encode()  # fmt: skip


def _handler(state: JudgeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            return

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            _, action = state.decide(body, self.headers.get("Authorization", ""))
            if action.get("delay"):
                state.release.wait(action["delay"])
            if action.get("hang"):
                state.release.wait(120)
                return
            if action.get("close"):
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            status = action.get("status", 200)
            payload = action.get("raw") or (
                _completion(action.get("content")) if status == 200 else b'{"error": {"message": "injected"}}'
            )
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client gave up (timeout)
                pass

    return Handler


@pytest.fixture
def judge_server():
    state = JudgeServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    yield state
    state.release.set()
    httpd.shutdown()
    httpd.server_close()


# ---------------------------------------------------------------------------------------------------------------
# Small data helpers
# ---------------------------------------------------------------------------------------------------------------
def png_bytes(color: tuple[int, int, int], size: tuple[int, int] = (56, 56)) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def save_grpo_rows(path: Path, rows: list[dict]) -> Path:
    """save_to_disk a one-split DatasetDict from rows with image bytes, problem and solution."""
    import datasets

    features = datasets.Features({"image": datasets.Image(), "problem": datasets.Value("string"),
                                  "solution": datasets.List(datasets.Value("string"))})  # fmt: skip
    datasets.DatasetDict({"train": datasets.Dataset.from_list(rows, features=features)}).save_to_disk(str(path))
    return path


def scan_for(secrets: list[str], folder: Path, text: str = "") -> list[str]:
    """Where any of ``secrets`` appears: in ``text`` or in any file under ``folder`` (bytes, all file types)."""
    hits = [f"<output>: {s[:8]}..." for s in secrets if s in text]
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits += [f"{path}: {s[:8]}..." for s in secrets if s.encode() in data]
    return hits


@pytest.fixture(scope="session")
def rel() -> types.SimpleNamespace:
    """The helpers above for test files (they cannot import conftest)."""
    return types.SimpleNamespace(
        repo_root=REPO_ROOT,
        corpus=CORPUS,
        result_names=RESULT_NAMES,
        call_cli=call_cli,
        entry_argv=entry_argv,
        result_like_files=result_like_files,
        run_forked=run_forked,
        kill_self=kill_self,
        drop_privileges=drop_privileges,
        png_bytes=png_bytes,
        save_grpo_rows=save_grpo_rows,
        scan_for=scan_for,
    )
