"""Run a module's real entry point (``python -m MODULE ARGS``) and record per-step timings, tokens and memory.

    python benchmarks/gpu/gpu_instrument.py --stats STATS.json [--trl_profiling] [--count_tokens non_padding] \
        -m tinyrs_sft.train ARGS...

The module runs unchanged, as ``python -m`` would run it (``runpy``, ``sys.argv`` set). Two hooks are installed
first: every ``transformers.Trainer`` gets a callback that times each optimizer step (with a CUDA synchronise at both
ends) and reads ``state.num_input_tokens_seen``; with ``--trl_profiling`` TRL's profiling contexts (the timers around
generation, reward scoring, ``_prepare_inputs`` and the loss) also report their durations here, per step. The stats
file is written when the module returns or fails (with the error), so a crash still leaves what was measured.
"""

from __future__ import annotations

import argparse
import functools
import json
import resource
import runpy
import sys
import time
import traceback
from collections import defaultdict
from pathlib import Path
from typing import Any


class Recorder:
    """Everything measured in this process; ``to_dict`` is what lands in the stats file."""

    def __init__(self) -> None:
        self.t_start = time.perf_counter()
        self.steps: list[dict[str, Any]] = []
        self.logs: list[dict[str, Any]] = []
        self.profile: dict[str, float] = defaultdict(float)  # this step's TRL timers, by name
        self.profile_calls: dict[str, int] = defaultdict(int)
        self.trainer_class: str | None = None
        self.trainer_info: dict[str, Any] = {}
        self.train_start_s: float | None = None
        self.train_end_s: float | None = None
        self.error: str | None = None
        self.exit_code: int | None = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.t_start

    def to_dict(self) -> dict[str, Any]:
        return {
            "trainer_class": self.trainer_class,
            "trainer_info": self.trainer_info,
            "steps": self.steps,
            "logs": self.logs,
            "train_start_s": self.train_start_s,
            "train_end_s": self.train_end_s,
            "wall_s": round(self.elapsed(), 3),
            "memory": cuda_memory(),
            "error": self.error,
            "exit_code": self.exit_code,
        }


RECORDER = Recorder()


def _cuda_sync() -> None:
    try:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.synchronize()
    except Exception:  # noqa: BLE001  (timing must never break the run it measures)
        pass


def cuda_memory() -> dict[str, Any]:
    """Peak CUDA memory of this process (GiB) when it used a GPU, and its peak resident host memory."""
    gib = 1024**3
    host = {"max_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / gib, 3)}
    try:
        import torch
    except ImportError:
        return {"device": "none", **host}
    if not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return {"device": "cpu", **host}
    return {
        **host,
        "device": torch.cuda.get_device_name(0),
        "max_allocated_gib": round(torch.cuda.max_memory_allocated() / gib, 3),
        "max_reserved_gib": round(torch.cuda.max_memory_reserved() / gib, 3),
        "total_gib": round(torch.cuda.get_device_properties(0).total_memory / gib, 3),
    }


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and value != value:  # NaN
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def make_callback(recorder: Recorder):
    """A TrainerCallback that records one entry per optimizer step."""
    from transformers import TrainerCallback

    class StepRecorder(TrainerCallback):
        def __init__(self) -> None:
            self._t0: float | None = None
            self._tokens0 = 0

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            recorder.train_start_s = round(recorder.elapsed(), 3)

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            _cuda_sync()
            recorder.profile.clear()
            recorder.profile_calls.clear()
            self._tokens0 = int(getattr(state, "num_input_tokens_seen", 0) or 0)
            self._t0 = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self._t0 is None:
                return
            _cuda_sync()
            seconds = time.perf_counter() - self._t0
            tokens_seen = int(getattr(state, "num_input_tokens_seen", 0) or 0)
            entry: dict[str, Any] = {
                "step": state.global_step,
                "seconds": round(seconds, 5),
                "tokens": tokens_seen - self._tokens0,
                "tokens_seen": tokens_seen,
            }
            if recorder.profile:
                entry["profile"] = {k: round(v, 5) for k, v in recorder.profile.items()}
                entry["profile_calls"] = dict(recorder.profile_calls)
            recorder.steps.append(entry)
            self._t0 = None

        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
            if logs:
                recorder.logs.append({"step": state.global_step, **{k: _json_safe(v) for k, v in logs.items()}})

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            recorder.train_end_s = round(recorder.elapsed(), 3)

    return StepRecorder()


def trainer_info(trainer: Any) -> dict[str, Any]:
    """What the run really used: DeepSpeed and its ZeRO stage, attention kernel, dtype, checkpointing, device."""
    info: dict[str, Any] = {}
    try:
        args = trainer.args
        info["deepspeed"] = bool(getattr(trainer, "is_deepspeed_enabled", False))
        plugin = getattr(trainer.accelerator.state, "deepspeed_plugin", None)
        info["zero_stage"] = getattr(plugin, "zero_stage", None) if plugin is not None else None
        info["bf16"] = bool(args.bf16)
        info["gradient_checkpointing"] = bool(args.gradient_checkpointing)
        info["per_device_train_batch_size"] = args.per_device_train_batch_size
        info["gradient_accumulation_steps"] = args.gradient_accumulation_steps
        info["device"] = str(args.device)
        info["world_size"] = args.world_size
        config = getattr(trainer.model, "config", None)
        info["attn_implementation"] = getattr(config, "_attn_implementation", None)
        param = next(iter(trainer.model.parameters()), None)
        info["param_dtype"] = str(param.dtype) if param is not None else None
    except Exception as exc:  # noqa: BLE001  (a description must never stop the run)
        info["error"] = f"{type(exc).__name__}: {exc}"
    return info


def install_trainer_hook(recorder: Recorder, count_tokens: str | None = None) -> None:
    """Every Trainer (and subclass) built in this process gets the step recorder.

    ``count_tokens`` ("all" or "non_padding") switches on the Trainer's own input-token counter (its command-line
    flag only takes true/false, i.e. "all"). Leave it None for TRL's GRPOTrainer, which counts prompt and completion
    tokens itself (switching the Trainer's counter on as well would count twice)."""
    import transformers

    original_init = transformers.Trainer.__init__

    @functools.wraps(original_init)
    def patched_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        recorder.trainer_class = type(self).__name__
        recorder.trainer_info = trainer_info(self)
        if count_tokens:
            self.args.include_num_input_tokens_seen = count_tokens
        self.add_callback(make_callback(recorder))

    transformers.Trainer.__init__ = patched_init


def install_trl_profiling_hook(recorder: Recorder) -> None:
    """TRL's ProfilingContext times generation, rewards and the loss; collect its durations (CUDA-synchronised)."""
    from trl.extras import profiling

    cls = profiling.ProfilingContext
    original_enter, original_log = cls.__enter__, cls._log_metrics

    def patched_enter(self: Any) -> Any:
        _cuda_sync()
        return original_enter(self)

    def patched_log(self: Any, duration: float) -> None:
        recorder.profile[self.name] += duration
        recorder.profile_calls[self.name] += 1
        original_log(self, duration)

    original_exit = cls.__exit__

    def patched_exit(self: Any, exc_type: Any, exc: Any, tb: Any) -> Any:
        _cuda_sync()
        return original_exit(self, exc_type, exc, tb)

    cls.__enter__, cls.__exit__, cls._log_metrics = patched_enter, patched_exit, patched_log


def write_stats(path: Path, recorder: Recorder) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(recorder.to_dict(), indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "-m" not in argv:
        sys.stderr.write("usage: gpu_instrument.py --stats FILE [--trl_profiling] -m MODULE [ARGS...]\n")
        return 2
    split = argv.index("-m")
    if split + 1 >= len(argv):
        sys.stderr.write("gpu_instrument.py: -m needs a module name\n")
        return 2
    parser = argparse.ArgumentParser(prog="gpu_instrument.py")
    parser.add_argument("--stats", required=True, help="JSON file written at exit")
    parser.add_argument("--trl_profiling", action="store_true", help="also collect TRL's profiling timers")
    parser.add_argument(
        "--count_tokens", choices=("all", "non_padding"), default=None, help="switch on the Trainer's token counter"
    )
    opts = parser.parse_args(argv[:split])
    module, module_args = argv[split + 1], argv[split + 2 :]
    stats = Path(opts.stats)

    code = 0
    try:
        install_trainer_hook(RECORDER, opts.count_tokens)
        if opts.trl_profiling:
            install_trl_profiling_hook(RECORDER)
        sys.argv = [module, *module_args]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        if isinstance(exc.code, int):
            code = exc.code
        elif exc.code is None:
            code = 0
        else:
            RECORDER.error = str(exc.code)
            code = 1
    except BaseException as exc:  # noqa: BLE001  (recorded, then the process fails)
        RECORDER.error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        traceback.print_exc()
        code = 1
    finally:
        RECORDER.exit_code = code
        write_stats(stats, RECORDER)
    return code


if __name__ == "__main__":
    sys.exit(main())
