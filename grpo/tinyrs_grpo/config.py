"""Script arguments of ``tinyrs-grpo train`` (parsed with TRL's ``GRPOConfig`` and ``ModelConfig`` by TrlParser).

Everything about the loss, generation, optimisation and saving is TRL's ``GRPOConfig`` (``--beta``,
``--num_generations``, ``--max_completion_length``, ``--loss_type``, ``--scale_rewards``, ``--reward_weights``,
``--use_vllm``, ``--log_completions`` ...). This class adds what TinyRS needs on top: image pixel bounds, the prompt
length bound, the reward names, data checks and the judge. There is deliberately no flag for the judge's API key.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from trl import GRPOConfig, ModelConfig, ScriptArguments, TrlParser

from tinyrs_grpo.cliargs import UsageError, did_you_mean, option_strings, unknown_flags_message
from tinyrs_grpo.judge import API_KEY_ENV, DEFAULT_JUDGE_MODEL, JUDGE_PROMPTS


JUDGE_MODES = ("auto", "openai", "none")
CORRUPT_IMAGE_MODES = ("skip", "stop")


@dataclass
class GRPOScriptArguments(ScriptArguments):
    """TinyRS GRPO script arguments (dataset_name, dataset_config, dataset_train_split/test_split come from TRL)."""

    reward_funcs: list[str] = field(
        default_factory=lambda: ["accuracy", "format"],
        metadata={
            "help": "Reward functions: accuracy, format, exact, iou, judge, or a dotted import path "
            "(my_module.my_reward: a module on the import path or in the current folder). Weights: --reward_weights."
        },
    )
    reward_module: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Python files holding custom rewards, loaded by path: --reward_module path/to/my_rewards.py "
            "--reward_funcs my_rewards.my_reward (see grpo/examples/custom_rewards.py)."
        },
    )
    max_pixels: int | None = field(
        default=None,
        metadata={
            "help": "Upper bound on image pixels (H*W after resizing). Default: the checkpoint's own bound (what SFT "
            "saved in preprocessor_config.json); given, it replaces it on the processor and in every save."
        },
    )
    min_pixels: int | None = field(
        default=None,
        metadata={"help": "Lower bound on image pixels (H*W after resizing). Default: the checkpoint's own bound."},
    )
    max_prompt_length: int | None = field(
        default=None,
        metadata={
            "help": "Drop (and count) rows whose prompt, image tokens included, is longer than this. Prompts are "
            "never truncated, so image tokens are never cut."
        },
    )
    skip_bad_rows: bool = field(
        default=False, metadata={"help": "Skip and count bad dataset rows instead of stopping before training."}
    )
    allow_external_image_paths: bool = field(
        default=False,
        metadata={
            "help": "Allow image paths outside the data root (the JSON/JSONL file's folder, the save_to_disk "
            "folder): absolute or '..' paths. Without it such rows are bad rows, counted with their reason."
        },
    )
    verify_images: bool = field(
        default=False,
        metadata={
            "help": "Fully decode every image before training. Default: header read plus a check of the file's "
            "ends for images cut short (tinyrs_grpo.imagecheck), no decompression."
        },
    )
    on_corrupt_image: str = field(
        default="skip",
        metadata={
            "help": "An image that fails to decode during training: skip (the row is replaced by the next good row "
            "for every copy of it, logged with file and row, counted in the final log and in "
            "OUTPUT_DIR/corrupt_images.jsonl) or stop (end the run at once with a one-line error)."
        },
    )
    judge: str = field(
        default="auto",
        metadata={
            "help": "LLM judge for open-ended (answer_type 0) rows: openai, none, or auto (openai when "
            f"{API_KEY_ENV} or --judge_base_url is set, else none). With none, open-ended rows are dropped."
        },
    )
    judge_model: str = field(default=DEFAULT_JUDGE_MODEL, metadata={"help": "Judge chat model."})
    judge_prompt: str = field(
        default="original",
        metadata={
            "help": "Judge instructions: original (the TinyRS grpo.py wording) or remote_sensing (names the "
            "remote-sensing image and asks for a grade against what the image shows)."
        },
    )
    judge_base_url: str | None = field(
        default=None,
        metadata={"help": "OpenAI-compatible base URL (e.g. http://127.0.0.1:8000/v1 for a local judge server)."},
    )
    judge_concurrency: int = field(default=16, metadata={"help": "Judge requests in flight at most."})
    judge_timeout: float = field(default=60.0, metadata={"help": "Seconds per judge request."})
    judge_max_retries: int = field(
        default=4, metadata={"help": "Retries (exponential backoff) on 429, 5xx, timeouts and connection errors."}
    )
    judge_on_error: str = field(
        default="none",
        metadata={"help": "Reward after the last failed retry: none (row ignored by TRL) or zero (0.0)."},
    )
    judge_temperature: float = field(default=0.2, metadata={"help": "Judge sampling temperature (original: 0.2)."})
    judge_max_tokens: int = field(default=64, metadata={"help": "Judge reply length limit in tokens."})
    dry_run: bool = field(
        default=False,
        metadata={"help": "Parse and check the arguments, log the resolved settings and exit: no model, no data."},
    )

    def __post_init__(self) -> None:
        if self.judge not in JUDGE_MODES:
            raise ValueError(f"--judge must be one of {JUDGE_MODES}, got {self.judge!r}")
        if self.judge_on_error not in ("none", "zero"):
            raise ValueError(f"--judge_on_error must be 'none' or 'zero', got {self.judge_on_error!r}")
        if self.judge_prompt not in JUDGE_PROMPTS:
            raise ValueError(f"--judge_prompt must be one of {tuple(JUDGE_PROMPTS)}, got {self.judge_prompt!r}")
        if self.on_corrupt_image not in CORRUPT_IMAGE_MODES:
            raise ValueError(f"--on_corrupt_image must be one of {CORRUPT_IMAGE_MODES}, got {self.on_corrupt_image!r}")
        for name in ("min_pixels", "max_pixels"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"--{name} must be positive, got {value}")
        if self.min_pixels is not None and self.max_pixels is not None and self.min_pixels > self.max_pixels:
            raise ValueError(
                f"--min_pixels ({self.min_pixels}) and --max_pixels ({self.max_pixels}) must be positive with "
                "min_pixels <= max_pixels"
            )
        if self.max_prompt_length is not None and self.max_prompt_length <= 0:
            raise ValueError(f"--max_prompt_length must be positive, got {self.max_prompt_length}")
        if isinstance(self.reward_funcs, str):
            self.reward_funcs = [self.reward_funcs]
        if isinstance(self.reward_module, str):
            self.reward_module = [self.reward_module]

    def resolved_judge(self) -> str:
        """ "openai" or "none" after resolving ``auto`` from the environment (the key itself is not read here)."""
        if self.judge == "auto":
            return "openai" if (os.environ.get(API_KEY_ENV) or self.judge_base_url) else "none"
        return self.judge


class GRPOParser(TrlParser):
    """TRL's parser for ``tinyrs-grpo train`` without abbreviations; every error raises ``UsageError`` (one line,
    exit 2): an unknown flag or recipe key names the closest known one."""

    def __init__(self, dataclass_types: Any, prog: str = "tinyrs-grpo train") -> None:
        super().__init__(dataclass_types, prog=prog, allow_abbrev=False)

    def parse(self, args: Sequence[str]) -> tuple[Any, ...]:
        """``parse_args_and_config`` (``--config recipe.yaml``, flags win), refusing unknown flags and recipe keys."""
        args = list(args)
        if args and args[-1] == "--config":
            raise UsageError("--config needs a recipe file (--config grpo/configs/tinyrs_r1.yaml)")
        *parsed, config_rest, args_rest = self.parse_args_and_config(
            args=args, return_remaining_strings=True, separate_remaining_strings=True
        )
        if config_rest:
            config = args[args.index("--config") + 1]
            key = config_rest[0].removeprefix("--")
            keys = [action.dest for action in self._actions]
            raise UsageError(f"{config}: unknown key {key!r}{did_you_mean(key, keys)}")
        if args_rest:
            raise UsageError(unknown_flags_message(args_rest, [*option_strings(self), "--config"]))
        return tuple(parsed)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def make_parser() -> GRPOParser:
    """The parser of ``tinyrs-grpo train``: these script arguments, TRL's ``GRPOConfig`` and ``ModelConfig``."""
    return GRPOParser((GRPOScriptArguments, GRPOConfig, ModelConfig))
