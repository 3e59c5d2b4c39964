# Three identical copies: sft/tinyrs_sft/imagecheck.py, grpo/tinyrs_grpo/imagecheck.py, eval/tinyrs_eval/imagecheck.py
# (the packages never import each other). tests/test_copies.py fails when they differ below this header.
"""Catch an image file that was cut short (an interrupted download or copy) without decoding it.

A header-only check (``PIL.Image.open``) accepts a PNG cut after its first 60 bytes and a JPEG cut in the middle of
its compressed data: the header is intact, only the pixels are missing, and the failure comes later, when a
training step or an evaluation sample decodes the image. A full decode catches it but costs a decompression per
image. This module reads the first 32 and the last 64 bytes of the file and its size (TIFF: its first directory too),
and checks what each format puts at its end or declares in its header:

========  ==============================================================================================
PNG       the file must end with the ``IEND`` chunk (trailing bytes after it are allowed if they fit in
          the 64-byte tail).
JPEG      the end-of-image marker ``FF D9`` must be in the tail (inside compressed data ``FF`` is always
          followed by ``00`` or a restart marker, so a file cut mid-scan has no ``FF D9`` at its end).
GIF       the last byte (ignoring trailing zero padding) must be the trailer ``0x3B``.
WebP      the RIFF header declares the payload size; the file must be at least that long.
BMP       the header declares the file size (when non-zero) and the pixel-data offset; the file must hold both.
TIFF      the first directory (IFD) is read: it must lie inside the file, and the last strip or tile it
          points to must end inside the file (a few more small reads; BigTIFF is not checked).
other     not checked here (None).
========  ==============================================================================================

Self-contained on purpose: standard library only, no package imports.
"""

from __future__ import annotations

import os
import struct


HEAD_BYTES = 32
TAIL_BYTES = 64

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_IEND = b"IEND\xaeB`\x82"  # the chunk type followed by its fixed CRC
_JPEG_SOI = b"\xff\xd8\xff"
_JPEG_EOI = b"\xff\xd9"
_TIFF_MAX_TABLE = 1 << 20  # strip/tile tables larger than this are not read


def _read_ends(path: str | os.PathLike) -> tuple[bytes, bytes, int]:
    """The first HEAD_BYTES, the last TAIL_BYTES and the size of a file."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(0)
        head = f.read(HEAD_BYTES)
        f.seek(max(0, size - TAIL_BYTES))
        tail = f.read(TAIL_BYTES)
    return head, tail, size


def _png_problem(tail: bytes, size: int) -> str | None:
    # signature (8) + IHDR chunk (25) + IEND chunk (12) is the smallest possible PNG
    if size < 45 or _PNG_IEND not in tail:
        return "PNG ends without its IEND chunk (file cut short?)"
    return None


def _jpeg_problem(tail: bytes) -> str | None:
    if _JPEG_EOI not in tail:
        return "JPEG ends without its end-of-image marker FFD9 (file cut short?)"
    return None


def _gif_problem(tail: bytes) -> str | None:
    if not tail.rstrip(b"\x00").endswith(b"\x3b"):
        return "GIF ends without its trailer byte 0x3B (file cut short?)"
    return None


def _webp_problem(head: bytes, size: int) -> str | None:
    declared = struct.unpack("<I", head[4:8])[0] + 8
    if size < declared:
        return f"WebP is {size} bytes but its header declares {declared} (file cut short?)"
    return None


def _bmp_problem(head: bytes, size: int) -> str | None:
    if len(head) < 14:
        return f"BMP is only {size} bytes, shorter than its file header (file cut short?)"
    declared, pixel_offset = struct.unpack("<I", head[2:6])[0], struct.unpack("<I", head[10:14])[0]
    if declared and size < declared:
        return f"BMP is {size} bytes but its header declares {declared} (file cut short?)"
    if size <= pixel_offset:
        return f"BMP is {size} bytes and has no pixel data after offset {pixel_offset} (file cut short?)"
    return None


def _tiff_values(f, order: str, entry: tuple[int, int, bytes] | None) -> list[int]:
    """The SHORT or LONG values of one IFD entry (inline or at its offset); [] when absent or unusable."""
    if entry is None:
        return []
    kind, count, field = entry
    char = {3: "H", 4: "I"}.get(kind)
    if char is None:
        return []
    nbytes = struct.calcsize(char) * count
    if nbytes <= 4:
        raw = field[:nbytes]
    elif nbytes > _TIFF_MAX_TABLE:
        return []
    else:
        f.seek(struct.unpack(order + "I", field)[0])
        raw = f.read(nbytes)
        if len(raw) < nbytes:
            return []
    return list(struct.unpack(order + char * count, raw))


def _tiff_problem(path: str | os.PathLike, head: bytes, size: int) -> str | None:
    if len(head) < 8:
        return f"TIFF is only {size} bytes, shorter than its header (file cut short?)"
    order = "<" if head[:2] == b"II" else ">"
    if struct.unpack(order + "H", head[2:4])[0] != 42:  # BigTIFF (43): not checked
        return None
    ifd_offset = struct.unpack(order + "I", head[4:8])[0]
    if ifd_offset + 2 > size:
        return f"TIFF is {size} bytes but its first directory is at byte {ifd_offset} (file cut short?)"
    with open(path, "rb") as f:
        f.seek(ifd_offset)
        n_entries = struct.unpack(order + "H", f.read(2))[0]
        table = f.read(12 * n_entries)
        if len(table) < 12 * n_entries:
            return f"TIFF is {size} bytes and its first directory is cut off (file cut short?)"
        tags = {}
        for k in range(n_entries):
            tag, kind, count, field = struct.unpack(order + "HHI4s", table[12 * k : 12 * k + 12])
            tags[tag] = (kind, count, field)
        offsets = _tiff_values(f, order, tags.get(273) or tags.get(324))  # StripOffsets or TileOffsets
        counts = _tiff_values(f, order, tags.get(279) or tags.get(325))  # StripByteCounts or TileByteCounts
    if offsets and len(offsets) == len(counts):
        end = max(o + c for o, c in zip(offsets, counts))
        if end > size:
            return f"TIFF is {size} bytes but its image data runs to byte {end} (file cut short?)"
    return None


def truncation_problem(path: str | os.PathLike) -> str | None:
    """Why the image at ``path`` looks cut short, or None when its ends look complete (or the format is unknown).

    Reads only the head and the tail of the file. Unreadable files are reported too (``cannot read ...``).
    """
    try:
        head, tail, size = _read_ends(path)
    except OSError as err:
        return f"cannot read the file ({err.strerror or err})"
    if size == 0:
        return "image file is empty"
    if head.startswith(_PNG_SIGNATURE):
        return _png_problem(tail, size)
    if head.startswith(_JPEG_SOI):
        return _jpeg_problem(tail)
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return _gif_problem(tail)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp_problem(head, size)
    if head[:2] == b"BM":
        return _bmp_problem(head, size)
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        try:
            return _tiff_problem(path, head, size)
        except (OSError, struct.error):  # a malformed directory is for the image decoder to report
            return None
    return None
