"""GRPO test helpers: a local OpenAI-compatible chat server and tiny GRPO datasets."""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest


REASONING_PREFIX = "A conversation between User and Assistant."


# ---------------------------------------------------------------------------------------------------------------
# A small OpenAI-compatible /v1/chat/completions server on 127.0.0.1
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class Reply:
    """What the fake server does for one request."""

    status: int = 200
    content: str | None = "7"  # chat message content; ignored when raw_body is set
    delay: float = 0.0
    raw_body: bytes | None = None  # e.g. garbage that is not JSON


@dataclass
class FakeOpenAIServer:
    """Records requests; ``behaviour(request_json, attempt_no_for_this_question) -> dict`` decides the answers.

    The dict holds ``Reply`` fields: status (200), content ("7"), delay (0 s), raw_body (bytes sent as is).
    """

    behaviour: Callable[[dict, int], dict] = lambda req, n: {}
    requests: list[dict] = field(default_factory=list)
    auth_headers: list[str] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    base_url: str = ""

    def handle(self, body: dict, auth: str) -> Reply:
        question = question_of(body)
        with self.lock:
            self.requests.append(body)
            self.auth_headers.append(auth)
            n = self.attempts.get(question, 0)
            self.attempts[question] = n + 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            reply = Reply(**self.behaviour(body, n))
            if reply.delay:
                time.sleep(reply.delay)
            return reply
        finally:
            with self.lock:
                self.in_flight -= 1


def question_of(body: dict) -> str:
    """The text part of the user message the judge sent."""
    for message in body.get("messages", []):
        if message.get("role") == "user":
            content = message["content"]
            if isinstance(content, str):
                return content
            return "".join(p.get("text", "") for p in content if p.get("type") == "text")
    return ""


def chat_completion(content: str | None) -> dict:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "judge-test",
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}},
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _make_handler(server_state: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep test output quiet
            return

        def do_POST(self) -> None:  # noqa: N802 - http.server API
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            reply = server_state.handle(body, self.headers.get("Authorization", ""))
            if reply.raw_body is not None:
                payload = reply.raw_body
            elif reply.status == 200:
                payload = json.dumps(chat_completion(reply.content)).encode()
            else:
                payload = json.dumps({"error": {"message": f"status {reply.status}", "type": "test"}}).encode()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                pass

    return Handler


@pytest.fixture
def openai_server():
    """Start a fake OpenAI-compatible server; set ``server.behaviour`` to script its replies.

    ``server.question_of(request_json)`` returns the text the judge sent.
    """
    state = FakeOpenAIServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(state))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    state.question_of = question_of
    yield state
    httpd.shutdown()
    httpd.server_close()


# ---------------------------------------------------------------------------------------------------------------
# Tiny GRPO datasets
# ---------------------------------------------------------------------------------------------------------------
def png_bytes(color: tuple[int, int, int] = (40, 120, 60), size: tuple[int, int] = (56, 56)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def grpo_row(answer_type: Any, answer: str, problem: str = "{VQA} Is there a ship?", color=(40, 120, 60)) -> dict:
    data = png_bytes(color)
    return {
        "image": {"bytes": data, "path": None},
        "problem": problem,
        "solution": [str(answer_type), answer, problem, base64.b64encode(data).decode("ascii")],
    }


def save_grpo_dataset(path: Path, rows: list[dict], test_rows: list[dict] | None = None) -> Path:
    """save_to_disk a DatasetDict (train, optional test) of rows built with ``grpo_row`` (no prompt column)."""
    import datasets

    features = datasets.Features(
        {
            "image": datasets.Image(),
            "problem": datasets.Value("string"),
            "solution": datasets.List(datasets.Value("string")),
        }
    )
    splits = {"train": datasets.Dataset.from_list(rows, features=features)}
    if test_rows:
        splits["test"] = datasets.Dataset.from_list(test_rows, features=features)
    datasets.DatasetDict(splits).save_to_disk(str(path))
    return path


def noisy_png(seed: int = 0, size: int = 56) -> bytes:
    """A PNG of random pixels: its compressed data is long enough to damage in the middle."""
    import random

    from PIL import Image

    rnd = random.Random(seed)
    image = Image.frombytes("RGB", (size, size), bytes(rnd.randrange(256) for _ in range(size * size * 3)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def damaged_png(seed: int = 0) -> bytes:
    """A complete PNG (header and IEND intact) with broken compressed data: only a full decode notices."""
    data = bytearray(noisy_png(seed))
    start = data.index(b"IDAT") + 40
    for k in range(start, start + 40):
        data[k] ^= 0xFF
    return bytes(data)


def write_json_dataset(folder: Path, images: dict[str, bytes], names: list[str]) -> Path:
    """``folder/grpo.json`` whose record i points at ``names[i]`` and asks "{VQA} question i?" (answer "yes");
    the files in ``images`` are written first."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in images.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    records = [
        {"image": name, "problem": f"{{VQA}} question {i}?", "solution": ["1", "yes", f"question {i}", ""]}
        for i, name in enumerate(names)
    ]
    path = folder / "grpo.json"
    path.write_text(json.dumps(records))
    return path


class GrpoData:
    """Dataset helpers handed to tests through the ``grpo_data`` fixture (tests cannot import conftest)."""

    png_bytes = staticmethod(png_bytes)
    noisy_png = staticmethod(noisy_png)
    damaged_png = staticmethod(damaged_png)
    row = staticmethod(grpo_row)
    save = staticmethod(save_grpo_dataset)
    json_dataset = staticmethod(write_json_dataset)


@pytest.fixture(scope="session")
def grpo_data() -> type[GrpoData]:
    return GrpoData


@pytest.fixture
def mixed_grpo_dir(tmp_path: Path) -> Path:
    """Eight rows: exact, box and open-ended answers, distinct images."""
    rows = [
        grpo_row("1", "yes", "{VQA} Is there a ship?", (10, 20, 30)),
        grpo_row(2, "[[100, 100, 400, 400]]", "{VG} the storage tank", (200, 20, 30)),
        grpo_row("0", "", "Describe the image.", (10, 200, 30)),
        grpo_row("1", "forest", "{CLS} Classify the image.", (10, 20, 200)),
        grpo_row("0", "", "What is happening here?", (90, 90, 90)),
        grpo_row(1, "3", "{VQA} How many buildings?", (150, 150, 20)),
        grpo_row("2", "[[0, 0, 500, 500]]", "{VG} the road", (20, 150, 150)),
        grpo_row("0", "", "Write a caption.", (150, 20, 150)),
    ]
    return save_grpo_dataset(tmp_path / "mixed_grpo", rows)
