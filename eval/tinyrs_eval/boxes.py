"""Predicted boxes of an answer (0-1000 grid and pixels) and drawing them on the image.

Shared by ``tinyrs-eval infer``, the chat app and the report. Box text is read with the scorer's own parser
(``metrics.parse_boxes``), so what is drawn is what is scored. A box reaching past the image edge is never clipped
silently: the canvas grows to show it, the image keeps a grey frame, and the box is flagged ``outside``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PIL import Image, ImageDraw

from tinyrs_eval import metrics


GRID = 1000  # the TinyRS / Qwen2-VL box grid
PRED_COLOUR = (230, 30, 30)
OUTSIDE_COLOUR = (255, 140, 0)
GT_COLOUR = (40, 200, 40)
FRAME_COLOUR = (128, 128, 128)
MAX_GROW = 1.0  # the canvas grows by at most this share of the image size on each side


def is_outside(box: Sequence[float], size: Sequence[int]) -> bool:
    """Whether a pixel box reaches past an image of ``size`` = (height, width)."""
    h, w = size
    return box[0] < 0 or box[1] < 0 or box[2] > w or box[3] > h


def answer_boxes(answer: str, size: Sequence[int], grid: float = GRID) -> list[dict[str, Any]]:
    """The boxes of an extracted answer: ``{"grid": [x1, y1, x2, y2], "pixels": [...], "outside": bool}`` each.

    ``size`` is the image's (height, width); grid coordinates are mapped to pixels as the scorer does.
    """
    out = []
    for box in metrics.parse_boxes(answer):
        pixels = [round(v, 2) for v in metrics.scale_box(box, size, grid)]
        out.append({"grid": [float(v) for v in box], "pixels": pixels, "outside": is_outside(pixels, size)})
    return out


def _canvas_extent(size: Sequence[int], boxes: Sequence[Sequence[float]]) -> tuple[float, float, float, float]:
    """The drawing area (x0, y0, x1, y1) in image pixels: the image plus any box part past its edge (bounded)."""
    h, w = size
    x0, y0, x1, y1 = 0.0, 0.0, float(w), float(h)
    for b in boxes:
        x0, y0 = min(x0, b[0], b[2]), min(y0, b[1], b[3])
        x1, y1 = max(x1, b[0], b[2]), max(y1, b[1], b[3])
    return max(x0, -MAX_GROW * w), max(y0, -MAX_GROW * h), min(x1, (1 + MAX_GROW) * w), min(y1, (1 + MAX_GROW) * h)


def draw_boxes(
    image: Image.Image,
    pred: Sequence[Sequence[float]] = (),
    gt: Sequence[Sequence[float]] = (),
    *,
    max_side: int | None = None,
) -> Image.Image:
    """A copy of ``image`` with ground-truth (green) and predicted (red; orange when past the edge) pixel boxes.

    When a box reaches past the image, the canvas is enlarged (grey background, the image framed in grey) so the
    whole box shows. ``max_side`` shrinks the result to at most that many pixels on its longer side.
    """
    image = image.convert("RGB")
    size = (image.height, image.width)
    ex0, ey0, ex1, ey1 = _canvas_extent(size, [*pred, *gt])
    grown = (ex0, ey0, ex1, ey1) != (0.0, 0.0, float(image.width), float(image.height))
    scale = 1.0
    if max_side and max(ex1 - ex0, ey1 - ey0) > max_side:
        scale = max_side / max(ex1 - ex0, ey1 - ey0)
    cw, ch = max(1, round((ex1 - ex0) * scale)), max(1, round((ey1 - ey0) * scale))
    canvas = Image.new("RGB", (cw, ch), (225, 225, 225))
    shown = (
        image
        if scale == 1.0
        else image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    )
    ox, oy = round(-ex0 * scale), round(-ey0 * scale)
    canvas.paste(shown, (ox, oy))
    draw = ImageDraw.Draw(canvas)
    lw = max(2, round(max(cw, ch) / 150))
    if grown:
        draw.rectangle([ox - 1, oy - 1, ox + shown.width, oy + shown.height], outline=FRAME_COLOUR, width=1)

    def _rect(box: Sequence[float], colour: tuple[int, int, int]) -> None:
        x1, x2 = sorted((box[0], box[2]))
        y1, y2 = sorted((box[1], box[3]))
        xy = [(x1 - ex0) * scale, (y1 - ey0) * scale, (x2 - ex0) * scale, (y2 - ey0) * scale]
        draw.rectangle(xy, outline=colour, width=lw)

    for box in gt:
        _rect(box, GT_COLOUR)
    for box in pred:
        _rect(box, OUTSIDE_COLOUR if is_outside(box, size) else PRED_COLOUR)
    return canvas
