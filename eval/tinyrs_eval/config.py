"""Options of ``tinyrs-eval run``: the ``RunConfig`` schema (help, group and checks in each field's metadata), the
parser built from it (transformers' ``HfArgumentParser``, as in tinyrs-sft and tinyrs-grpo), YAML recipes
(``--config``), and the run name derived from the options.

``--config recipe.yaml`` gives defaults (keys are the flag names without ``--``; an unknown key is an error), flags
on the command line override them, as in tinyrs-sft: ``--config`` is read first and the recipe's values, each checked
as its flag would be, become the parser's defaults. The model flag carries TRL's name, ``--model_name_or_path``, as
in tinyrs-sft and tinyrs-grpo; the seed README's ``--model_path`` stays accepted as an alias (logged once), in recipes
too, and so is ``--dataset_name`` for ``--data_root``. Abbreviated and unknown flags are refused with the nearest
flag suggested.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import sys
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml
from transformers.hf_argparser import HfArgumentParser

from tinyrs_eval import __version__
from tinyrs_eval.benchmarks import parse_tasks
from tinyrs_eval.cliargs import (
    BOOL_FLAG,
    StrictArgumentParser,
    UsageError,
    canonical_keys,
    rewrite_aliases,
    str2bool,
    unknown_flags_message,
)
from tinyrs_eval.constants import PROMPT_STYLES
from tinyrs_eval.errors import ConfigError, EvalError
from tinyrs_eval.model_source import model_fingerprint
from tinyrs_eval.prompts import ChatTemplate


__all__ = ["RunConfig", "make_run_name", "parse_run_args", "settings_fingerprint", "str2bool"]

logger = logging.getLogger("tinyrs_eval")

BACKEND_CHOICES = ("hf", "lmdeploy", "vllm")
DTYPE_CHOICES = ("auto", "float32", "bfloat16", "float16")
RUN_NAME_RE = r"[A-Za-z0-9._-]+"
# The seed README's names -> the canonical ones (TRL's where TRL has one).
ALIASES = {"--model_path": "--model_name_or_path", "--dataset_name": "--data_root"}


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return n


def _option(default: Any = MISSING, *, group: str, help: str = "", **extra: Any) -> Any:
    """A RunConfig field: its flag's help text, help group and argparse extras (choices, type, aliases)."""
    return field(default=default, metadata={"group": group, "help": help, **extra})


DATA, MODEL, GENERATION, ENGINE, RUN = "data and outputs", "model and prompts", "generation", "lmdeploy / vllm", "run"


@dataclass
class RunConfig:
    """Every option of ``tinyrs-eval run`` (one flag per field, same name)."""

    model_name_or_path: str = _option(group=MODEL, help="local checkpoint folder or hub id", aliases=["--model_path"])
    data_root: str = _option(
        "data",
        group=DATA,
        help="folder with the benchmark JSONs (RSRM/ScoreRS layout)",
        aliases=["--dataset_name"],
    )
    output_dir: str = _option("output", group=DATA, help="results.json, summary.md and <run_name>/ go here")
    model_type: str = _option("hf", group=MODEL, help="inference backend", choices=BACKEND_CHOICES)
    task: str = _option(
        "all",
        group=DATA,
        help="'all', a benchmark key or file stem (cls_aid, cls_AID, rs_vg, VG_DOIR_RSVG_test, ...; any case), or "
        "a comma list of them",
    )
    prompt_style: str = _option("tinyrs", group=MODEL, help="task tags and box format", choices=PROMPT_STYLES)
    reasoning_config: str | None = _option(
        None, group=MODEL, help="chat template JSON (lmdeploy format); its meta_instruction is sent"
    )
    force_inference: bool = _option(False, group=DATA, help="discard cached predictions of this run name")
    allow_external_image_paths: bool = _option(
        False,
        group=DATA,
        help="read images whose path leads outside --data_root (absolute or '..' paths); refused by default",
    )
    batch_size: int = _option(8, group=GENERATION, help="samples per generate call, per process", type=_positive_int)
    max_new_tokens: int = _option(1024, group=GENERATION, help="generated tokens per answer", type=_positive_int)
    temperature: float = _option(1.0, group=GENERATION, help="used only with --do_sample true")
    top_p: float = _option(1.0, group=GENERATION, help="used only with --do_sample true")
    do_sample: bool = _option(False, group=GENERATION, help="sample instead of greedy decoding")
    beam_size: int = _option(1, group=GENERATION, help="beams (hf backend only)", type=_positive_int)
    use_cache: bool = _option(True, group=GENERATION, help="KV cache in hf generate")
    seed: int = _option(0, group=GENERATION, help="sampling seed")
    limit: int | None = _option(
        None, group=DATA, help="evaluate only the first N records per task", type=_positive_int
    )
    dtype: str = _option("auto", group=MODEL, help="auto: bf16 on GPU, float32 on CPU", choices=DTYPE_CHOICES)
    run_name: str | None = _option(
        None, group=DATA, help="cache key (default: model path + hash of the settings); letters, digits, . _ -"
    )
    lmdeploy_engine: str = _option("pytorch", group=ENGINE, help="engine config", choices=("pytorch", "turbomind"))
    session_len: int = _option(8192, group=ENGINE, help="engine context length", type=_positive_int)
    tp: int = _option(1, group=ENGINE, help="tensor parallel GPUs per engine", type=_positive_int)
    cpu_threads: int | None = _option(
        None, group=RUN, help="torch CPU threads per process (default: torch's)", type=_positive_int
    )
    log_level: str = _option("INFO", group=RUN, help="logging level", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    dry_run: bool = _option(False, group=RUN, help="check options and the data layout, load no model, write nothing")

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


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Defaults in the help text (when there is one), examples kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default not in (None, argparse.SUPPRESS) and not action.required and "default" not in text:
            text += f" (default: {action.default})"
        return text


EXAMPLES = """examples:
  tinyrs-eval run --config eval/configs/tinyrs_reasoning.yaml --model_name_or_path aybora/Qwen2-VL-TinyRS-R1 \\
      --data_root ../scorers_datasets_eval
  tinyrs-eval run --model_name_or_path CKPT --data_root DATA --task cls_AID,rs_vg --model_type hf

exit status: 0 done, 1 bad data or a failed run (also a dry run that found problems), 2 a usage error"""


class RunArgumentParser(HfArgumentParser, StrictArgumentParser):
    """transformers' ``HfArgumentParser`` over ``RunConfig`` with the conventions of every TinyRS command.

    ``HfArgumentParser`` reads the dataclass (type hints, defaults, required fields) and builds ``RunConfig`` in
    ``parse_args_into_dataclasses``; ``StrictArgumentParser`` refuses abbreviations and ends a usage error in one line
    (exit 2). Each field's flag is added here rather than by transformers, which would add a ``--kebab-case`` twin
    and a ``--no_<flag>`` complement and put ``metadata["type"]`` aside: the field goes into the help group named in
    its metadata, a boolean takes ``BOOL_FLAG``'s words (TRL's), and ``type``/``choices``/``aliases`` come from the
    metadata.
    """

    def __init__(self, prog: str = "tinyrs-eval run") -> None:
        self._field_groups: dict[str, argparse._ArgumentGroup] = {}
        super().__init__(  # the fields are added below, after --config and --version (first in the usage line)
            prog=prog,
            description="Evaluate a checkpoint on the TinyRS benchmarks.",
            epilog=EXAMPLES,
            formatter_class=_HelpFormatter,
            allow_abbrev=False,
        )
        self.add_argument(
            "--config",
            default=None,
            metavar="YAML",
            help="recipe: its keys (flag names without '--') give the defaults, flags on the command line override "
            "them",
        )
        self.add_argument("--version", action="version", version=f"tinyrs-eval {__version__}")
        self.dataclass_types = [RunConfig]
        self._add_dataclass_arguments(RunConfig)

    def _parse_dataclass_field(self, parser: argparse.ArgumentParser, field: Any) -> None:  # type: ignore[override]
        meta = dict(field.metadata)
        name = meta.pop("group")
        group = self._field_groups.get(name) or self._field_groups.setdefault(name, self.add_argument_group(name))
        kind = next((t for t in typing.get_args(field.type) if t is not type(None)), field.type)
        kwargs: dict[str, Any] = {"dest": field.name, "help": meta.pop("help") or None}
        kwargs.update(BOOL_FLAG if kind is bool else {"type": meta.pop("type", kind)})
        if field.default is MISSING:
            kwargs["required"] = True
        else:
            kwargs["default"] = field.default
        group.add_argument(f"--{field.name}", *meta.pop("aliases", ()), **kwargs, **meta)

    def apply_recipe(self, path: str | Path) -> None:
        """The recipe's values become the defaults (shown by ``--help``); each is checked as its flag would be.

        Raises:
            UsageError: see ``recipe_tokens``; a bad value ends through ``error`` (exit 2) like a bad flag.
        """
        tokens = recipe_tokens(path)
        keys = set(tokens[::2])
        required = [action for action in self._actions if action.required]
        for action in required:
            action.required = False
        values = self.parse_args(tokens)
        for action in required:
            action.required = not (keys & set(action.option_strings))
        self.set_defaults(**{f.name: getattr(values, f.name) for f in fields(RunConfig) if f"--{f.name}" in keys})


def build_run_parser(prog: str = "tinyrs-eval run") -> RunArgumentParser:
    """The parser of ``tinyrs-eval run``, one flag per RunConfig field, grouped as in the field metadata."""
    return RunArgumentParser(prog)


def recipe_tokens(path: str | Path) -> list[str]:
    """A YAML recipe as command-line tokens (alias keys renamed), checked by the parser as flags would be.

    Raises:
        UsageError: unreadable file, not a mapping, unknown key.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise UsageError(f"--config {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"--config {path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UsageError(f"--config {path}: a recipe is a mapping of option names to values")
    data = canonical_keys(data, ALIASES, str(path), logger)
    known = [f.name for f in fields(RunConfig)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        hints = unknown_flags_message([f"--{k}" for k in unknown], [f"--{k}" for k in known]).split(": ", 1)[1]
        raise UsageError(f"--config {path}: unknown keys: {hints.replace('--', '')}")
    template = data.get("reasoning_config")
    if isinstance(template, str) and not Path(template).exists() and (path.parent / template).exists():
        data["reasoning_config"] = str(path.parent / template)  # next to the recipe, like sft's deepspeed key
    tokens: list[str] = []
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, (dict, list)):
            raise UsageError(f"--config {path}: {key} must be a single value, got {value!r}")
        tokens += [f"--{key}", str(value).lower() if isinstance(value, bool) else str(value)]
    return tokens


def parse_run_args(argv: list[str] | None = None) -> RunConfig:
    """``--config recipe.yaml`` plus flags -> RunConfig, as sft's ``parse_args``: ``--config`` is read first and the
    recipe's values become the parser's defaults. A usage error ends with argparse's message, exit status 2 (also
    for an unknown --task and a --run_name with other characters, found here rather than mid-run)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_run_parser()
    try:
        argv = rewrite_aliases(argv, ALIASES, logger)
        pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
        pre.add_argument("--config", default=None)
        config = pre.parse_known_args(argv)[0].config
        if config:
            parser.apply_recipe(config)
    except UsageError as exc:
        parser.error(str(exc))
    *parsed, extras = parser.parse_args_into_dataclasses(argv, return_remaining_strings=True, look_for_args_file=False)
    if extras:
        parser.error(unknown_flags_message(extras, parser.known_flags()))
    cfg: RunConfig = parsed[0]
    try:
        parse_tasks(cfg.task)
        if cfg.run_name is not None and not re.fullmatch(RUN_NAME_RE, cfg.run_name):
            raise ConfigError(f"--run_name may only contain letters, digits, '.', '_' and '-': {cfg.run_name!r}")
    except EvalError as exc:
        parser.error(str(exc))
    return cfg


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
        "model": _model_identity(cfg.model_name_or_path),
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
        if not re.fullmatch(RUN_NAME_RE, cfg.run_name):
            raise ConfigError(f"--run_name may only contain letters, digits, '.', '_' and '-': {cfg.run_name!r}")
        return cfg.run_name
    if settings is None:
        settings = settings_fingerprint(cfg, template)
    blob = json.dumps(settings, sort_keys=True, ensure_ascii=False)
    return f"{_model_label(cfg.model_name_or_path)}-{hashlib.sha256(blob.encode()).hexdigest()[:8]}"
