"""Random access to the records of a LLaVA-style JSON list or JSONL file, holding only their byte offsets.

Split from ``records.py`` (validation): this module only reads. Both formats are indexed once by byte offset and a
record is parsed when it is asked for; the original parsed a JSON list whole and kept it (a million records took
about 1.8 GB).
"""

from __future__ import annotations

import codecs
import json
import os
import re
from array import array
from pathlib import Path
from typing import Any


_SPACE = re.compile(r"[ \t\n\r]*")
_UTF8_BOM = b"\xef\xbb\xbf"
INDEX_CHUNK_BYTES = 16 * 2**20  # a JSON list is indexed through windows of this size


class DataError(ValueError):
    """A problem with the training data; the message names file, record index and id."""


def _skip_space(text: str, pos: int) -> int:
    """Index of the first non-whitespace character (JSON whitespace) at or after ``pos``."""
    return _SPACE.match(text, pos).end()


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
        """Parse the list one record at a time, reading the file in windows of ``INDEX_CHUNK_BYTES``, and keep only
        each record's byte range (memory: one window, not the file, and never the parsed records)."""
        decoder = json.JSONDecoder()
        utf8 = codecs.getincrementaldecoder("utf-8")()
        starts, ends = self._starts, array("q")
        text, eof = "", False
        byte_pos, char_pos = 0, 0  # the file's byte offset of text[char_pos]

        def to_bytes(offset: int) -> int:
            nonlocal byte_pos, char_pos
            gap = text[char_pos:offset]
            byte_pos += len(gap) if gap.isascii() else len(gap.encode("utf-8"))
            char_pos = offset
            return byte_pos

        with self.path.open("rb") as f:

            def refill(keep_from: int) -> int:
                """Drop text before ``keep_from``, append the next window; returns the new index of keep_from."""
                nonlocal text, eof, char_pos
                to_bytes(keep_from)
                chunk = f.read(INDEX_CHUNK_BYTES)
                eof = not chunk
                try:
                    text = text[keep_from:] + utf8.decode(chunk, final=eof)
                except UnicodeDecodeError as err:
                    raise DataError(f"{self.path}: not UTF-8 text (near byte {byte_pos}: {err.reason})") from err
                char_pos = 0
                return 0

            pos = refill(0)
            while not eof and not text.lstrip("\ufeff \t\n\r"):  # a byte-order mark and space before '['
                pos = refill(0)
            pos = _skip_space(text, 1 if text.startswith("\ufeff") else 0)
            if not text.startswith("[", pos):
                raise DataError(f"{self.path}: not valid JSON (expected '[' at byte {to_bytes(pos)})")
            pos += 1
            while True:
                pos = _skip_space(text, pos)
                if pos == len(text) and not eof:
                    pos = refill(pos)
                    continue
                if text.startswith("]", pos) and not starts:
                    pos += 1
                    break
                try:
                    _, end = decoder.raw_decode(text, pos)
                    after = _skip_space(text, end)
                    if after == len(text) and not eof:
                        raise json.JSONDecodeError("window ends", text, end)
                except json.JSONDecodeError as err:
                    if not eof:  # the record may continue in the next window
                        pos = refill(pos)
                        continue
                    raise DataError(f"{self.path}: not valid JSON ({err.msg} at byte {to_bytes(err.pos)})") from err
                starts.append(to_bytes(pos))
                ends.append(to_bytes(end))
                if text.startswith(",", after):
                    pos = after + 1
                    continue
                if text.startswith("]", after):
                    pos = after + 1
                    break
                raise DataError(f"{self.path}: not valid JSON (expected ',' or ']' at byte {to_bytes(after)})")
            while True:  # only whitespace may follow the list
                pos = _skip_space(text, pos)
                if pos < len(text):
                    raise DataError(f"{self.path}: not valid JSON (extra data after the list at byte {to_bytes(pos)})")
                if eof:
                    break
                pos = refill(pos)
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
