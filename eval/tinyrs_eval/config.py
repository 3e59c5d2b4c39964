"""Command-line options of ``tinyrs-eval run`` and the run name derived from them."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tinyrs_eval.constants import PROMPT_STYLES
from tinyrs_eval.errors import ConfigError
from tinyrs_eval.model_source import model_fingerprint
from tinyrs_eval.prompts import ChatTemplate


BACKEND_CHOICES = ("hf", "lmdeploy", "vllm")
DTYPE_CHOICES = ("auto", "float32", "bfloat16", "float16")
_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


def str2bool(value: str | bool) -> bool:
    """Parse true/false/1/0/yes/no (case-insensitive). The original's ``type=bool`` read "false" as True (E6)."""
    if isinstance(value, bool):
        return value
    v = str(value).strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false/1/0), got {value!r}")


def _positive_int(value: str) -> int:
    n = int(value)
    if n <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return n


@dataclass
class RunConfig:
    model_path: str
    data_root: str = "data"
    output_dir: str = "output"
    model_type: str = "hf"
    task: str = "all"
    prompt_style: str = "tinyrs"
    reasoning_config: str | None = None
    force_inference: bool = False
    allow_external_image_paths: bool = False
    batch_size: int = 8
    max_new_tokens: int = 1024
    temperature: float = 1.0
    top_p: float = 1.0
    do_sample: bool = False
    beam_size: int = 1
    use_cache: bool = True
    seed: int = 0
    limit: int | None = None
    dtype: str = "auto"
    run_name: str | None = None
    lmdeploy_engine: str = "pytorch"
    session_len: int = 8192
    tp: int = 1
    cpu_threads: int | None = None
    log_level: str = "INFO"
    dry_run: bool = False

    def generation_settings(self) -> dict[str, Any]:
        """The settings that change what the model generates (part of the run name's hash)."""
        settings: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "do_sample": self.do_sample,
            "beam_size": self.beam_size,
        }
        if self.do_sample:
            settings.update(temperature=self.temperature, top_p=self.top_p, seed=self.seed)
        return settings

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def add_run_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The flags of the original rs_evaluation.py (same meaning), plus batching, prompt style and backend options."""
    b = {"type": str2bool, "nargs": "?", "const": True, "metavar": "BOOL"}
    g = parser.add_argument_group("data and outputs")
    g.add_argument("--data_root", default="data", help="folder with the benchmark JSONs (RSRM/ScoreRS layout)")
    g.add_argument("--output_dir", default="output", help="results.json, summary.md and <run_name>/ go here")
    g.add_argument("--task", default="all", help="'all', one benchmark key, or a comma list of keys")
    g.add_argument("--limit", type=_positive_int, default=None, help="evaluate only the first N records per task")
    g.add_argument("--force_inference", default=False, help="discard cached predictions of this run name", **b)
    g.add_argument("--run_name", default=None, help="cache key (default: model path + hash of the settings)")
    g.add_argument(
        "--allow_external_image_paths",
        default=False,
        help="read images whose path leads outside --data_root (absolute or '..' paths); refused by default",
        **b,
    )
    g = parser.add_argument_group("model and prompts")
    g.add_argument("--model_type", default="hf", choices=BACKEND_CHOICES, help="inference backend")
    g.add_argument("--model_path", required=True, help="local checkpoint folder or hub id")
    g.add_argument("--prompt_style", default="tinyrs", choices=PROMPT_STYLES, help="task tags and box format")
    g.add_argument(
        "--reasoning_config", default=None, help="chat template JSON (lmdeploy format); its meta_instruction is sent"
    )
    g.add_argument("--dtype", default="auto", choices=DTYPE_CHOICES, help="auto: bf16 on GPU, float32 on CPU")
    g = parser.add_argument_group("generation")
    g.add_argument("--batch_size", type=_positive_int, default=8, help="samples per generate call, per process")
    g.add_argument("--max_new_tokens", type=_positive_int, default=1024)
    g.add_argument("--temperature", type=float, default=1.0, help="used only with --do_sample true")
    g.add_argument("--top_p", type=float, default=1.0, help="used only with --do_sample true")
    g.add_argument("--do_sample", default=False, help="sample instead of greedy decoding", **b)
    g.add_argument("--beam_size", type=_positive_int, default=1, help="beams (hf backend only)")
    g.add_argument("--use_cache", default=True, help="KV cache in hf generate", **b)
    g.add_argument("--seed", type=int, default=0, help="sampling seed")
    g = parser.add_argument_group("lmdeploy / vllm")
    g.add_argument("--lmdeploy_engine", default="pytorch", choices=("pytorch", "turbomind"))
    g.add_argument("--session_len", type=_positive_int, default=8192, help="engine context length")
    g.add_argument("--tp", type=_positive_int, default=1, help="tensor parallel GPUs per engine")
    parser.add_argument(
        "--cpu_threads", type=_positive_int, default=None, help="torch CPU threads per process (default: torch's)"
    )
    parser.add_argument(
        "--dry_run", default=False, help="check options and the data layout, load no model, write nothing", **b
    )
    parser.add_argument("--log_level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return parser


def build_run_parser(prog: str = "tinyrs-eval run") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Evaluate a checkpoint on the TinyRS benchmarks.")
    return add_run_arguments(parser)


def config_from_namespace(ns: argparse.Namespace) -> RunConfig:
    fields = RunConfig.__dataclass_fields__
    return RunConfig(**{k: v for k, v in vars(ns).items() if k in fields})


def parse_run_args(argv: list[str] | None = None) -> RunConfig:
    return config_from_namespace(build_run_parser().parse_args(argv))


def _model_identity(model_path: str) -> dict[str, Any]:
    """The resolved folder and a fingerprint of its weights, or the hub id and its commit (model_source.py)."""
    return model_fingerprint(model_path)


def _model_label(model_path: str) -> str:
    path = Path(model_path.rstrip("/\\"))
    parts = [p for p in path.parts[-2:] if p not in ("/", "\\", ".", "..", "")]
    label = "_".join(parts) or "model"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-") or "model"


def settings_fingerprint(cfg: RunConfig, template: ChatTemplate) -> dict[str, Any]:
    """Everything that changes the predictions: model (with a fingerprint of its weights), backend, dtype, prompt
    style, template, generation, and whether images outside --data_root are read (refused ones are error samples)."""
    fingerprint: dict[str, Any] = {
        "model": _model_identity(cfg.model_path),
        "model_type": cfg.model_type,
        "dtype": cfg.dtype,
        "prompt_style": cfg.prompt_style,
        "template": template.to_dict(),
        "generation": cfg.generation_settings(),
    }
    if cfg.allow_external_image_paths:
        fingerprint["external_image_paths"] = True
    return fingerprint


def make_run_name(cfg: RunConfig, template: ChatTemplate, settings: dict[str, Any] | None = None) -> str:
    """``<last two parts of the model path>-<8 hex digits>``; the hash covers settings_fingerprint(), so new weights in
    the same folder get a new run name (and are inferred again) while a rerun of the same weights resumes."""
    if cfg.run_name:
        if not re.fullmatch(r"[A-Za-z0-9._-]+", cfg.run_name):
            raise ConfigError(f"--run_name may only contain letters, digits, '.', '_' and '-': {cfg.run_name!r}")
        return cfg.run_name
    if settings is None:
        settings = settings_fingerprint(cfg, template)
    blob = json.dumps(settings, sort_keys=True, ensure_ascii=False)
    return f"{_model_label(cfg.model_path)}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"
