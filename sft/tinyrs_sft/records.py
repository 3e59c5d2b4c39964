"""Reading and validating LLaVA-style records (JSON list or JSONL), without a model.

Records are read lazily: both formats are indexed by byte offset once and a record is parsed when it is asked for
(the original parsed a JSON list whole and kept it). Images are never decoded here except with ``verify``: the check
reads the header (Pillow) and the file's end (``imagecheck.truncation_problem``: a file cut short is caught).
Every problem is reported as one line naming the file, the record index and the record's ``id``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import warnings
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from tinyrs_sft.constants import DEFAULT_MAX_IMAGE_PIXELS, IMAGE_PLACEHOLDER, ROLE_MAP, VIDEO_PLACEHOLDER
from tinyrs_sft.imagecheck import truncation_problem


logger = logging.getLogger(__name__)

# The Qwen2-VL image processor refuses images whose long side is more than 200 times the short one.
MAX_ASPECT_RATIO = 200
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")
_SPACE = re.compile(r"[ \t\n\r]*")
_UTF8_BOM = b"\xef\xbb\xbf"


def _skip_space(text: str, pos: int) -> int:
    """Index of the first non-whitespace character (JSON whitespace) at or after ``pos``."""
    return _SPACE.match(text, pos).end()


class DataError(ValueError):
    """A problem with the training data; the message names file, record index and id."""


def record_label(path: str | os.PathLike, index: int, record: Any) -> str:
    """The prefix used by every message about one record: ``FILE: record INDEX (id=ID)``."""
    rid = record.get("id") if isinstance(record, dict) else None
    return f"{path}: record {index} (id={rid!r})"


class RecordSource:
    """Random access to the records of one JSON-list or JSONL file, holding only their byte offsets in memory.

    Both formats are indexed once (a JSON list is parsed record by record and each record's byte range kept; a JSONL
    file by line offsets) and each record is parsed again when asked for, so a list of a million records costs
    about 16 MB of offsets instead of the gigabytes of a parsed list. Malformed JSONL lines surface as
    :class:`DataError` from :meth:`__getitem__` (so a scan can report them all).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(f"{self.path}: data file not found")
        self._starts = array("q")
        self._ends: array | None = None  # JSON list: end of each record; JSONL: None (read to the end of the line)
        self._file: Any = None
        self._file_pid = -1
        if self.path.suffix.lower() == ".jsonl":
            self._index_lines()
            return
        with self.path.open("rb") as f:
            head = f.read(4096)
        head = head.removeprefix(_UTF8_BOM).lstrip()
        if head.startswith(b"["):
            self._index_list()
        elif head.startswith(b"{") and not self._is_one_json_value():  # one object per line in a .json file
            self._index_lines()
        else:
            self._refuse_non_list()

    def _read_text(self) -> tuple[str, int]:
        """The file as text (without a UTF-8 byte-order mark) and the byte length of the mark it had (0 or 3)."""
        raw = self.path.read_bytes()
        bom = len(_UTF8_BOM) if raw.startswith(_UTF8_BOM) else 0
        try:
            return raw[bom:].decode("utf-8"), bom
        except UnicodeDecodeError as err:
            raise DataError(f"{self.path}: not UTF-8 text (byte {err.start + bom}: {err.reason})") from err

    def _is_one_json_value(self) -> bool:
        try:
            json.loads(self._read_text()[0])
        except (json.JSONDecodeError, DataError):
            return False
        return True

    def _refuse_non_list(self) -> None:
        try:
            data = json.loads(self._read_text()[0])
        except json.JSONDecodeError as err:
            raise DataError(f"{self.path}: not valid JSON ({err})") from err
        raise DataError(f"{self.path}: expected a JSON list of records, got {type(data).__name__}")

    def _index_list(self) -> None:
        """Parse the list one record at a time and keep each record's byte range (the records are not kept)."""
        text, bom = self._read_text()
        ascii_only = text.isascii()
        decoder = json.JSONDecoder()
        starts, ends = self._starts, array("q")
        pos = _skip_space(text, 0) + 1  # after '['
        pos = _skip_space(text, pos)
        byte_pos, char_pos = bom, 0  # byte offset of char_pos in the file (counted only for non-ASCII text)

        def to_bytes(offset: int) -> int:
            nonlocal byte_pos, char_pos
            if ascii_only:
                return offset + bom
            byte_pos += len(text[char_pos:offset].encode("utf-8"))
            char_pos = offset
            return byte_pos

        try:
            if text.startswith("]", pos):
                end = pos + 1
            else:
                while True:
                    _, end = decoder.raw_decode(text, pos)
                    starts.append(to_bytes(pos))
                    ends.append(to_bytes(end))
                    pos = _skip_space(text, end)
                    if text.startswith(",", pos):
                        pos = _skip_space(text, pos + 1)
                        continue
                    if text.startswith("]", pos):
                        end = pos + 1
                        break
                    raise json.JSONDecodeError("expected ',' or ']' after a record", text, pos)
            if _skip_space(text, end) != len(text):
                raise json.JSONDecodeError("extra data after the list", text, _skip_space(text, end))
        except json.JSONDecodeError as err:
            raise DataError(f"{self.path}: not valid JSON ({err})") from err
        self._ends = ends

    def _index_lines(self) -> None:
        starts = self._starts
        with self.path.open("rb") as f:
            pos = 0
            for line in f:
                if line.strip():
                    starts.append(pos)
                pos += len(line)

    def _handle(self) -> Any:
        """One open file per process (data-loader workers are forked: each opens its own)."""
        if self._file is None or self._file_pid != os.getpid():
            self._file = self.path.open("rb")
            self._file_pid = os.getpid()
        return self._file

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_file": None, "_file_pid": -1}

    def __len__(self) -> int:
        return len(self._starts)

    def __getitem__(self, index: int) -> Any:
        f = self._handle()
        f.seek(self._starts[index])
        raw = f.readline() if self._ends is None else f.read(self._ends[index] - self._starts[index])
        try:
            return json.loads(raw)
        except json.JSONDecodeError as err:
            raise DataError(f"{self.path}: record {index} (id=None): line is not valid JSON ({err})") from err
        except UnicodeDecodeError as err:
            raise DataError(f"{self.path}: record {index} (id=None): line is not UTF-8 ({err.reason})") from err


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


def resolve_media_path(name: str, policy: MediaPolicy) -> Path:
    """Join ``name`` to the image folder; refuse URLs, absolute paths and ``..`` escapes unless allowed."""
    if not name.strip():
        raise DataError("empty media path")
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", name):
        raise DataError(f"remote media are not supported (download them first): {short(repr(name))}")
    folder = os.path.normpath(os.path.abspath(policy.image_folder))
    candidate = os.path.normpath(os.path.join(folder, name))
    inside = os.path.commonpath([folder, candidate]) == folder
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
