"""Image checks of GRPO rows: where an image may come from, and whether it is usable, before and during training.

Before training every row's image gets a header read (size, aspect ratio, PIL's decompression-bomb limit) and a
check of the file's ends for a file cut short (``tinyrs_grpo.imagecheck``); ``verify=True`` (``--verify_images``)
decodes it fully instead. Image paths must stay inside the data root (the JSON/JSONL file's folder) unless
``--allow_external_image_paths``, the policy ``tinyrs-sft`` applies to ``--image_folder``.
"""

from __future__ import annotations

import atexit
import io
import os
import tempfile
from pathlib import Path
from typing import Any

from tinyrs_grpo.imagecheck import HEAD_BYTES, TAIL_BYTES, truncation_problem
from tinyrs_grpo.rows import BadRowError


MAX_ASPECT_RATIO = 200  # the Qwen2-VL image processor refuses images with a larger long/short side ratio
EXTERNAL_HINT = "pass --allow_external_image_paths true to allow absolute or '..' paths"


def inside_folder(name: str, folder: Path) -> Path | None:
    """``folder / name`` when that stays inside ``folder`` (no absolute path, no ``..`` escape), else None."""
    root = os.path.normpath(os.path.abspath(folder))
    candidate = os.path.normpath(os.path.join(root, name))
    if os.path.isabs(name) or os.path.commonpath([root, candidate]) != root:
        return None
    return Path(candidate)


def resolve_image_path(name: str, root: Path, allow_external: bool) -> tuple[Path, str | None]:
    """(path, refusal): ``root / name`` (or ``name`` itself when absolute), and why it is refused (None if not)."""
    path = inside_folder(name, root)
    if path is not None:
        return path, None
    resolved = Path(name) if os.path.isabs(name) else Path(os.path.normpath(os.path.join(os.path.abspath(root), name)))
    if allow_external:
        return resolved, None
    return resolved, f"image path {short(repr(name))} points outside {root} ({EXTERNAL_HINT})"


def short(text: Any, limit: int = 200) -> str:
    text = str(text)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def describe(value: Any) -> str:
    """Where an undecoded ``datasets.Image`` value comes from, for messages: its path or 'embedded bytes'."""
    if isinstance(value, dict) and value.get("path") and not value.get("bytes"):
        return short(value["path"])
    return "embedded bytes"


def check_image(value: Any, verify: bool = False) -> tuple[int, int]:
    """(width, height) of an undecoded ``datasets.Image`` value after the pre-training checks.

    Raises:
        BadRowError: missing image, unreadable or unidentifiable file, absurd aspect ratio, a file cut short, or
            (``verify``) any decoding error.
    """
    from PIL import Image

    if value is None:
        raise BadRowError("missing image")
    if isinstance(value, Image.Image):
        return value.size
    if not isinstance(value, dict):
        raise BadRowError(f"unsupported image value of type {type(value).__name__}")
    data, path = value.get("bytes"), value.get("path")
    if not data and not path:
        raise BadRowError("missing image")
    where = describe(value)
    try:
        with Image.open(io.BytesIO(data) if data else path) as image:
            size = image.size
            if max(size) > MAX_ASPECT_RATIO * min(size):
                raise BadRowError(
                    f"image aspect ratio {size[0]}x{size[1]} is above {MAX_ASPECT_RATIO} (Qwen2-VL refuses)"
                )
            if verify:
                image.draft("RGB", (64, 64))  # JPEG: decode at reduced scale, still reads every byte
                image.load()
    except BadRowError:
        raise
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for broken files
        raise BadRowError(f"undecodable image ({where}): {error_text(exc)}") from exc
    if not verify:
        problem = bytes_truncation_problem(data) if data else truncation_problem(path)
        if problem:
            raise BadRowError(f"truncated image ({where}): {problem}")
    return size


def decode_image(value: Any) -> Any:
    """The PIL image of an undecoded ``datasets.Image`` value, decoded exactly as ``datasets`` does.

    Raises:
        Exception: whatever PIL raises for a broken file (the caller reports it).
    """
    import datasets
    from PIL import Image

    if isinstance(value, Image.Image):
        return value
    if not isinstance(value, dict) or not (value.get("bytes") or value.get("path")):
        raise ValueError("missing image")
    return datasets.Image().decode_example(value)


def error_text(exc: BaseException) -> str:
    """``Type: first line of the message`` (at most 300 characters)."""
    reason = str(exc).splitlines()[0][:300] if str(exc) else ""
    return f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__


class _Scratch:
    """One reusable scratch file for checking embedded image bytes with the path-based ``truncation_problem``.

    Only what that function reads is written (the head, the tail, the size as a sparse gap), so the cost does not
    grow with the image. Removed at exit.
    """

    path: str | None = None

    @classmethod
    def write(cls, data: bytes) -> str:
        if cls.path is None:
            handle, cls.path = tempfile.mkstemp(prefix="tinyrs-grpo-imagecheck-")
            os.close(handle)
            atexit.register(_remove, cls.path)
        tail_start = max(HEAD_BYTES, len(data) - TAIL_BYTES)
        with open(cls.path, "wb") as f:
            f.write(data[:HEAD_BYTES])
            f.seek(tail_start)
            f.write(data[tail_start:])
            f.truncate(len(data))
        return cls.path


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def bytes_truncation_problem(data: bytes) -> str | None:
    """``truncation_problem`` for embedded image bytes (a saved dataset's ``image`` column)."""
    return truncation_problem(_Scratch.write(data))
