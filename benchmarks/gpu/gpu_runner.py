"""Running one step of the GPU check: a subprocess in its own process group, its log, its time limit."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class StepResult:
    status: str  # ok, failed, timeout, skipped
    seconds: float = 0.0
    timeout_s: float | None = None
    command: str | None = None
    returncode: int | None = None
    error: str | None = None
    log: str | None = None
    log_tail: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if v is not None and v != {}}
        d["seconds"] = round(self.seconds, 2)
        return d


def tail(text: str, n: int) -> str:
    return text if len(text) <= n else "..." + text[-n:]


def last_error_line(text: str) -> str | None:
    """The last line of a log that looks like an exception or error message."""
    markers = ("Error", "Exception", "error:", "Traceback", "Killed", "FAILED")
    for line in reversed(text.splitlines()):
        stripped = line.strip()
        if stripped and any(m in stripped for m in markers) and not stripped.startswith("warnings.warn"):
            return stripped[:500]
    return None


def run_command(
    command: list[str] | str,
    log_path: Path,
    timeout_s: float,
    env: dict[str, str] | None = None,
    cwd: Path = REPO_ROOT,
) -> StepResult:
    """Run ``command`` in its own process group, output to ``log_path``; kill the group at the time limit."""
    if isinstance(command, str):
        argv = ["bash", "-c", command]
        shown = command
    else:
        argv = [str(c) for c in command]
        shown = shlex.join(argv)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    status, rc = "ok", None
    with log_path.open("w", encoding="utf-8") as log:
        log.write(f"$ {shown}\n")
        log.flush()
        try:
            proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
            )
        except OSError as exc:
            return StepResult("failed", time.perf_counter() - t0, timeout_s, shown, None, f"cannot start: {exc}")
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            status = "timeout"
            _kill_group(proc)
            rc = proc.returncode
    seconds = time.perf_counter() - t0
    text = log_path.read_text(encoding="utf-8", errors="replace")
    result = StepResult(status, seconds, timeout_s, shown, rc, log=str(log_path))
    if status == "timeout":
        result.error = f"timed out after {timeout_s:.0f} s"
        result.log_tail = tail(text, 2500)
    elif rc != 0:
        result.status = "failed"
        result.error = last_error_line(text) or f"exit status {rc}"
        result.log_tail = tail(text, 2500)
    else:
        result.log_tail = tail(text, 400)
    return result


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM the step's process group (it was started in its own session), SIGKILL it if it lingers."""
    for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
