"""Errors that stop a run with a one-line message (the CLI prints it; no traceback)."""


class EvalError(Exception):
    """Base class: bad input or an unusable setup, reported as ``error: <message>``."""


class BenchmarkError(EvalError, ValueError):
    """Missing benchmark file or image folder, malformed record, unknown task key."""


class ConfigError(EvalError, ValueError):
    """Bad option value, chat template file or cached predictions that do not match the benchmark."""


class BackendUnavailable(EvalError, RuntimeError):
    """The chosen backend cannot run here (package missing, no CUDA)."""
