"""Running the entry points: in-process like a console script, in a subprocess, in a forked child killed with
SIGKILL; torch on one thread; free ports; secrets in output."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


REPO_ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def single_torch_thread() -> Iterator[None]:
    """torch on one CPU thread inside the block, its setting restored afterwards. The tiny models are
    latency-bound: on a shared 2-core machine two threads are many times slower than one. Tests ask for the
    ``one_thread`` fixture (tests/conftest.py); module-scoped fixtures, which cannot, use this directly."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def subprocess_env(**extra: str) -> dict[str, str]:
    """This environment, offline, one CPU thread per process, plus ``extra``."""
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        WANDB_MODE="disabled",
        OMP_NUM_THREADS="1",
        **extra,
    )
    return env


def run_eval_cli(args: list[str], timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    """``python -m tinyrs_eval.run ARGS`` in a subprocess; with ``check`` a non-zero exit fails the test."""
    proc = subprocess.run(
        [sys.executable, "-m", "tinyrs_eval.run", *args],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nSTDOUT:\n{proc.stdout[-3000:]}\nSTDERR:\n{proc.stderr[-5000:]}")
    return proc


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


def drop_privileges() -> None:
    """In a forked child running as root: become 'nobody' so file permissions apply (root ignores them)."""
    if os.geteuid() == 0:
        os.setgid(65534)
        os.setuid(65534)


def result_like_files(folder: Path) -> list[str]:
    """Files under ``folder`` that could later be taken for a result (anything but empty folders counts)."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def scan_for(secrets: list[str], folder: Path, text: str = "") -> list[str]:
    """Where any of ``secrets`` appears: in ``text`` or in any file under ``folder`` (bytes, all file types)."""
    hits = [f"<output>: {s[:8]}..." for s in secrets if s in text]
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits += [f"{path}: {s[:8]}..." for s in secrets if s.encode() in data]
    return hits
