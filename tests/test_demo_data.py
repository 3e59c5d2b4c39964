"""The demo data generator (tinyrs_demo) and the fixtures in tests/fixtures/ follow docs/data-format.md.

The validators below are written from the spec, independently of the generator (no package imports): every file
must validate, every answer must agree with the drawn pixels and the scene manifest, the build is deterministic,
train and test scenes are disjoint, and corpus_texts() covers every word the data can contain.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinyrs_demo.corpus import corpus_texts
from tinyrs_demo.questions import COT_BUILDERS, SCALES, cot_count
from tinyrs_demo.scenes import CELL
from tinyrs_demo.vocabulary import (
    BACKGROUND_PHRASE,
    BACKGROUNDS,
    COLOUR_NAMES,
    COUNTABLE_KINDS,
    OBJECT_COLOURS,
    PLURALS,
)
from tinyrs_demo.writers import build_demo_data


FIXTURES = Path(__file__).parent / "fixtures"
# Copied verbatim from docs/data-format.md 1.1 (not from the generator), so a drift in either is caught.
REASONING_SYSTEM_PROMPT = (
    "A conversation between User and Assistant. The user asks a question about an image, and the Assistant answers "
    "it. The Assistant first thinks about the reasoning process in the mind and then provides the user with the "
    "answer. The reasoning process and answer are enclosed within <reasoning> </reasoning> and <answer> </answer> "
    "tags, respectively, i.e., <reasoning> reasoning process here </reasoning><answer> answer here </answer>"
)
BENCHMARK_FILES = {
    "cls_AID.json": "cls",
    "cls_METER_ML.json": "cls",
    "cls_NWPU_RESISC45.json": "cls",
    "cls_SIRI_WHU.json": "cls",
    "cls_WHU_RS19.json": "cls",
    "RSVQA_HR-comp_RSVQA.json": "vqa",
    "RSVQA_HR-presence_RSVQA.json": "vqa",
    "RSVQA_LR-comp_RSVQA.json": "vqa",
    "RSVQA_LR-presence_RSVQA.json": "vqa",
    "RSVQA_LR-rural_urban_RSVQA.json": "vqa",
    "VG_DOIR_RSVG_test.json": "bbox",
    "LHRS-Bench.json": "lhrsbench",
}
LHRS_TYPE_IDS = {str(i) for i in range(1, 12)}
TAGS = ("{CLS}", "{VQA}", "{VG}")
COT_RE = re.compile(r"^<reasoning>(.+?)</reasoning><answer>(.+?)</answer>$", re.DOTALL)
GRID_BOX_RE = re.compile(r"^\[\[(\d+), (\d+), (\d+), (\d+)\]\]$")
PIXEL_BOX_RE = re.compile(r"\[(\d+),\s*(\d+),\s*(\d+),\s*(\d+)\]")
PLURAL_TO_KIND = {plural: kind for kind, plural in PLURALS.items()}


# ---------------------------------------------------------------------------------------------------------------
# Validators (docs/data-format.md sections 2, 3, 4)
# ---------------------------------------------------------------------------------------------------------------
def safe_join(folder: Path, rel: str, where: str) -> Path:
    assert isinstance(rel, str) and rel and not rel.startswith("/"), f"{where}: image path must be relative: {rel!r}"
    path = (folder / rel).resolve()
    assert path.is_relative_to(folder.resolve()), f"{where}: image path escapes the image folder: {rel!r}"
    assert path.is_file(), f"{where}: missing image {path}"
    return path


def validate_list_record(record: dict, image_folder: Path, where: str) -> list[Path]:
    """Section 2. Returns the resolved image paths."""
    assert isinstance(record, dict), f"{where}: record is not an object"
    assert isinstance(record.get("id"), str) and record["id"], f"{where}: missing id"
    assert "video" not in record, f"{where}: the demo data has no videos"
    images = record.get("image", [])
    images = [images] if isinstance(images, str) else images
    assert isinstance(images, list), f"{where}: image must be str or list of str"
    paths = [safe_join(image_folder, rel, where) for rel in images]
    turns = record["conversations"]
    assert isinstance(turns, list) and turns, f"{where}: conversations must be a non-empty list"
    for turn in turns:
        assert set(turn) == {"from", "value"}, f"{where}: bad turn keys {sorted(turn)}"
        assert isinstance(turn["value"], str) and turn["value"], f"{where}: empty turn value"
    roles = [t["from"] for t in turns]
    n_system = next(i for i, r in enumerate(roles) if r != "system")
    body = roles[n_system:]
    assert len(body) >= 2 and len(body) % 2 == 0, f"{where}: human/gpt turns must come in pairs: {roles}"
    assert body == ["human", "gpt"] * (len(body) // 2), f"{where}: turns must alternate human/gpt: {roles}"
    n_placeholders = sum(t["value"].count("<image>") for t in turns if t["from"] == "human")
    assert all("<image>" not in t["value"] for t in turns if t["from"] != "human"), f"{where}: <image> outside human"
    assert n_placeholders == len(paths), f"{where}: {n_placeholders} <image> placeholders for {len(paths)} images"
    return paths


def human_question(value: str) -> tuple[int, str]:
    """(number of leading <image> placeholders, the text after them)."""
    n = 0
    while value.startswith("<image>\n"):
        value, n = value[len("<image>\n") :], n + 1
    assert "<image>" not in value, f"placeholders must precede the text: {value!r}"
    return n, value


def split_tag(text: str) -> tuple[str, str]:
    for tag in TAGS:
        if text.startswith(tag + " "):
            return tag, text[len(tag) + 1 :]
    return "", text


def expected_tag(question: str) -> str:
    """The tag a question must carry in SFT/GRPO prompts (docs 1.3 and 5)."""
    if question.startswith("Classify the image"):
        return "{CLS}"
    if question.startswith("the "):
        return "{VG}"
    if question == "Describe the image." or "Answer with the option letter." in question:
        return ""
    return "{VQA}"


def grid_box(answer: str, where: str) -> list[int]:
    match = GRID_BOX_RE.match(answer)
    assert match, f"{where}: grounding answer must be [[x1, y1, x2, y2]]: {answer!r}"
    box = [int(v) for v in match.groups()]
    assert 0 <= box[0] < box[2] <= 1000 and 0 <= box[1] < box[3] <= 1000, f"{where}: box off the 0-1000 grid {box}"
    return box


def pixel_boxes(answer: str, width: int, height: int, where: str) -> list[list[int]]:
    boxes = [[int(v) for v in m] for m in PIXEL_BOX_RE.findall(answer)]
    assert boxes and not answer.startswith("[["), f"{where}: eval GT must be pixel boxes [x1, y1, x2, y2]: {answer!r}"
    for b in boxes:
        assert 0 <= b[0] < b[2] <= width and 0 <= b[1] < b[3] <= height, f"{where}: box {b} outside {width}x{height}"
    return boxes


def eval_image_path(data_root: Path, json_name: str, record: dict) -> Path:
    """Section 4.3."""
    image_path = record.get("image_path")
    if image_path is None:
        return data_root / Path(json_name).stem / record["image"]
    if Path(image_path).is_absolute():
        return Path(image_path) / record["image"]
    return data_root / image_path / record["image"]


def validate_eval_record(record: dict, data_root: Path, json_name: str, where: str) -> tuple[Path, str, str]:
    """Section 4.2. Returns (image path, question, answer)."""
    assert isinstance(record["image"], str) and record["image"], f"{where}: missing image"
    assert set(record) <= {"image", "image_path", "conversations", "size", "type"}, f"{where}: keys {sorted(record)}"
    path = eval_image_path(data_root, json_name, record)
    assert path.is_file(), f"{where}: image not found at {path}"
    turns = record["conversations"]
    assert [t["from"] for t in turns] == ["human", "gpt"], f"{where}: conversations must be human, gpt"
    assert turns[0]["value"].startswith("<image>\n"), f"{where}: question must start with '<image>\\n'"
    question, answer = turns[0]["value"][len("<image>\n") :], turns[1]["value"]
    assert "<image>" not in question and not split_tag(question)[0], f"{where}: benchmark questions carry no tag"
    with Image.open(path) as img:
        width, height = img.size
    if "size" in record:
        assert record["size"] == [height, width], f"{where}: size must be [height, width] = {[height, width]}"
    task_type = BENCHMARK_FILES[json_name]
    if task_type == "lhrsbench":
        assert isinstance(record["type"], list) and record["type"], f"{where}: LHRS records need a type list"
        assert set(record["type"]) <= LHRS_TYPE_IDS, f"{where}: unknown LHRS type ids {record['type']}"
        assert re.fullmatch(r"[A-D]", answer), f"{where}: LHRS answers are option letters: {answer!r}"
    else:
        assert "type" not in record, f"{where}: only LHRS-Bench records have a type"
    if task_type == "bbox":
        pixel_boxes(answer, width, height, where)
    return path, question, answer


def validate_prompt(prompt: list[dict], problem: str, where: str) -> None:
    """Section 3.2 (null-valued keys from Arrow struct unification are allowed)."""

    def clean(item: dict) -> dict:
        return {k: v for k, v in item.items() if v is not None}

    assert [m["role"] for m in prompt] == ["system", "user"], f"{where}: prompt roles"
    assert [clean(c) for c in prompt[0]["content"]] == [{"type": "text", "text": REASONING_SYSTEM_PROMPT}], where
    assert [clean(c) for c in prompt[1]["content"]] == [{"type": "image"}, {"type": "text", "text": problem}], where


def validate_solution(solution: list, problem: str, image_bytes: bytes | None, where: str) -> tuple[str, str]:
    """Section 3.3. Returns (answer_type, answer)."""
    assert len(solution) == 4 and all(isinstance(s, str) for s in solution), f"{where}: solution = 4 strings"
    answer_type, answer, question, image_b64 = solution
    assert answer_type in {"0", "1", "2"}, f"{where}: answer_type {answer_type!r}"
    assert question == problem, f"{where}: solution question differs from problem"
    decoded = base64.b64decode(image_b64, validate=True)
    assert decoded.startswith(b"\x89PNG"), f"{where}: image_base64 is not a PNG"
    if image_bytes is not None:
        assert decoded == image_bytes, f"{where}: image_base64 differs from the image column"
    if answer_type == "2":
        grid_box(answer, where)
    return answer_type, answer


# ---------------------------------------------------------------------------------------------------------------
# Consistency of answers with pixels and with the scene manifest
# ---------------------------------------------------------------------------------------------------------------
def rgb(path_or_bytes: Path | bytes) -> np.ndarray:
    source = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with Image.open(source) as img:
        assert img.mode == "RGB"
        return np.asarray(img, dtype=np.int32)


def colour_mask(arr: np.ndarray, colour: tuple[int, int, int], tol: int = 12) -> np.ndarray:
    return np.abs(arr - np.asarray(colour)).max(axis=-1) <= tol


def nearest_background(arr: np.ndarray) -> str:
    """The land-cover class whose colour is nearest to the median of the pixels that are not object-coloured
    (objects fill their cells, so in a busy urban scene they can cover a third of the image)."""
    objects = np.zeros(arr.shape[:2], dtype=bool)
    for colour in [*OBJECT_COLOURS.values(), *OUTLINES.values()]:
        objects |= colour_mask(arr, colour, tol=30)
    pixels = arr[~objects] if (~objects).sum() >= arr.shape[0] * arr.shape[1] // 4 else arr.reshape(-1, 3)
    median = np.median(pixels.reshape(-1, 3), axis=0)
    return min(BACKGROUNDS, key=lambda name: float(np.abs(median - BACKGROUNDS[name]).sum()))


OUTLINES = {"building": (150, 20, 20), "storage tank": (200, 200, 200)}  # drawn around the fill


def check_box_pixels(arr: np.ndarray, kind: str, box: list[float], where: str) -> None:
    """The box is tight around an object of `kind`: its centre has the kind's colour and so do its four edges."""
    x1, y1, x2, y2 = (round(v) for v in box)
    mask = colour_mask(arr, OBJECT_COLOURS[kind])
    cy, cx = (y1 + y2) // 2, (x1 + x2) // 2
    assert mask[cy, cx], f"{where}: centre of {box} is not {kind}-coloured"
    if kind in OUTLINES:
        mask |= colour_mask(arr, OUTLINES[kind])
    inside = mask[y1:y2, x1:x2]
    edges = (inside[0].any(), inside[-1].any(), inside[:, 0].any(), inside[:, -1].any())
    assert all(edges), f"{where}: {box} is not tight around the {kind}"
    assert inside.sum() >= 0.25 * mask.sum() or kind == "road", f"{where}: most {kind} pixels lie outside {box}"


def check_answer(question: str, answer: str, arrs: list[np.ndarray], scenes: list[dict] | None, where: str) -> None:
    """The answer follows from the pixels (and the manifest when given) for every question template (docs 5)."""
    arr, scene = arrs[0] if arrs else None, scenes[0] if scenes else None

    def count(kind: str) -> int:
        assert scene is not None
        return sum(o["kind"] == kind for o in scene["objects"])

    needs_manifest = re.match(r"(How many|Are there more|Where is the|Which kind)", question)
    if scene is None and needs_manifest:
        return  # counts and positions are checked against the manifest, which GRPO rows and fixtures lack

    if m := re.fullmatch(
        r"Classify the image into one of the following classes: (.+)\. Answer with one word or phrase\.", question
    ):
        assert answer in m.group(1).split(", "), f"{where}: {answer!r} not among the listed classes"
        assert nearest_background(arr) == answer, f"{where}: image background is not {answer}"
        assert scene is None or scene["background"] == answer, where
    elif m := re.fullmatch(r"Is there a (.+) in the image\? Answer yes or no\.", question):
        kind = m.group(1)
        visible = bool(colour_mask(arr, OBJECT_COLOURS[kind]).sum() >= 6)
        assert answer == ("yes" if visible else "no"), f"{where}: {kind} visible={visible} but answer {answer!r}"
        assert scene is None or (count(kind) > 0) == visible, where
    elif m := re.fullmatch(r"How many (.+) are there in the image\? Answer with a number\.", question):
        assert answer == str(count(PLURAL_TO_KIND[m.group(1)])), where
    elif m := re.fullmatch(r"Are there more (.+) than (.+) in the image\? Answer yes or no\.", question):
        na, nb = count(PLURAL_TO_KIND[m.group(1)]), count(PLURAL_TO_KIND[m.group(2)])
        assert abs(na - nb) >= 2 and answer == ("yes" if na > nb else "no"), f"{where}: {na} vs {nb}, {answer!r}"
    elif question == "Is this a rural or an urban area? Answer with one word.":
        background = nearest_background(arr)
        buildings = int(colour_mask(arr, OBJECT_COLOURS["building"]).sum())
        if answer == "urban":
            assert background == "urban" and buildings >= 4 * 12 * 12, f"{where}: not an urban scene"
        else:
            assert answer == "rural" and background in {"farmland", "forest"} and buildings <= 26 * 26, where
        assert scene is None or (count("building") >= 4) == (answer == "urban"), where
    elif m := re.fullmatch(r"the (.+)", question):
        kind = m.group(1)
        height, width = arr.shape[:2]
        if answer.startswith("[["):
            g = grid_box(answer, where)
            box = [g[0] * width / 1000, g[1] * height / 1000, g[2] * width / 1000, g[3] * height / 1000]
        else:
            (box,) = pixel_boxes(answer, width, height, where)
        check_box_pixels(arr, kind, box, where)
        if scene is not None:
            (target,) = [o for o in scene["objects"] if o["kind"] == kind]  # the expression is unambiguous
            assert max(abs(a - b) for a, b in zip(target["box"], box)) <= 6, f"{where}: {box} vs {target['box']}"
    elif m := re.fullmatch(r"(.+?)\n((?:[A-D]\. .+\n)+)Answer with the option letter\.", question, re.DOTALL):
        stem = m.group(1)
        options = dict(line.split(". ", 1) for line in m.group(2).strip().split("\n"))
        assert list(options) == list("ABCD")[: len(options)] and answer in options, f"{where}: options {options}"
        chosen = options[answer]
        if stem == "What is the main land cover in this image?":
            assert chosen == nearest_background(arr), where
        elif stem == "What colour is the object in this image?":
            present = [k for k in COUNTABLE_KINDS if colour_mask(arr, OBJECT_COLOURS[k]).sum() >= 6]
            assert len(present) == 1 and chosen == COLOUR_NAMES[present[0]], f"{where}: {present} vs {chosen}"
        elif qm := re.fullmatch(r"How many (.+) are in this image\?", stem):
            assert chosen == str(count(PLURAL_TO_KIND[qm.group(1)])), where
        elif qm := re.fullmatch(r"Where is the (.+) in this image\?", stem):
            (obj,) = [o for o in scene["objects"] if o["kind"] == qm.group(1)]
            x1, y1, x2, y2 = obj["box"]
            row = "top" if y2 <= scene["height"] / 2 else "bottom" if y1 >= scene["height"] / 2 else None
            col = "left" if x2 <= scene["width"] / 2 else "right" if x1 >= scene["width"] / 2 else None
            assert chosen == f"{row} {col}", f"{where}: object {obj['box']} is not in the {chosen}"
        elif stem == "Which kind of object is more numerous in this image?":
            counts = {PLURALS[k]: count(k) for k in COUNTABLE_KINDS}
            assert all(counts[chosen] > counts[o] for o in options.values() if o != chosen), f"{where}: {counts}"
        else:
            raise AssertionError(f"{where}: unknown multiple-choice question {stem!r}")
    elif question == "Describe the image.":
        if scene is not None:
            assert BACKGROUND_PHRASE[scene["background"]] in answer, where
            for kind in COUNTABLE_KINDS:
                n = count(kind)
                assert (f"{n} {kind if n == 1 else PLURALS[kind]}" in answer) == (n > 0), f"{where}: {kind}"
            assert ("a road" in answer) == (count("road") > 0), where
    elif question == "Do the two images show the same type of land cover? Answer yes or no.":
        same = nearest_background(arrs[0]) == nearest_background(arrs[1])
        assert len(arrs) == 2 and answer == ("yes" if same else "no"), where
    elif m := re.fullmatch(r"In these aerial images, what colour is a (.+)\? Answer with one word\.", question):
        assert not arrs and answer == COLOUR_NAMES[m.group(1)], where
    else:
        raise AssertionError(f"{where}: question matches no template: {question!r}")


# ---------------------------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data(demo_data_dir: Path) -> Path:
    return demo_data_dir


@pytest.fixture(scope="module")
def manifest(data: Path) -> dict[str, dict]:
    return json.loads((data / "scenes.json").read_text())


def load_list(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    records = json.loads(path.read_text())
    assert isinstance(records, list), f"{path}: must hold a JSON list"
    return records


# ---------------------------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------------------------
def test_layout_and_small_sizes(data: Path) -> None:
    for name in ("images", "pretrain.json", "sft.json", "cot_sft.json", "grpo/dataset_dict.json", "eval"):
        assert (data / name).exists(), name
    assert sorted(p.name for p in (data / "eval").glob("*.json")) == sorted(BENCHMARK_FILES)
    sizes = SCALES["small"]
    sft_total = sum(v for k, v in sizes.items() if k.startswith("sft_"))
    assert len(load_list(data / "sft.json")) == sft_total
    assert len(load_list(data / "cot_sft.json")) == sum(cot_count(sizes, b) for b in COT_BUILDERS)
    assert len(load_list(data / "pretrain.json")) == sizes["pretrain"]
    for name in BENCHMARK_FILES:
        assert len(load_list(data / "eval" / name)) == sizes["eval_per_benchmark"], name


def test_full_scale_sizes_match_the_brief() -> None:
    full = SCALES["full"]
    assert 1500 <= sum(v for k, v in full.items() if k.startswith("sft_")) <= 3000
    assert 40 <= full["eval_per_benchmark"] <= 60
    assert full["grpo_train"] >= 200


@pytest.mark.parametrize("name", ["pretrain.json", "sft.json", "cot_sft.json"])
def test_list_files_validate_and_answers_match_scenes(data: Path, manifest: dict, name: str) -> None:
    records = load_list(data / name)
    ids = [r["id"] for r in records]
    assert len(set(ids)) == len(ids), f"{name}: duplicate ids"
    seen_tasks = set()
    for i, record in enumerate(records):
        where = f"{name}[{i}] ({record['id']})"
        paths = validate_list_record(record, data / "images", where)
        turns = record["conversations"]
        if name == "cot_sft.json":
            assert turns[0] == {"from": "system", "value": REASONING_SYSTEM_PROMPT}, where
            match = COT_RE.match(turns[-1]["value"])
            assert match, f"{where}: CoT answer must be <reasoning>...</reasoning><answer>...</answer>"
            reasoning, answer = match.groups()
            assert reasoning.strip() and "<" not in reasoning, where
        else:
            assert turns[0]["from"] == "human", f"{where}: only CoT records have a system turn"
            answer = turns[-1]["value"]
        n_images, text = human_question(turns[-2]["value"])
        tag, question = split_tag(text)
        assert tag == expected_tag(question), f"{where}: tag {tag!r} for {question!r}"
        if name == "pretrain.json":
            assert question == "Describe the image." and n_images == 1, where
        scenes = [
            manifest[f"images/{rel}"] for rel in ([record["image"]] if n_images == 1 else record.get("image", []))
        ]
        arrs = [rgb(p) for p in paths]
        for arr, scene in zip(arrs, scenes):
            assert arr.shape[:2] == (scene["height"], scene["width"]), where
        check_answer(question, answer, arrs, scenes, where)
        seen_tasks.add((tag, question.split(" ")[0], n_images))
    if name == "sft.json":  # every kind of record is present: the four prompt styles, multi-image and text-only
        assert {t[0] for t in seen_tasks} == {"{CLS}", "{VQA}", "{VG}", ""}
        assert {t[2] for t in seen_tasks} == {0, 1, 2}


def test_manifest_matches_pixels(data: Path, manifest: dict) -> None:
    assert len(manifest) > 100
    for rel, scene in manifest.items():
        arr = rgb(data / rel)
        assert arr.shape[:2] == (scene["height"], scene["width"]), rel
        assert nearest_background(arr) == scene["background"], rel
        for obj in scene["objects"]:
            x1, y1, x2, y2 = obj["box"]
            assert 0 <= x1 < x2 <= scene["width"] and 0 <= y1 < y2 <= scene["height"], rel
            mask = colour_mask(arr, OBJECT_COLOURS[obj["kind"]])
            if obj["kind"] == "road":  # drawn first: objects may cover parts of it
                assert mask[y1:y2, x1:x2].mean() > 0.5, f"{rel} {obj}"
            else:
                assert mask[(y1 + y2) // 2, (x1 + x2) // 2], f"{rel} {obj}"


def test_objects_are_large_enough_to_learn(data: Path, manifest: dict) -> None:
    """Learnability: ordinary objects fill most of one 28 px cell (one merged visual token), grounding targets are
    whole 2x2-cell blocks on the cell grid (ships 2x1 or 1x2), and "no" presence scenes are sometimes empty."""
    cell = CELL
    for rel, scene in manifest.items():
        is_vg = any(  # only grounding targets are larger than a cell
            o["kind"] != "road" and max(o["box"][2] - o["box"][0], o["box"][3] - o["box"][1]) > cell
            for o in scene["objects"]
        )
        for i, obj in enumerate(scene["objects"]):
            x1, y1, x2, y2 = obj["box"]
            w, h = x2 - x1, y2 - y1
            if obj["kind"] == "road":
                continue
            if is_vg and i == 0:  # the grounding target comes first
                assert x1 % cell == 0 and y1 % cell == 0 and x2 % cell == 0 and y2 % cell == 0, f"{rel} {obj}"
                assert sorted((w // cell, h // cell)) in ([2, 2], [1, 2]), f"{rel} {obj}"
                continue
            assert x1 // cell == (x2 - 1) // cell and y1 // cell == (y2 - 1) // cell, f"{rel}: {obj} crosses cells"
            assert max(w, h) >= 22, f"{rel}: {obj} is too small to be learnt quickly"
    no_scenes = []
    for name in ("RSVQA_HR-presence_RSVQA.json", "RSVQA_LR-presence_RSVQA.json"):
        folder = "RSVQA_LR/Images" if "LR" in name else Path(name).stem
        for record in load_list(data / "eval" / name):
            if record["conversations"][1]["value"] == "no":
                no_scenes.append(manifest[f"eval/{folder}/{record['image']}"])
    assert any(not s["objects"] for s in no_scenes) and any(s["objects"] for s in no_scenes)


def test_grpo_dataset_validates(data: Path) -> None:
    import datasets

    dd = datasets.load_from_disk(str(data / "grpo"))
    assert set(dd) == {"train", "test"}
    for split, ds in dd.items():
        assert set(ds.column_names) == {"image", "problem", "prompt", "solution"}, split
        assert isinstance(ds.features["image"], datasets.Image), split
        types = []
        raw = ds.cast_column("image", datasets.Image(decode=False))
        for i, row in enumerate(raw):
            where = f"grpo/{split}[{i}]"
            image_bytes = row["image"]["bytes"]
            validate_prompt(row["prompt"], row["problem"], where)
            answer_type, answer = validate_solution(row["solution"], row["problem"], image_bytes, where)
            types.append(answer_type)
            tag, question = split_tag(row["problem"])
            assert tag == expected_tag(question), where
            assert (answer_type == "2") == (tag == "{VG}") and (answer_type == "0") == (
                question == "Describe the image."
            )
            check_answer(question, answer, [rgb(image_bytes)], None, where)
        assert {"0", "1", "2"} <= set(types), f"{split}: answer types {set(types)}"
        assert types.count("1") > types.count("2") > 0, split
    assert isinstance(dd["train"][0]["image"], Image.Image)  # decodes to PIL


def test_eval_data_root_validates(data: Path, manifest: dict) -> None:
    data_root = data / "eval"
    with_size = without_size = with_image_path = non_square = 0
    for json_name, task_type in BENCHMARK_FILES.items():
        records = load_list(data_root / json_name)
        for i, record in enumerate(records):
            where = f"eval/{json_name}[{i}]"
            path, question, answer = validate_eval_record(record, data_root, json_name, where)
            scene = manifest[path.relative_to(data).as_posix()]
            arr = rgb(path)
            check_answer(question, answer, [arr], [scene], where)
            with_size += "size" in record
            without_size += "size" not in record
            with_image_path += "image_path" in record
            non_square += arr.shape[0] != arr.shape[1]
            if task_type == "cls":
                assert question.endswith("Answer with one word or phrase."), where
            if "presence" in json_name or "comp" in json_name:
                assert question.endswith("Answer yes or no.") and answer in {"yes", "no"}, where
            if "rural" in json_name:
                assert answer in {"rural", "urban"}, where
    assert with_size > without_size > 0 and with_image_path > 0 and non_square > 0


def test_eval_questions_use_training_templates(data: Path) -> None:
    """Every benchmark question appears (with its tag) among the training questions' templates."""

    def template(text: str) -> str:
        return re.sub(r"\b(building|storage tank|plane|ship|road)s?\b", "<kind>", text)

    train = {template(human_question(r["conversations"][-2]["value"])[1]) for r in load_list(data / "sft.json")}
    for json_name in BENCHMARK_FILES:
        for i, record in enumerate(load_list(data / "eval" / json_name)):
            question = record["conversations"][0]["value"][len("<image>\n") :]
            tagged = f"{expected_tag(question)} {question}".strip()
            if json_name == "LHRS-Bench.json":  # options vary; compare the question stem
                stems = {t.split("\n")[0] for t in train}
                assert template(question.split("\n")[0]) in stems, f"{json_name}[{i}]"
            else:
                assert template(tagged) in train, f"{json_name}[{i}]: {tagged!r} never seen in sft.json"


def test_train_and_test_scenes_are_disjoint(data: Path) -> None:
    import datasets

    def digest(b: bytes) -> str:
        return hashlib.sha256(b).hexdigest()

    dd = datasets.load_from_disk(str(data / "grpo")).cast_column("image", datasets.Image(decode=False))
    train = {digest(p.read_bytes()) for p in (data / "images").rglob("*.png")}
    train |= {digest(row["image"]["bytes"]) for row in dd["train"]}
    test = {digest(p.read_bytes()) for p in (data / "eval").rglob("*.png")}
    test |= {digest(row["image"]["bytes"]) for row in dd["test"]}
    assert train and test and not train & test
    # record ids are unique across all list files
    ids = [r["id"] for name in ("pretrain.json", "sft.json", "cot_sft.json") for r in load_list(data / name)]
    assert len(ids) == len(set(ids))


def test_cli_build_is_deterministic(data: Path, tmp_path: Path) -> None:
    """The command line with the same seed reproduces every file byte for byte; another seed changes the data."""
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    script = Path(__file__).resolve().parents[1] / "scripts" / "make_demo_data.py"  # the wrapper the demo runs
    out = tmp_path / "again"
    cmd = [sys.executable, str(script), "--output_dir", str(out), "--seed", "0", "--scale", "small"]
    subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=120)
    # Compare what the second build wrote (other test modules may add files to the shared demo_data_dir).
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file() and p.name != "state.json")
    assert len(files) > 200 and Path("sft.json") in files and Path("grpo/train/dataset_info.json") in files
    for rel in files:
        assert (out / rel).read_bytes() == (data / rel).read_bytes(), f"{rel} differs between two builds"

    other = build_demo_data(tmp_path / "seed1", seed=1, scale="small")
    assert (other / "sft.json").read_bytes() != (data / "sft.json").read_bytes()


def test_build_rejects_unknown_scale(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown scale"):
        build_demo_data(tmp_path, scale="huge")


def test_corpus_texts_cover_every_word_of_the_data(data: Path) -> None:
    corpus = corpus_texts()
    assert all(isinstance(t, str) and t for t in corpus)
    assert REASONING_SYSTEM_PROMPT in corpus and "You are a helpful assistant." in corpus
    assert {"{CLS}", "{VQA}", "{VG}"} <= set(corpus)

    def words(text: str) -> set[str]:
        return set(re.findall(r"[A-Za-z]+", text))

    vocabulary = set().union(*(words(t) for t in corpus))
    texts = [
        t["value"]
        for n in ("pretrain.json", "sft.json", "cot_sft.json")
        for r in load_list(data / n)
        for t in r["conversations"]
    ]
    texts += [t["value"] for n in BENCHMARK_FILES for r in load_list(data / "eval" / n) for t in r["conversations"]]
    missing = set().union(*(words(t) for t in texts)) - vocabulary
    assert not missing, f"words in the data but not in corpus_texts(): {sorted(missing)}"


# ---------------------------------------------------------------------------------------------------------------
# Hand-written fixtures (tests/fixtures/README.md)
# ---------------------------------------------------------------------------------------------------------------
FIXTURE_SIZES = {"scene_56.png": (56, 56), "scene_112x84.png": (112, 84), "scene_84x112.png": (84, 112)}


def test_fixture_images() -> None:
    for name, size in FIXTURE_SIZES.items():
        with Image.open(FIXTURES / "images" / name) as img:
            assert img.size == size and img.mode == "RGB", name


@pytest.mark.parametrize("name", ["llava_list.json", "llava_list.jsonl"])
def test_fixture_llava_list(name: str) -> None:
    records = load_list(FIXTURES / name)
    assert records == load_list(FIXTURES / "llava_list.json")  # the JSONL holds the same records
    n_images = []
    for i, record in enumerate(records):
        where = f"{name}[{i}]"
        paths = validate_list_record(record, FIXTURES / "images", where)
        n_images.append(len(paths))
        turns = [t for t in record["conversations"] if t["from"] != "system"]
        arrs = [rgb(p) for p in paths]
        for human, gpt in zip(turns[::2], turns[1::2]):
            _, text = human_question(human["value"])
            tag, question = split_tag(text)
            assert tag == expected_tag(question), where
            match = COT_RE.match(gpt["value"])
            check_answer(question, match.group(2) if match else gpt["value"], arrs, None, where)
    assert sorted(n_images) == [0, 1, 1, 2]
    assert records[1]["conversations"][0] == {"from": "system", "value": REASONING_SYSTEM_PROMPT}


def test_fixture_grpo_rows() -> None:
    rows = load_list(FIXTURES / "grpo_rows.jsonl")
    for i, row in enumerate(rows):
        where = f"grpo_rows.jsonl[{i}]"
        image_bytes = (FIXTURES / row["image"]).read_bytes()
        if "prompt" in row:
            validate_prompt(row["prompt"], row["problem"], where)
        answer_type, answer = validate_solution(row["solution"], row["problem"], image_bytes, where)
        tag, question = split_tag(row["problem"])
        check_answer(question, answer, [rgb(image_bytes)], None, where)
    assert [r["solution"][0] for r in rows] == ["1", "2", "0", "1"]
    assert "prompt" not in rows[3]


def test_fixture_eval_root() -> None:
    root = FIXTURES / "eval_root"
    files = sorted(p.name for p in root.glob("*.json"))
    assert files == sorted(
        ["cls_AID.json", "RSVQA_LR-presence_RSVQA.json", "VG_DOIR_RSVG_test.json", "LHRS-Bench.json"]
    )
    for json_name in files:
        for i, record in enumerate(load_list(root / json_name)):
            where = f"eval_root/{json_name}[{i}]"
            path, question, answer = validate_eval_record(record, root, json_name, where)
            if json_name != "LHRS-Bench.json" or record["type"] == ["1"]:
                check_answer(question, answer, [rgb(path)], None, where)
    vg = load_list(root / "VG_DOIR_RSVG_test.json")
    assert "size" not in vg[1]  # a non-square image without size: its size must be read as [height, width]
    assert load_list(root / "RSVQA_LR-presence_RSVQA.json")[0]["image_path"] == "RSVQA_LR/Images"
