"""A fake OpenAI-compatible server on 127.0.0.1: POST /v1/chat/completions with scriptable replies.

The one fake server of the repository: the judge and OpenAI tests use it (the ``openai_server`` fixture of
tests/conftest.py) and so does benchmarks/judge_throughput.py. ``server.behaviour(question, attempt)`` returns a dict
of ``Reply`` fields for each request, where ``question`` is the text of the user message and ``attempt`` counts
earlier requests with the same text (0 for the first); a fixed latency is ``{"delay": seconds, ...}`` on every reply.
The server records every request body and Authorization header, counts attempts per question and the most requests
it held at once. Standard library only.

    with serve_openai(lambda question, attempt: {"content": "7", "delay": 0.2}) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="x")
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """What the server does with one request (a behaviour returns these fields as a dict; unknown keys fail)."""

    content: str | None = "7"  # the assistant message of a 200 reply
    status: int = 200  # any other status sends a JSON error body
    delay: float = 0.0  # seconds to wait before replying (cut short when the server stops)
    raw: bytes | None = None  # sent as the body instead of a chat completion (e.g. text that is not JSON)
    hang: bool = False  # never reply (until the server stops): the client times out
    close: bool = False  # drop the connection without a reply


def question_of(body: dict) -> str:
    """The text parts of the first user message of a chat request."""
    for message in body.get("messages", []):
        if message.get("role") == "user":
            content = message["content"]
            if isinstance(content, str):
                return content
            return "".join(p.get("text", "") for p in content if p.get("type") == "text")
    return ""


def chat_completion(content: str | None, model: str = "judge-test") -> bytes:
    """The JSON body of a one-choice chat completion."""
    return json.dumps({
        "id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }).encode()  # fmt: skip


@dataclass
class FakeOpenAIServer:
    """The server's state: set ``behaviour``; read ``requests``, ``auth_headers``, ``attempts``, ``max_in_flight``."""

    behaviour: Callable[[str, int], dict] = lambda question, attempt: {}
    requests: list[dict] = field(default_factory=list)
    auth_headers: list[str] = field(default_factory=list)
    attempts: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0
    base_url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)

    question_of = staticmethod(question_of)

    def decide(self, body: dict, auth: str) -> Reply:
        """Record one request and return what to do with it."""
        question = question_of(body)
        with self.lock:
            self.requests.append(body)
            self.auth_headers.append(auth)
            attempt = self.attempts.get(question, 0)
            self.attempts[question] = attempt + 1
        return Reply(**self.behaviour(question, attempt))

    def _enter(self) -> None:
        with self.lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self.lock:
            self.in_flight -= 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a burst of concurrent judge calls is queued, not refused


def _handler(state: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep test output quiet
            return

        def do_POST(self) -> None:  # noqa: N802 - http.server API
            length = int(self.headers.get("Content-Length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            state._enter()
            try:
                reply = state.decide(body, self.headers.get("Authorization", ""))
                if reply.delay:
                    state.stopping.wait(reply.delay)
                if reply.hang:
                    state.stopping.wait(120)
                    return
            finally:
                state._leave()
            if reply.close:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            if reply.raw is not None:
                payload = reply.raw
            elif reply.status == 200:
                payload = chat_completion(reply.content, body.get("model", "judge-test"))
            else:
                payload = json.dumps({"error": {"message": f"status {reply.status}", "type": "test"}}).encode()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client timed out and left
                pass

    return Handler


@contextlib.contextmanager
def serve_openai(behaviour: Callable[[str, int], dict] | None = None) -> Iterator[FakeOpenAIServer]:
    """Run a ``FakeOpenAIServer`` on a free port of 127.0.0.1 for the ``with`` block; ``base_url`` ends in /v1."""
    state = FakeOpenAIServer()
    if behaviour is not None:
        state.behaviour = behaviour
    httpd = _Server(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    try:
        yield state
    finally:
        state.stopping.set()
        httpd.shutdown()
        httpd.server_close()
