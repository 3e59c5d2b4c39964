"""Model text made safe and readable in HTML: escaped, no ``<image>`` placeholder, undecodable bytes marked."""

from __future__ import annotations

import html
import re


_IMAGE_TAG = re.compile(r"\s*<image>\s*")
_BAD = re.compile("\ufffd+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_question(text: object) -> str:
    """The question as a person reads it: the ``<image>`` placeholder removed (it is where the image goes)."""
    return _IMAGE_TAG.sub(" ", str(text or "")).strip()


def show(text: object, limit: int | None = None) -> str:
    """HTML for model text: escaped; runs of U+FFFD (bytes that were not valid UTF-8 when decoded) and control
    characters shown as marked placeholders instead of '�' boxes; cut at ``limit`` characters with a marker."""
    text = "" if text is None else str(text)
    cut = limit is not None and len(text) > limit
    if cut:
        text = text[:limit]
    parts = []
    pos = 0
    for m in re.finditer(f"{_BAD.pattern}|{_CONTROL.pattern}", text):
        parts.append(html.escape(text[pos : m.start()]))
        token = m.group(0)
        if token[0] == "\ufffd":
            parts.append(f"<span class=bad title='{len(token)} undecodable byte sequence(s)'>[?×{len(token)}]</span>")
        else:
            parts.append(f"<span class=bad title='control character'>[U+{ord(token):04X}]</span>")
        pos = m.end()
    parts.append(html.escape(text[pos:]))
    out = "".join(parts)
    return out + ("<span class=more>…</span>" if cut else "")


def has_undecodable(text: object) -> bool:
    return "\ufffd" in str(text or "")
