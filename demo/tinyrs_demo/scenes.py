"""Synthetic aerial scenes: what a scene holds (`Scene`, `Obj`), how one is sampled (`make_scene`, `make_vg_scene`),
how it is drawn (`render`, `png_bytes`) and how its boxes are written (`to_grid`, `format_box`).

Objects sit on a grid of 28x28 px cells, one merged Qwen2-VL visual token each, and have one clearly distinct colour
per kind (tinyrs_demo.vocabulary), so every answer about a scene is fixed by an obvious visual property.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import random

import numpy as np
from PIL import Image, ImageDraw

from tinyrs_demo.vocabulary import BACKGROUNDS, COUNTABLE_KINDS, OBJECT_COLOURS


# Image sizes (width, height). Train scenes are mostly square; eval has more non-square images. Every eval size is
# also a train size: a 3x4-token image puts boxes on another grid (multiples of 333), which cannot be guessed.
TRAIN_SIZES = ((112, 112), (112, 112), (112, 84), (84, 112))
TEST_SIZES = ((112, 112), (112, 84), (84, 112))
PNG_COMPRESS_LEVEL = 1  # fast zlib level: PNG encoding dominates the build time
CELL = 28  # objects of ordinary scenes sit one per 28x28 cell (one merged Qwen2-VL token)
OBJ_SIDE = (22, 26)  # side lengths (px) of ordinary objects: they fill most of their cell
SHIP_SHORT_SIDE = (12, 14)  # ships are elongated: long side from OBJ_SIDE, short side from here
VG_TARGET_CELLS = 2  # grounding targets span 2x2 cells (ships 2x1 or 1x2), aligned to the cell grid


# ---------------------------------------------------------------------------------------------------------------
# Scenes
# ---------------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Obj:
    kind: str
    box: tuple[int, int, int, int]  # pixels [x1, y1, x2, y2], x2/y2 exclusive (continuous edge coordinates)
    vertical: bool = False


@dataclasses.dataclass
class Scene:
    width: int
    height: int
    background: str
    objects: list[Obj]
    texture_seed: int

    def count(self, kind: str) -> int:
        return sum(o.kind == kind for o in self.objects)

    def meta(self) -> dict:
        return {
            "width": self.width,
            "height": self.height,
            "background": self.background,
            "objects": [{"kind": o.kind, "box": list(o.box)} for o in self.objects],
        }


def _cells(width: int, height: int) -> list[tuple[int, int]]:
    return [(c * CELL, r * CELL) for r in range(height // CELL) for c in range(width // CELL)]


def _small_box(rng: random.Random, kind: str, cell: tuple[int, int]) -> tuple[tuple[int, int, int, int], bool]:
    """A box of an ordinary-size object filling most of a 28x28 cell (1-3 px margin).

    Objects fill their cell so that the one merged visual token that covers them is dominated by the object's
    colour: a tiny randomly initialised model can then tell which objects a scene holds (presence, counts).
    """
    vertical = rng.random() < 0.5
    if kind == "ship":
        long, short = rng.randint(*OBJ_SIDE), rng.randint(*SHIP_SHORT_SIDE)
        w, h = (short, long) if vertical else (long, short)
    else:
        w = rng.randint(*OBJ_SIDE)
        h = w if kind == "storage tank" else rng.randint(*OBJ_SIDE)
    x = cell[0] + rng.randint(1, CELL - 1 - w)
    y = cell[1] + rng.randint(1, CELL - 1 - h)
    return (x, y, x + w, y + h), vertical


def _road(rng: random.Random, width: int, height: int) -> Obj:
    """A 6 px strip across the image through the middle of one row (or column) of cells."""
    if rng.random() < 0.5:
        y = rng.randrange(height // CELL) * CELL + 11
        return Obj("road", (0, y, width, y + 6), vertical=False)
    x = rng.randrange(width // CELL) * CELL + 11
    return Obj("road", (x, 0, x + 6, height), vertical=True)


def _overlaps(cell: tuple[int, int], box: tuple[int, int, int, int]) -> bool:
    return cell[0] < box[2] and box[0] < cell[0] + CELL and cell[1] < box[3] and box[1] < cell[1] + CELL


def make_scene(
    rng: random.Random,
    size: tuple[int, int],
    background: str,
    counts: dict[str, int],
    road: bool = False,
    cells: list[tuple[int, int]] | None = None,
) -> Scene:
    """Scene with `counts[kind]` ordinary objects in distinct random cells (`cells` restricts the choice).

    A road, if any, crosses one row or column of cells, which then holds no object (roads stay fully visible).
    """
    width, height = size
    objects = [_road(rng, width, height)] if road else []
    pool = list(cells) if cells is not None else _cells(width, height)
    pool = [c for c in pool if not any(_overlaps(c, o.box) for o in objects)]
    total = sum(counts.values())
    if total > len(pool):
        raise ValueError(f"{total} objects do not fit in {len(pool)} free cells")
    chosen = rng.sample(pool, total)
    kinds = [k for k in COUNTABLE_KINDS for _ in range(counts.get(k, 0))]
    for kind, cell in zip(kinds, chosen):
        box, vertical = _small_box(rng, kind, cell)
        objects.append(Obj(kind, box, vertical))
    return Scene(width, height, background, objects, rng.getrandbits(32))


def make_vg_scene(rng: random.Random, size: tuple[int, int], background: str, kind: str) -> Scene:
    """One large target object of `kind` on the cell grid plus 0-2 ordinary distractors of other kinds in free cells.

    The target spans VG_TARGET_CELLS x VG_TARGET_CELLS whole cells (a ship one cell less across), so its box edges
    lie on the cell grid: the box is fixed by which merged visual tokens the target covers, the answers use a few
    coordinates only (multiples of 250 or 333 on the 0-1000 grid), and an answer one cell off fails IoU 0.5.
    """
    width, height = size
    cols, rows = width // CELL, height // CELL
    vertical = rng.random() < 0.5
    span_x = span_y = VG_TARGET_CELLS
    if kind == "ship":
        span_x, span_y = (VG_TARGET_CELLS - 1, VG_TARGET_CELLS) if vertical else (VG_TARGET_CELLS, VG_TARGET_CELLS - 1)
    span_x, span_y = min(span_x, cols), min(span_y, rows)
    x = rng.randrange(cols - span_x + 1) * CELL
    y = rng.randrange(rows - span_y + 1) * CELL
    target = Obj(kind, (x, y, x + span_x * CELL, y + span_y * CELL), vertical)
    free = [c for c in _cells(width, height) if not _overlaps(c, target.box)]
    others = [k for k in COUNTABLE_KINDS if k != kind]
    n = min(rng.randint(0, 2), len(free))
    distractors = []
    for cell in rng.sample(free, n):
        other = rng.choice(others)
        box, vert = _small_box(rng, other, cell)
        distractors.append(Obj(other, box, vert))
    return Scene(width, height, background, [target, *distractors], rng.getrandbits(32))


# ---------------------------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------------------------
def _lowres_noise(rng: np.random.Generator, width: int, height: int, block: int, amp: float) -> np.ndarray:
    small = rng.normal(0.0, amp, (height // block + 1, width // block + 1)).astype(np.float32)
    return small.repeat(block, 0).repeat(block, 1)[:height, :width]


@functools.cache
def _grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    return yy, xx


def _background(scene: Scene) -> np.ndarray:
    rng = np.random.default_rng(scene.texture_seed)
    w, h = scene.width, scene.height
    yy, xx = _grid(w, h)
    kind = scene.background
    if kind == "water":
        pattern = 8.0 * np.sin(yy / 2.5 + 2.0 * np.sin(xx / 9.0 + rng.uniform(0, 6)))
    elif kind == "forest":
        pattern = _lowres_noise(rng, w, h, 4, 14.0)
    elif kind == "farmland":
        strip = rng.integers(10, 18)
        coord = xx if rng.random() < 0.5 else yy
        pattern = np.where((coord // strip) % 2 == 0, 14.0, -14.0)
    elif kind == "desert":
        pattern = 10.0 * np.sin((xx + yy) / 6.0 + rng.uniform(0, 6))
    elif kind == "urban":
        step = 14
        offset = int(rng.integers(0, step))
        pattern = np.where(((xx + offset) % step < 2) | ((yy + offset) % step < 2), 28.0, 0.0)
    else:  # mountain
        pattern = _lowres_noise(rng, w, h, 8, 16.0) + 6.0 * np.sin((xx - yy) / 4.0)
    pattern = pattern + _lowres_noise(rng, w, h, 2, 3.0)
    img = np.asarray(BACKGROUNDS[kind], np.float32)[None, None, :] + pattern[:, :, None]
    return np.clip(img, 0, 255).astype(np.uint8)


def _draw_object(draw: ImageDraw.ImageDraw, obj: Obj) -> None:
    x1, y1, x2, y2 = obj.box
    colour = OBJECT_COLOURS[obj.kind]
    last = (x2 - 1, y2 - 1)  # PIL boxes are inclusive
    if obj.kind == "building":
        draw.rectangle([(x1, y1), last], fill=colour, outline=(150, 20, 20))
    elif obj.kind == "storage tank":
        draw.ellipse([(x1, y1), last], fill=colour, outline=(200, 200, 200))
    elif obj.kind == "ship":
        draw.ellipse([(x1, y1), last], fill=colour)
    elif obj.kind == "road":
        draw.rectangle([(x1, y1), last], fill=colour)
    elif obj.kind == "plane":  # fuselage along the long axis, wings across; bbox = the whole cross
        w, h = x2 - x1, y2 - y1
        if obj.vertical:
            fw, wing_y = max(4, w // 3), y1 + h // 4
            cx = x1 + (w - fw) // 2
            draw.rectangle([(cx, y1), (cx + fw - 1, y2 - 1)], fill=colour)
            draw.rectangle([(x1, wing_y), (x2 - 1, wing_y + max(4, h // 3) - 1)], fill=colour)
        else:
            fh, wing_x = max(4, h // 3), x1 + w // 4
            cy = y1 + (h - fh) // 2
            draw.rectangle([(x1, cy), (x2 - 1, cy + fh - 1)], fill=colour)
            draw.rectangle([(wing_x, y1), (wing_x + max(4, w // 3) - 1, y2 - 1)], fill=colour)
    else:
        raise ValueError(f"unknown object kind {obj.kind!r}")


def render(scene: Scene) -> Image.Image:
    """Draw a scene (deterministic: the texture comes from scene.texture_seed)."""
    img = Image.fromarray(_background(scene), "RGB")
    draw = ImageDraw.Draw(img)
    for obj in sorted(scene.objects, key=lambda o: o.kind != "road"):  # roads first, objects on top
        _draw_object(draw, obj)
    return img


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------------------------
# Boxes
# ---------------------------------------------------------------------------------------------------------------
def to_grid(box: tuple[int, int, int, int], width: int, height: int) -> list[int]:
    """Pixel box -> 0-1000 grid: x_grid = round(x / width * 1000), y_grid = round(y / height * 1000)."""
    x1, y1, x2, y2 = box
    return [round(x1 / width * 1000), round(y1 / height * 1000), round(x2 / width * 1000), round(y2 / height * 1000)]


def format_box(box: list[int] | tuple[int, ...]) -> str:
    return "[" + ", ".join(str(int(v)) for v in box) + "]"
