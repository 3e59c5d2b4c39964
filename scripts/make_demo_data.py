#!/usr/bin/env python
"""Deterministic synthetic aerial scenes: the embedded default data of tests and the CPU demo.

Real remote-sensing datasets cannot be downloaded on the development machines, so this script draws small aerial-like
scenes with PIL (land-cover backgrounds with texture; buildings, storage tanks, planes, ships and roads with known
class, count, colour and box) and writes them in exactly the formats of docs/data-format.md:

    DIR/images/          image folder of the list files (pretrain/, sft/, cot/)
    DIR/pretrain.json    captions, LLaVA list JSON
    DIR/sft.json         {CLS} / {VQA} / {VG} instructions, multiple choice, a few multi-image and text-only records
    DIR/cot_sft.json     the same kinds of questions with a reasoning system turn and <reasoning>/<answer> answers
    DIR/grpo/            datasets.DatasetDict {train, test} (save_to_disk)
    DIR/eval/            data_root with the 12 benchmark JSON files and their image folders
    DIR/scenes.json      demo-only manifest: image -> background and objects (used by tests; not an exchange format)

Every answer is fixed by an obvious visual property (background colour -> scene class, a distinctly coloured object
-> presence, counts of coloured shapes, one large high-contrast object for grounding), so a tiny Qwen2-VL trained for a
few minutes on CPU can learn it. Train scenes (pretrain/SFT/CoT/GRPO train) and test scenes (GRPO test, eval) come
from different random streams and never share an image.

Usage:
    python scripts/make_demo_data.py --output_dir demo_out/data --scale full [--seed 0]
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import functools
import io
import json
import logging
import random
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


logger = logging.getLogger("make_demo_data")

# ---------------------------------------------------------------------------------------------------------------
# Shared text conventions. Keep in sync with docs/data-format.md
# ---------------------------------------------------------------------------------------------------------------
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
REASONING_SYSTEM_PROMPT = (
    "A conversation between User and Assistant. The user asks a question about an image, and the Assistant answers "
    "it. The Assistant first thinks about the reasoning process in the mind and then provides the user with the "
    "answer. The reasoning process and answer are enclosed within <reasoning> </reasoning> and <answer> </answer> "
    "tags, respectively, i.e., <reasoning> reasoning process here </reasoning><answer> answer here </answer>"
)
CLS_TAG, VQA_TAG, VG_TAG = "{CLS}", "{VQA}", "{VG}"
TASK_TAGS = (CLS_TAG, VQA_TAG, VG_TAG)

# ---------------------------------------------------------------------------------------------------------------
# Sizes. Tune here: number of records (or rows) per output and scale.
# ---------------------------------------------------------------------------------------------------------------
SCALES: dict[str, dict[str, int]] = {
    "small": {
        "pretrain": 12,
        "sft_cls": 12,
        "sft_presence": 10,
        "sft_count": 6,
        "sft_comp": 8,
        "sft_rural": 6,
        "sft_vg": 10,
        "sft_mc": 6,
        "sft_multi_image": 2,
        "sft_text_only": 2,
        "cot_per_task": 3,
        "grpo_train": 16,
        "grpo_test": 8,
        "eval_per_benchmark": 10,
    },
    "full": {
        "pretrain": 600,
        # Classification and rural/urban are learnt first and from few records; presence and grounding get more.
        "sft_cls": 300,
        "sft_presence": 600,
        "sft_count": 250,
        "sft_comp": 450,
        "sft_rural": 120,
        "sft_vg": 800,
        "sft_mc": 200,
        "sft_multi_image": 20,
        "sft_text_only": 20,
        # CoT-SFT teaches every skill again behind a reasoning: grounding and presence are relearnt slowest there.
        "cot_per_task": 150,
        "cot_vg": 500,
        "cot_presence": 300,
        "grpo_train": 240,
        "grpo_test": 48,
        "eval_per_benchmark": 50,
    },
}

# Image sizes (width, height). Train scenes are mostly square; eval has more non-square images. Every eval size is
# also a train size: a 3x4-token image puts boxes on another grid (multiples of 333), which cannot be guessed.
TRAIN_SIZES = ((112, 112), (112, 112), (112, 84), (84, 112))
TEST_SIZES = ((112, 112), (112, 84), (84, 112))
PNG_COMPRESS_LEVEL = 1  # fast zlib level: PNG encoding dominates the build time
CELL = 28  # objects of ordinary scenes sit one per 28x28 cell (one merged Qwen2-VL token)
OBJ_SIDE = (22, 26)  # side lengths (px) of ordinary objects: they fill most of their cell
SHIP_SHORT_SIDE = (12, 14)  # ships are elongated: long side from OBJ_SIDE, short side from here
# Share of "no" presence questions asked about an empty scene (the others show objects of other kinds only): telling
# "some object" from "no object" needs no binding of the asked kind to its colour, which a tiny model learns slowly.
PRESENCE_EMPTY_NEGATIVES = 0.5
VG_TARGET_CELLS = 2  # grounding targets span 2x2 cells (ships 2x1 or 1x2), aligned to the cell grid

# ---------------------------------------------------------------------------------------------------------------
# Scene vocabulary: one clearly distinct colour per land-cover class and per object kind.
# ---------------------------------------------------------------------------------------------------------------
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "water": (40, 90, 170),
    "forest": (30, 100, 45),
    "farmland": (150, 190, 70),
    "desert": (215, 185, 125),
    "urban": (128, 128, 128),
    "mountain": (115, 80, 55),
}
SCENE_CLASSES = tuple(BACKGROUNDS)
BACKGROUND_LOOK = {  # (colour words, texture words) used in reasoning
    "water": ("blue", "small ripples"),
    "forest": ("dark green", "dense tree crowns"),
    "farmland": ("light green", "parallel field strips"),
    "desert": ("sandy beige", "wind-blown dunes"),
    "urban": ("grey", "a regular street grid"),
    "mountain": ("brown", "rough ridges"),
}
BACKGROUND_PHRASE = {
    "water": "open water",
    "forest": "a dense forest",
    "farmland": "farmland",
    "desert": "a sandy desert",
    "urban": "an urban area",
    "mountain": "mountainous terrain",
}

OBJECT_COLOURS: dict[str, tuple[int, int, int]] = {
    "building": (215, 35, 35),
    "storage tank": (245, 245, 245),
    "plane": (250, 225, 20),
    "ship": (225, 50, 225),
    "road": (45, 45, 45),
}
OBJECT_KINDS = tuple(OBJECT_COLOURS)
COUNTABLE_KINDS = ("building", "storage tank", "plane", "ship")
COLOUR_NAMES = {"building": "red", "storage tank": "white", "plane": "yellow", "ship": "magenta", "road": "dark grey"}
SHAPES = {  # plural shape words used in reasoning
    "building": "red rectangles",
    "storage tank": "white circles",
    "plane": "yellow cross shapes",
    "ship": "magenta elongated shapes",
    "road": "dark straight strips",
}
SHAPE_SINGULAR = {
    "building": "red rectangle",
    "storage tank": "white circle",
    "plane": "yellow cross shape",
    "ship": "magenta elongated shape",
    "road": "dark straight strip",
}
PLURALS = {
    "building": "buildings",
    "storage tank": "storage tanks",
    "plane": "planes",
    "ship": "ships",
    "road": "roads",
}

# ---------------------------------------------------------------------------------------------------------------
# Question / answer / reasoning templates (eval questions = SFT questions without the task tag).
# ---------------------------------------------------------------------------------------------------------------
Q_CLS = "Classify the image into one of the following classes: {classes}. Answer with one word or phrase."
Q_PRESENCE = "Is there a {kind} in the image? Answer yes or no."
Q_COUNT = "How many {plural} are there in the image? Answer with a number."
Q_COMP = "Are there more {plural_a} than {plural_b} in the image? Answer yes or no."
Q_RURAL = "Is this a rural or an urban area? Answer with one word."
Q_VG = "the {kind}"
Q_CAPTION = "Describe the image."
Q_MULTI = "Do the two images show the same type of land cover? Answer yes or no."
Q_TEXT_ONLY = "In these aerial images, what colour is a {kind}? Answer with one word."
MC_SUFFIX = "Answer with the option letter."
Q_MC = {
    "identity": "What is the main land cover in this image?",
    "color": "What colour is the object in this image?",
    "quantity": "How many {plural} are in this image?",
    "location": "Where is the {kind} in this image?",
    "reasoning": "Which kind of object is more numerous in this image?",
}
# LHRS-Bench type ids: 1 identity, 2 color, 3 orientation, 4 shape, 5 quantity, 6 area, 7 distance, 8 resolution,
# 9 modality, 10 location, 11 reasoning.
MC_TYPES = {"identity": ["1"], "color": ["2"], "quantity": ["5"], "location": ["10"], "reasoning": ["5", "11"]}
QUADRANTS = ("top left", "top right", "bottom left", "bottom right")

CAPTION = "An aerial image of {place}{objects}."
R_CLS = "The background is mostly {colour} with {texture}, which is typical of {cls}."
# Presence reasoning names what to look for, not how many: a count is a harder skill than the yes/no it would justify.
R_PRESENT = "I look for {shapes}, which mark {plural}. I can see at least one."
R_ABSENT = "I look for {shapes}, which mark {plural}. I cannot see any."
R_COUNT = "I count the {shapes}, which mark {plural}: there are {n}."
R_COMP = "I count {count_a} and {count_b}. {na} is {relation} than {nb}."
R_URBAN = "I see {count_phrase} on a {colour} background. Many buildings mean an urban area."
R_RURAL = "I see {count_phrase} on a {colour} background. Few buildings mean a rural area."
R_VG = "The {kind} is the large {shape} in the {position} of the image."
R_MULTI = "The first image is {cls_a} and the second image is {cls_b}."
R_MC = "{evidence} So the answer is option {letter}."
R_MC_EVIDENCE = {
    "identity": "The background is mostly {colour} with {texture}, which is {cls}.",
    "color": "The only object is a {kind}, drawn in {colour}.",
    "quantity": "I count {count_phrase}.",
    "location": "The {kind} lies in the {quadrant} part of the image.",
    "reasoning": "I count {count_a} and {count_b}.",
}

# The 12 benchmark files of the RSRM/ScoreRS layout: task key -> (file name, task type).
BENCHMARKS: dict[str, tuple[str, str]] = {
    "cls_aid": ("cls_AID.json", "cls"),
    "cls_METER_ML": ("cls_METER_ML.json", "cls"),
    "cls_NWPU_RESISC45": ("cls_NWPU_RESISC45.json", "cls"),
    "cls_SIRI": ("cls_SIRI_WHU.json", "cls"),
    "cls_WHU_RS19": ("cls_WHU_RS19.json", "cls"),
    "vqa_HR-comp": ("RSVQA_HR-comp_RSVQA.json", "vqa"),
    "vqa_HR-pre": ("RSVQA_HR-presence_RSVQA.json", "vqa"),
    "vqa_LR-comp": ("RSVQA_LR-comp_RSVQA.json", "vqa"),
    "vqa_LR-pre": ("RSVQA_LR-presence_RSVQA.json", "vqa"),
    "vqa_LR-rural": ("RSVQA_LR-rural_urban_RSVQA.json", "vqa"),
    "rs_vg": ("VG_DOIR_RSVG_test.json", "bbox"),
    "lhrs_bench": ("LHRS-Bench.json", "lhrsbench"),
}
# Candidate classes listed in each classification benchmark's question (the SFT data uses the same lists).
CLS_CANDIDATES: dict[str, tuple[str, ...]] = {
    "cls_aid": ("desert", "farmland", "forest", "mountain", "urban", "water"),
    "cls_METER_ML": ("desert", "farmland", "forest", "urban"),
    "cls_NWPU_RESISC45": ("water", "urban", "mountain", "forest", "farmland", "desert"),
    "cls_SIRI": ("farmland", "urban", "water"),
    "cls_WHU_RS19": ("desert", "forest", "mountain", "urban", "water"),
}
# The RSVQA-LR files share one image folder through the relative `image_path` rule.
LR_IMAGE_PATH = "RSVQA_LR/Images"


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


@dataclasses.dataclass
class QA:
    """One question about one or more scenes, in every form the writers need."""

    task: str  # cls | presence | count | comp | rural | vg | mc | caption | multi | text
    tag: str  # task tag prefixed in SFT/GRPO prompts ("" for multiple choice, captions)
    question: str  # without tag and without <image>
    answer: str  # SFT/GRPO answer (grounding: "[[x1, y1, x2, y2]]" on the 0-1000 grid)
    reasoning: str
    scenes: list[Scene]
    pixel_answer: str = ""  # grounding only: "[x1, y1, x2, y2]" in pixels (eval GT)
    types: list[str] | None = None  # LHRS type ids (multiple choice only)

    @property
    def prompt_text(self) -> str:
        return f"{self.tag} {self.question}" if self.tag else self.question


def _plural_phrase(n: int, kind: str) -> str:
    return f"{n} {kind if n == 1 else PLURALS[kind]}"


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


def _position(box: tuple[int, int, int, int], width: int, height: int) -> str:
    cx, cy = (box[0] + box[2]) / 2 / width, (box[1] + box[3]) / 2 / height
    row = "top" if cy < 1 / 3 else "bottom" if cy > 2 / 3 else ""
    col = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else ""
    return " ".join(p for p in (row, col) if p) or "centre"


# ---------------------------------------------------------------------------------------------------------------
# Question builders: each samples a scene and returns a QA (no pixels are drawn here).
# ---------------------------------------------------------------------------------------------------------------
Sizes = tuple[tuple[int, int], ...]


def _random_counts(rng: random.Random, max_kinds: int = 2, max_count: int = 3) -> dict[str, int]:
    kinds = rng.sample(COUNTABLE_KINDS, rng.randint(0, max_kinds))
    return {k: rng.randint(1, max_count) for k in kinds}


# Builders take `index`, the record's position among those of its builder: they cycle through variants (class lists,
# object kinds, multiple-choice subtypes) and alternate yes/no answers with it, so that every variant appears even in
# the small scale and binary answers are balanced.
def qa_cls(rng: random.Random, sizes: Sizes, index: int, candidates: tuple[str, ...] | None = None) -> QA:
    if candidates is None:
        lists = list(CLS_CANDIDATES.values())
        candidates = lists[index % len(lists)]
    bg = rng.choice(candidates)
    scene = make_scene(rng, rng.choice(sizes), bg, _random_counts(rng), road=rng.random() < 0.2)
    colour, texture = BACKGROUND_LOOK[bg]
    return QA(
        "cls",
        CLS_TAG,
        Q_CLS.format(classes=", ".join(candidates)),
        bg,
        R_CLS.format(colour=colour, texture=texture, cls=bg),
        [scene],
    )


def qa_presence(rng: random.Random, sizes: Sizes, index: int, kinds: tuple[str, ...] = OBJECT_KINDS) -> QA:
    kind = kinds[(index // 2) % len(kinds)]
    present = index % 2 == 0
    others = [k for k in COUNTABLE_KINDS if k != kind]
    if present:
        n_others = rng.randint(0, 1)
    else:  # an empty scene or one with distractors of other kinds only
        n_others = 0 if rng.random() < PRESENCE_EMPTY_NEGATIVES else rng.randint(1, 2)
    counts = {k: rng.randint(1, 2) for k in rng.sample(others, n_others)}
    if present and kind != "road":
        counts[kind] = rng.randint(1, 3)
    road = present if kind == "road" else n_others > 0 and rng.random() < 0.15
    scene = make_scene(rng, rng.choice(sizes), rng.choice(SCENE_CLASSES), counts, road=road)
    n = scene.count(kind)
    if n:
        reasoning = R_PRESENT.format(shapes=SHAPES[kind], plural=PLURALS[kind])
    else:
        reasoning = R_ABSENT.format(shapes=SHAPES[kind], plural=PLURALS[kind])
    return QA("presence", VQA_TAG, Q_PRESENCE.format(kind=kind), "yes" if n else "no", reasoning, [scene])


def qa_count(rng: random.Random, sizes: Sizes, index: int) -> QA:
    kind = COUNTABLE_KINDS[index % len(COUNTABLE_KINDS)]
    counts = {kind: rng.randint(1, 4)}
    for other in rng.sample([k for k in COUNTABLE_KINDS if k != kind], rng.randint(0, 1)):
        counts[other] = rng.randint(1, 2)
    scene = make_scene(rng, rng.choice(sizes), rng.choice(SCENE_CLASSES), counts)
    n = counts[kind]
    return QA(
        "count",
        VQA_TAG,
        Q_COUNT.format(plural=PLURALS[kind]),
        str(n),
        R_COUNT.format(shapes=SHAPES[kind], plural=PLURALS[kind], n=n),
        [scene],
    )


def _two_counts(rng: random.Random, low: int = 0, first_larger: bool | None = None) -> tuple[int, int]:
    """Two object counts in [low, 4] that differ by at least 2 (an obvious difference)."""
    pairs = [(a, b) for a in range(low, 5) for b in range(low, 5) if abs(a - b) >= 2]
    if first_larger is not None:
        pairs = [(a, b) for a, b in pairs if (a > b) == first_larger]
    return rng.choice(pairs)


def qa_comp(rng: random.Random, sizes: Sizes, index: int) -> QA:
    kind_a, kind_b = rng.sample(COUNTABLE_KINDS, 2)
    na, nb = _two_counts(rng, first_larger=index % 2 == 0)
    scene = make_scene(rng, rng.choice(sizes), rng.choice(SCENE_CLASSES), {kind_a: na, kind_b: nb})
    reasoning = R_COMP.format(
        count_a=_plural_phrase(na, kind_a),
        count_b=_plural_phrase(nb, kind_b),
        na=na,
        nb=nb,
        relation="more" if na > nb else "less",
    )
    question = Q_COMP.format(plural_a=PLURALS[kind_a], plural_b=PLURALS[kind_b])
    return QA("comp", VQA_TAG, question, "yes" if na > nb else "no", reasoning, [scene])


def qa_rural(rng: random.Random, sizes: Sizes, index: int) -> QA:
    urban = index % 2 == 0
    if urban:
        bg, counts = "urban", {"building": rng.randint(4, 7)}
    else:
        bg, counts = rng.choice(("farmland", "forest")), {"building": rng.randint(0, 1)}
    extra = rng.choice(("storage tank", "plane", "ship"))
    counts[extra] = rng.randint(0, 1)
    scene = make_scene(rng, rng.choice(sizes), bg, counts, road=urban or rng.random() < 0.3)
    n = counts["building"]
    phrase = _plural_phrase(n, "building") if n else "no buildings"
    template = R_URBAN if urban else R_RURAL
    reasoning = template.format(count_phrase=phrase, colour=BACKGROUND_LOOK[bg][0])
    return QA("rural", VQA_TAG, Q_RURAL, "urban" if urban else "rural", reasoning, [scene])


def qa_vg(rng: random.Random, sizes: Sizes, index: int) -> QA:
    kind = COUNTABLE_KINDS[index % len(COUNTABLE_KINDS)]
    scene = make_vg_scene(rng, rng.choice(sizes), rng.choice(SCENE_CLASSES), kind)
    box = scene.objects[0].box
    grid = "[" + format_box(to_grid(box, scene.width, scene.height)) + "]"
    reasoning = R_VG.format(kind=kind, shape=SHAPE_SINGULAR[kind], position=_position(box, scene.width, scene.height))
    return QA("vg", VG_TAG, Q_VG.format(kind=kind), grid, reasoning, [scene], pixel_answer=format_box(box))


def _options(rng: random.Random, correct: str, pool: list[str], n: int, shuffle: bool = True) -> tuple[str, str]:
    wrong = rng.sample([p for p in pool if p != correct], n - 1)
    options = [correct, *wrong]
    if shuffle:
        rng.shuffle(options)
    else:
        options.sort(key=pool.index)
    letters = "ABCD"
    text = "\n".join(f"{letters[i]}. {o}" for i, o in enumerate(options))
    return text, letters[options.index(correct)]


def qa_mc(rng: random.Random, sizes: Sizes, index: int) -> QA:
    """LHRS-Bench style multiple choice (no task tag); the answer is the option letter."""
    subtype = list(Q_MC)[index % len(Q_MC)]
    size = rng.choice(sizes)
    bg = rng.choice(SCENE_CLASSES)
    if subtype == "identity":
        scene = make_scene(rng, size, bg, _random_counts(rng))
        question = Q_MC[subtype]
        options, letter = _options(rng, bg, list(SCENE_CLASSES), 4)
        colour, texture = BACKGROUND_LOOK[bg]
        evidence = R_MC_EVIDENCE[subtype].format(colour=colour, texture=texture, cls=bg)
    elif subtype == "color":
        kind = rng.choice(COUNTABLE_KINDS)
        scene = make_scene(rng, size, bg, {kind: rng.randint(1, 2)})
        question = Q_MC[subtype]
        options, letter = _options(rng, COLOUR_NAMES[kind], [COLOUR_NAMES[k] for k in COUNTABLE_KINDS], 4)
        evidence = R_MC_EVIDENCE[subtype].format(kind=kind, colour=COLOUR_NAMES[kind])
    elif subtype == "quantity":
        kind = rng.choice(COUNTABLE_KINDS)
        n = rng.randint(1, 4)
        scene = make_scene(rng, size, bg, {kind: n})
        question = Q_MC[subtype].format(plural=PLURALS[kind])
        options, letter = _options(rng, str(n), ["1", "2", "3", "4"], 4, shuffle=False)
        evidence = R_MC_EVIDENCE[subtype].format(count_phrase=_plural_phrase(n, kind))
    elif subtype == "location":
        kind = rng.choice(COUNTABLE_KINDS)
        quadrant = rng.choice(QUADRANTS)
        cols, rows = size[0] // CELL, size[1] // CELL
        row_range = range(0, rows // 2) if quadrant.startswith("top") else range(rows - rows // 2, rows)
        col_range = range(0, cols // 2) if quadrant.endswith("left") else range(cols - cols // 2, cols)
        cells = [(c * CELL, r * CELL) for r in row_range for c in col_range]
        scene = make_scene(rng, size, bg, {kind: 1}, cells=cells)
        question = Q_MC[subtype].format(kind=kind)
        options, letter = _options(rng, quadrant, list(QUADRANTS), 4)
        evidence = R_MC_EVIDENCE[subtype].format(kind=kind, quadrant=quadrant)
    else:  # reasoning
        kind_a, kind_b = rng.sample(COUNTABLE_KINDS, 2)
        na, nb = _two_counts(rng, low=1)  # both kinds visible
        scene = make_scene(rng, size, bg, {kind_a: na, kind_b: nb})
        question = Q_MC[subtype]
        more = PLURALS[kind_a] if na > nb else PLURALS[kind_b]
        options, letter = _options(rng, more, [PLURALS[kind_a], PLURALS[kind_b]], 2)
        evidence = R_MC_EVIDENCE[subtype].format(
            count_a=_plural_phrase(na, kind_a), count_b=_plural_phrase(nb, kind_b)
        )
    text = f"{question}\n{options}\n{MC_SUFFIX}"
    reasoning = R_MC.format(evidence=evidence, letter=letter)
    return QA("mc", "", text, letter, reasoning, [scene], types=list(MC_TYPES[subtype]))


def caption_of(scene: Scene) -> str:
    parts = [_plural_phrase(scene.count(k), k) for k in COUNTABLE_KINDS if scene.count(k)]
    if scene.count("road"):
        parts.append("a road")
    if not parts:
        objects = " with no visible objects"
    elif len(parts) == 1:
        objects = f" with {parts[0]}"
    else:
        objects = f" with {', '.join(parts[:-1])} and {parts[-1]}"
    return CAPTION.format(place=BACKGROUND_PHRASE[scene.background], objects=objects)


def qa_caption(rng: random.Random, sizes: Sizes, index: int) -> QA:
    bg = SCENE_CLASSES[index % len(SCENE_CLASSES)]
    scene = make_scene(rng, rng.choice(sizes), bg, _random_counts(rng), road=rng.random() < 0.3)
    caption = caption_of(scene)
    return QA("caption", "", Q_CAPTION, caption, caption, [scene])


def qa_multi(rng: random.Random, sizes: Sizes, index: int) -> QA:
    a = rng.choice(SCENE_CLASSES)
    b = a if index % 2 == 0 else rng.choice([c for c in SCENE_CLASSES if c != a])
    scenes = [make_scene(rng, rng.choice(sizes), bg, _random_counts(rng, 1, 2)) for bg in (a, b)]
    reasoning = R_MULTI.format(cls_a=a, cls_b=b)
    return QA("multi", VQA_TAG, Q_MULTI, "yes" if a == b else "no", reasoning, scenes)


def qa_text(rng: random.Random, sizes: Sizes, index: int) -> QA:
    kind = COUNTABLE_KINDS[index % len(COUNTABLE_KINDS)]
    answer = COLOUR_NAMES[kind]
    return QA("text", VQA_TAG, Q_TEXT_ONLY.format(kind=kind), answer, f"A {kind} is drawn in {answer}.", [])


Builder = Callable[[random.Random, Sizes, int], QA]
SFT_BUILDERS: dict[str, Builder] = {
    "sft_cls": qa_cls,
    "sft_presence": qa_presence,
    "sft_count": qa_count,
    "sft_comp": qa_comp,
    "sft_rural": qa_rural,
    "sft_vg": qa_vg,
    "sft_mc": qa_mc,
    "sft_multi_image": qa_multi,
    "sft_text_only": qa_text,
}
COT_BUILDERS: tuple[Builder, ...] = (qa_cls, qa_presence, qa_count, qa_comp, qa_rural, qa_vg, qa_mc)


def eval_builder(key: str) -> Builder:
    """The question builder of one benchmark (task key of BENCHMARKS)."""
    if key in CLS_CANDIDATES:
        return functools.partial(qa_cls, candidates=CLS_CANDIDATES[key])
    return {
        "vqa_HR-comp": qa_comp,
        "vqa_LR-comp": qa_comp,
        "vqa_HR-pre": functools.partial(qa_presence, kinds=COUNTABLE_KINDS),
        "vqa_LR-pre": qa_presence,
        "vqa_LR-rural": qa_rural,
        "rs_vg": qa_vg,
        "lhrs_bench": qa_mc,
    }[key]


# ---------------------------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------------------------
class ImageWriter:
    """Renders scenes to PNG files and records them in the manifest (keys: paths relative to the output dir)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.manifest: dict[str, dict] = {}

    def write(self, scene: Scene, path: Path) -> Image.Image:
        path.parent.mkdir(parents=True, exist_ok=True)
        img = render(scene)
        img.save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        self.manifest[path.relative_to(self.root).as_posix()] = scene.meta()
        return img


def _human(qa: QA) -> str:
    return "<image>\n" * len(qa.scenes) + qa.prompt_text


def _list_record(rid: str, qa: QA, images: list[str], cot: bool) -> dict:
    record: dict = {"id": rid}
    if len(images) == 1:
        record["image"] = images[0]
    elif images:
        record["image"] = images
    turns = []
    if cot:
        turns.append({"from": "system", "value": REASONING_SYSTEM_PROMPT})
        answer = f"<reasoning>{qa.reasoning}</reasoning><answer>{qa.answer}</answer>"
    else:
        answer = qa.answer
    turns += [{"from": "human", "value": _human(qa)}, {"from": "gpt", "value": answer}]
    record["conversations"] = turns
    return record


def _write_list(
    out: Path, images: ImageWriter, name: str, folder: str, qas: list[QA], cot: bool = False
) -> list[dict]:
    records = []
    for i, qa in enumerate(qas):
        rid = f"{name}_{i:05d}"
        rels = []
        for j, scene in enumerate(qa.scenes):
            rel = f"{folder}/{rid}" + (f"_{j}" if len(qa.scenes) > 1 else "") + ".png"
            images.write(scene, out / "images" / rel)
            rels.append(rel)
        records.append(_list_record(rid, qa, rels, cot))
    _dump_json(out / f"{name}.json", records)
    return records


def _dump_json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def _grpo_rows(qas: list[QA]) -> dict[str, list]:
    rows: dict[str, list] = {"image": [], "problem": [], "prompt": [], "solution": []}
    for qa in qas:
        img = render(qa.scenes[0])
        data = png_bytes(img)
        answer_type = {"vg": "2", "caption": "0"}.get(qa.task, "1")
        rows["image"].append({"bytes": data, "path": None})
        rows["problem"].append(qa.prompt_text)
        rows["prompt"].append(
            [
                {"role": "system", "content": [{"type": "text", "text": REASONING_SYSTEM_PROMPT}]},
                {
                    "role": "user",
                    "content": [{"type": "image", "text": None}, {"type": "text", "text": qa.prompt_text}],
                },
            ]
        )
        rows["solution"].append([answer_type, qa.answer, qa.prompt_text, base64.b64encode(data).decode("ascii")])
    return rows


def _grpo_qas(rng: random.Random, n: int, sizes: Sizes) -> list[QA]:
    """Mix: ~5% open-ended captions (type 0, at least one), ~25% grounding (type 2), the rest exact (type 1)."""
    exact = (qa_cls, qa_presence, qa_count, qa_comp, qa_rural, qa_mc)
    n_open = max(1, n // 20)
    n_vg = max(1, n // 4)
    qas = [qa_caption(rng, sizes, i) for i in range(n_open)] + [qa_vg(rng, sizes, i) for i in range(n_vg)]
    qas += [exact[i % len(exact)](rng, sizes, i // len(exact)) for i in range(n - n_open - n_vg)]
    rng.shuffle(qas)
    return qas


def _write_grpo(out: Path, train: list[QA], test: list[QA]) -> None:
    import datasets  # heavy import, only needed here

    features = datasets.Features(
        {
            "image": datasets.Image(),
            "problem": datasets.Value("string"),
            "prompt": datasets.List(
                {
                    "role": datasets.Value("string"),
                    "content": datasets.List({"type": datasets.Value("string"), "text": datasets.Value("string")}),
                }
            ),
            "solution": datasets.List(datasets.Value("string")),
        }
    )
    dd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(_grpo_rows(train), features=features),
            "test": datasets.Dataset.from_dict(_grpo_rows(test), features=features),
        }
    )
    bars_were_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        dd.save_to_disk(str(out / "grpo"))
    finally:
        if bars_were_enabled:
            datasets.enable_progress_bars()


def _write_eval(out: Path, images: ImageWriter, rng: random.Random, n: int) -> None:
    data_root = out / "eval"
    for key, (file_name, _task_type) in BENCHMARKS.items():
        stem = Path(file_name).stem
        uses_lr_folder = key.startswith("vqa_LR")
        builder = eval_builder(key)
        records = []
        for i in range(n):
            qa = builder(rng, TEST_SIZES, i)
            scene = qa.scenes[0]
            name = f"{stem}_{i:04d}.png"
            folder = data_root / (LR_IMAGE_PATH if uses_lr_folder else stem)
            images.write(scene, folder / name)
            answer = qa.pixel_answer if qa.task == "vg" else qa.answer
            record: dict = {"image": name}
            if uses_lr_folder:
                record["image_path"] = LR_IMAGE_PATH
            record["conversations"] = [
                {"from": "human", "value": "<image>\n" + qa.question},
                {"from": "gpt", "value": answer},
            ]
            if i % 5 != 4:  # most records carry size [height, width]; every fifth leaves it out
                record["size"] = [scene.height, scene.width]
            if qa.types is not None:
                record["type"] = qa.types
            records.append(record)
        _dump_json(data_root / file_name, records)


def cot_count(counts: dict[str, int], builder: Builder) -> int:
    """CoT-SFT records of one task: its own `cot_<task>` count if the scale has one, else `cot_per_task`."""
    return counts.get("cot_" + builder.__name__.removeprefix("qa_"), counts["cot_per_task"])


def build_demo_data(output_dir: str | Path, seed: int = 0, scale: str = "small") -> Path:
    """Write the whole demo dataset under `output_dir` (see the module docstring) and return that path."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {sorted(SCALES)}")
    counts = SCALES[scale]
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    images = ImageWriter(out)
    start = time.perf_counter()

    # Independent random streams: train scenes and test scenes never come from the same stream.
    def stream(name: str) -> random.Random:
        return random.Random(f"tinyrs-demo:{seed}:{name}")

    rng = stream("pretrain")
    pretrain = [qa_caption(rng, TRAIN_SIZES, i) for i in range(counts["pretrain"])]
    _write_list(out, images, "pretrain", "pretrain", pretrain)

    rng = stream("sft")
    sft = [builder(rng, TRAIN_SIZES, i) for key, builder in SFT_BUILDERS.items() for i in range(counts[key])]
    rng.shuffle(sft)
    _write_list(out, images, "sft", "sft", sft)

    rng = stream("cot")
    cot = [builder(rng, TRAIN_SIZES, i) for builder in COT_BUILDERS for i in range(cot_count(counts, builder))]
    rng.shuffle(cot)
    _write_list(out, images, "cot_sft", "cot", cot, cot=True)

    _write_grpo(
        out,
        _grpo_qas(stream("grpo-train"), counts["grpo_train"], TRAIN_SIZES),
        _grpo_qas(stream("grpo-test"), counts["grpo_test"], TEST_SIZES),
    )
    _write_eval(out, images, stream("eval"), counts["eval_per_benchmark"])
    _dump_json(out / "scenes.json", images.manifest)
    logger.info("demo data (%s, seed %d) written to %s in %.1f s", scale, seed, out, time.perf_counter() - start)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Tokenizer corpus
# ---------------------------------------------------------------------------------------------------------------
def corpus_texts() -> list[str]:
    """Representative texts of every template the generator can emit, for training the tiny BPE tokenizer."""
    texts = [DEFAULT_SYSTEM_PROMPT, REASONING_SYSTEM_PROMPT, *TASK_TAGS, MC_SUFFIX, "<reasoning>", "</reasoning>"]
    texts += ["<answer>", "</answer>", "yes", "no", "rural", "urban", *SCENE_CLASSES, *QUADRANTS]
    for kind in OBJECT_KINDS:
        texts += [
            Q_PRESENCE.format(kind=kind),
            R_PRESENT.format(shapes=SHAPES[kind], plural=PLURALS[kind]),
            R_ABSENT.format(shapes=SHAPES[kind], plural=PLURALS[kind]),
            Q_TEXT_ONLY.format(kind=kind),
            f"A {kind} is drawn in {COLOUR_NAMES[kind]}.",
            Q_VG.format(kind=kind),
            SHAPE_SINGULAR[kind],
        ]
    for kind in COUNTABLE_KINDS:
        texts += [Q_COUNT.format(plural=PLURALS[kind]), Q_MC["quantity"].format(plural=PLURALS[kind])]
        texts += [Q_MC["location"].format(kind=kind), R_MC_EVIDENCE["color"].format(kind=kind, colour="red")]
        for other in COUNTABLE_KINDS:
            if other != kind:
                texts.append(Q_COMP.format(plural_a=PLURALS[kind], plural_b=PLURALS[other]))
    for candidates in CLS_CANDIDATES.values():
        texts.append(Q_CLS.format(classes=", ".join(candidates)))
    for bg in SCENE_CLASSES:
        colour, texture = BACKGROUND_LOOK[bg]
        texts += [R_CLS.format(colour=colour, texture=texture, cls=bg), BACKGROUND_PHRASE[bg]]
    texts += [Q_RURAL, Q_CAPTION, Q_MULTI, *Q_MC.values()]
    # Filled examples of every builder (questions, answers, reasoning, captions, boxes), as they appear in the data.
    rng = random.Random("tinyrs-demo:corpus")
    builders = [*COT_BUILDERS, qa_caption, qa_multi, qa_text]
    for i in range(40 * len(builders)):
        qa = builders[i % len(builders)](rng, TEST_SIZES, i // len(builders))
        texts += [_human(qa), qa.answer, f"<reasoning>{qa.reasoning}</reasoning><answer>{qa.answer}</answer>"]
        if qa.pixel_answer:
            texts.append(qa.pixel_answer)
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", required=True, help="folder to write (created if missing)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    out = build_demo_data(args.output_dir, seed=args.seed, scale=args.scale)
    for name in ("pretrain.json", "sft.json", "cot_sft.json"):
        print(f"{out / name}: {len(json.loads((out / name).read_text()))} records")
    for key, (file_name, _) in BENCHMARKS.items():
        print(f"{out / 'eval' / file_name}: {len(json.loads((out / 'eval' / file_name).read_text()))} records ({key})")
    print(f"{out / 'grpo'}: DatasetDict train/test")


if __name__ == "__main__":
    main()
