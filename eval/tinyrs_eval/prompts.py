"""Prompt construction: the user text per prompt style, and the chat template (lmdeploy JSON format).

The prompt style is an explicit option, never guessed from the model path (defect E5 of the original).
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinyrs_eval.constants import DEFAULT_SYSTEM_PROMPT, PROMPT_STYLES, TASK_TYPES
from tinyrs_eval.errors import ConfigError


# Qwen2-VL image placeholder; the processor (hf) or engine expands <|image_pad|> to the image's visual tokens.
IMAGE_PLACEHOLDER = "<|vision_start|><|image_pad|><|vision_end|>"

QWEN2VL_VG_PREFIX = "Output the bounding box of the following object in the image. <|object_ref_start|>"
QWEN2VL_VG_SUFFIX = "<|object_ref_end|>"

# (prefix, suffix) per task type, as the original LMDeployLM set them for TinyRS checkpoints and for Qwen2-VL ones.
_PIECES: dict[str, dict[str, tuple[str, str]]] = {
    "tinyrs": {"cls": ("{CLS}", ""), "vqa": ("{VQA}", ""), "bbox": ("{VG}", "")},
    "qwen2vl": {"cls": ("", ""), "vqa": ("", ""), "bbox": (QWEN2VL_VG_PREFIX, QWEN2VL_VG_SUFFIX)},
}
_IMAGE_TAG = re.compile(r"\n?<image>\n?")


def build_query(task_type: str, question: str, prompt_style: str) -> str:
    """The user text sent with the image: the original's pieces without its stray spaces.

    tinyrs: "{CLS} q", "{VQA} q", "{VG} q"; qwen2vl: "q", "q", "<grounding prefix> q <|object_ref_end|>";
    LHRS-Bench questions are sent unchanged. The "<image>" placeholder is removed (the image goes in front).
    The original sent "{VQA} q " and "{VG} q " (a trailing space before <|im_end|>) and " q" for Qwen2-VL; training
    data (docs/data-format.md 1.3) has no such space, so it is stripped here: a token the model never saw in training
    would sit right before its answer.
    """
    if prompt_style not in PROMPT_STYLES:
        raise ValueError(f"unknown prompt_style {prompt_style!r}; expected one of {PROMPT_STYLES}")
    if task_type not in TASK_TYPES:
        raise ValueError(f"unknown task_type {task_type!r}; expected one of {TASK_TYPES}")
    if task_type == "lhrsbench":
        query = question
    else:
        prefix, suffix = _PIECES[prompt_style][task_type]
        query = f"{prefix} {question}" if task_type == "cls" else f"{prefix} {question} {suffix}"
    query = query.replace("<image>\n", "")
    return _IMAGE_TAG.sub("", query).strip()  # also other placements of the placeholder the original left in


_TEMPLATE_KEYS = ("system", "meta_instruction", "eosys", "user", "eoh", "assistant", "eoa", "separator", "stop_words")
_IGNORED_KEYS = ("model_name", "capability", "tool", "eotool")


@dataclass(frozen=True)
class ChatTemplate:
    """A chat template in lmdeploy's ChatTemplateConfig JSON format (the original's qwen2_thinking_template.json).

    Defaults are Qwen2-VL's ChatML with the default system prompt. ``meta_instruction`` is the system prompt
    (None: no system turn).
    """

    system: str = "<|im_start|>system\n"
    meta_instruction: str | None = DEFAULT_SYSTEM_PROMPT
    eosys: str = "<|im_end|>\n"
    user: str = "<|im_start|>user\n"
    eoh: str = "<|im_end|>\n"
    assistant: str = "<|im_start|>assistant\n"
    eoa: str = "<|im_end|>"
    separator: str = "\n"
    stop_words: tuple[str, ...] = field(default=("<|im_end|>",))

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> ChatTemplate:
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: a chat template must be a JSON object")
        unknown = sorted(set(data) - set(_TEMPLATE_KEYS) - set(_IGNORED_KEYS))
        if unknown:
            raise ConfigError(f"{source}: unknown chat template keys {unknown}; expected {list(_TEMPLATE_KEYS)}")
        kwargs: dict[str, Any] = {}
        for key in _TEMPLATE_KEYS:
            value = data.get(key)
            if value is None:
                if key == "meta_instruction" and key in data:
                    kwargs[key] = None
                continue  # null keeps the default, as in lmdeploy
            if key == "stop_words":
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ConfigError(f"{source}: 'stop_words' must be a list of strings")
                value = tuple(value)
            elif not isinstance(value, str):
                raise ConfigError(f"{source}: {key!r} must be a string")
            kwargs[key] = value
        return cls(**kwargs)

    @classmethod
    def from_json(cls, path: str | Path) -> ChatTemplate:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"--reasoning_config file not found: {path}") from exc
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read chat template JSON: {exc}") from exc
        return cls.from_dict(data, source=str(path))

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["stop_words"] = list(self.stop_words)
        return data

    def render(self, text: str, with_image: bool = True) -> str:
        """The generation prompt for one user turn: [system turn] user turn (image first, then text), assistant cue.

        Same layout as lmdeploy's BaseChatTemplate and the official Qwen2-VL chat template."""
        prompt = ""
        if self.meta_instruction is not None:
            prompt += f"{self.system}{self.meta_instruction}{self.eosys}"
        image = IMAGE_PLACEHOLDER if with_image else ""
        return prompt + f"{self.user}{image}{text}{self.eoh}{self.assistant}"


DEFAULT_TEMPLATE = ChatTemplate()


def load_template(reasoning_config: str | Path | None) -> ChatTemplate:
    """The reasoning template from its JSON file, or the default Qwen2-VL template when None."""
    return DEFAULT_TEMPLATE if reasoning_config is None else ChatTemplate.from_json(reasoning_config)
