"""Validating LLaVA-style records (JSON list or JSONL), without a model.

Reading is ``record_source.py`` (records indexed by byte offset, parsed when asked for). Images are never decoded
here except with ``verify``: the check reads the header (Pillow) and the file's end
(``imagecheck.truncation_problem``: a file cut short is caught). Every problem is reported as one line naming the
file, the record index and the record's ``id``.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from tinyrs_sft.constants import DEFAULT_MAX_IMAGE_PIXELS, IMAGE_PLACEHOLDER, ROLE_MAP, VIDEO_PLACEHOLDER
from tinyrs_sft.imagecheck import truncation_problem
from tinyrs_sft.record_source import DataError, RecordSource  # noqa: F401 - RecordSource is imported from here too


logger = logging.getLogger(__name__)

# The Qwen2-VL image processor refuses images whose long side is more than 200 times the short one.
MAX_ASPECT_RATIO = 200
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")


def record_label(path: str | os.PathLike, index: int, record: Any) -> str:
    """The prefix used by every message about one record: ``FILE: record INDEX (id=ID)``."""
    rid = record.get("id") if isinstance(record, dict) else None
    return f"{path}: record {index} (id={rid!r})"


@dataclass(frozen=True)
class MediaPolicy:
    """Where media may come from and how large it may be."""

    image_folder: Path
    allow_external_paths: bool = False
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS


def as_path_list(value: Any) -> list[str] | None:
    """``image``/``video`` may be one path or a list of paths; returns None when the value is malformed."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


@functools.lru_cache(maxsize=16)
def _absolute_folder(cwd: str, folder: str) -> str:
    """The normalised absolute image folder (cached: the start-up check resolves a path per record)."""
    return os.path.normpath(os.path.join(cwd, folder))


def resolve_media_path(name: str, policy: MediaPolicy) -> Path:
    """Join ``name`` to the image folder; refuse URLs, absolute paths and ``..`` escapes unless allowed."""
    if not name.strip():
        raise DataError("empty media path")
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", name):
        raise DataError(f"remote media are not supported (download them first): {short(repr(name))}")
    folder = _absolute_folder(os.getcwd(), str(policy.image_folder))
    candidate = os.path.normpath(os.path.join(folder, name))
    inside = candidate == folder or candidate.startswith(folder.rstrip(os.sep) + os.sep)
    if (os.path.isabs(name) or not inside) and not policy.allow_external_paths:
        raise DataError(
            f"media path {short(repr(name))} points outside --image_folder {str(policy.image_folder)!r} "
            "(pass --allow_external_image_paths True to allow absolute or '..' paths)"
        )
    return Path(candidate)


def short(path: Any, limit: int = 200) -> str:
    """A path or name for a one-line message (very long ones are cut)."""
    text = str(path)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def check_image_file(path: Path, max_pixels: int, verify: bool = False) -> str | None:
    """Return a problem description for an image file, or None. Reads the header and the file's end (a file cut
    short is refused) unless ``verify``, which decodes the whole image."""
    try:
        exists = path.is_file()
    except OSError as err:  # e.g. a name longer than the file system allows
        return f"image path unusable ({err.strerror}): {short(path)}"
    if not exists:
        return f"image not found: {short(path)}"
    truncated = truncation_problem(path)
    if truncated:
        return f"unreadable image {path}: {truncated}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
                if width * height > max_pixels:
                    return f"image too large ({width}x{height} > {max_pixels} pixels, refused): {path}"
                if width < 1 or height < 1:
                    return f"image has no pixels: {path}"
                if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
                    return (
                        f"aspect ratio of {width}x{height} is above {MAX_ASPECT_RATIO} (Qwen2-VL refuses it): {path}"
                    )
                if verify:
                    img.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        return f"unreadable image {path}: {err}"
    return None


def load_image(path: Path, max_pixels: int) -> Image.Image:
    """Open an image as RGB, refusing anything above ``max_pixels`` before it is decompressed."""
    problem = check_image_file(path, max_pixels)
    if problem is not None:
        raise DataError(problem)
    if not path.is_file():
        raise DataError(f"image not found: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise DataError(f"image too large ({width}x{height} > {max_pixels} pixels, refused): {path}")
                return img.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        if isinstance(err, DataError):
            raise
        raise DataError(f"unreadable image {path}: {err}") from err


def check_video_entry(path: Path, max_pixels: int) -> str | None:
    """A video is a video file or a folder of frame images."""
    if path.is_dir():
        frames = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not frames:
            return f"video folder has no frame images: {path}"
        return check_image_file(frames[0], max_pixels)
    if not path.is_file():
        return f"video not found: {path}"
    return None


def check_structure(record: Any) -> list[str]:
    """Problems with a record's fields and conversation, independent of files on disk."""
    if not isinstance(record, dict):
        return [f"record is a {type(record).__name__}, expected an object"]
    problems: list[str] = []
    images = as_path_list(record.get("image"))
    videos = as_path_list(record.get("video"))
    if images is None:
        problems.append("'image' must be a string or a list of strings")
    if videos is None:
        problems.append("'video' must be a string or a list of strings")
    conv = record.get("conversations")
    if not isinstance(conv, list) or not conv:
        return [*problems, "'conversations' must be a non-empty list"]
    n_image_ph = n_video_ph = 0
    turns = conv
    for j, turn in enumerate(turns):
        if not isinstance(turn, dict):
            problems.append(f"turn {j} is not an object")
            continue
        role, value = turn.get("from"), turn.get("value")
        if role not in ROLE_MAP:
            problems.append(f"turn {j}: 'from' must be one of {sorted(ROLE_MAP)}, got {role!r}")
        if not isinstance(value, str):
            problems.append(f"turn {j}: 'value' must be a string, got {type(value).__name__}")
            continue
        if role == "human":
            n_image_ph += value.count(IMAGE_PLACEHOLDER)
            n_video_ph += value.count(VIDEO_PLACEHOLDER)
        elif IMAGE_PLACEHOLDER in value or VIDEO_PLACEHOLDER in value:
            problems.append(f"turn {j}: <image>/<video> placeholders are only allowed in human turns")
        if role == "gpt" and not value.strip():
            problems.append(f"turn {j}: empty assistant answer")
    if problems:
        return problems
    roles = [t["from"] for t in turns]
    if roles[0] == "system":
        roles = roles[1:]
    if "system" in roles:
        problems.append("a system turn is only allowed as the first turn")
    elif not roles or len(roles) % 2:
        problems.append(f"conversation must be human/gpt pairs, got {len(roles)} non-system turns")
    elif any(r != ("human" if k % 2 == 0 else "gpt") for k, r in enumerate(roles)):
        problems.append(f"turns must alternate human, gpt, human, ...; got {roles}")
    if images is not None and n_image_ph != len(images):
        problems.append(f"{n_image_ph} <image> placeholder(s) but {len(images)} image(s)")
    if videos is not None and n_video_ph != len(videos):
        problems.append(f"{n_video_ph} <video> placeholder(s) but {len(videos)} video(s)")
    return problems


def check_media(record: dict, policy: MediaPolicy, verify_images: bool = False) -> list[str]:
    """Problems with the files a (structurally valid) record points to."""
    problems: list[str] = []
    for key in ("image", "video"):
        for name in as_path_list(record.get(key)) or []:
            try:
                path = resolve_media_path(name, policy)
            except DataError as err:
                problems.append(str(err))
                continue
            if key == "image":
                problem = check_image_file(path, policy.max_image_pixels, verify=verify_images)
            else:
                problem = check_video_entry(path, policy.max_image_pixels)
            if problem:
                problems.append(problem)
    return problems


def check_record(record: Any, policy: MediaPolicy | None, verify_images: bool = False) -> list[str]:
    """All problems of one record (structure first; files only when the structure is valid and a policy given)."""
    problems = check_structure(record)
    if not problems and policy is not None:
        problems = check_media(record, policy, verify_images)
    return problems
