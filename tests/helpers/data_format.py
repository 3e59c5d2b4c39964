"""Validators of docs/data-format.md, written from the spec independently of the generator (no tinyrs_demo code
beyond its vocabulary tables): record shapes of the list files, GRPO rows and benchmark files (sections 2, 3, 4) and
the answers of every question template checked against the drawn pixels and the scene manifest (section 5).

Used by tests/test_demo_generated_data.py (the data tinyrs_demo builds) and tests/test_fixture_files.py (the
hand-written files in tests/fixtures/). Plain ``assert`` statements with the file, record and problem in the message;
tests/helpers/__init__.py registers this module for pytest's assertion rewriting.
"""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
from PIL import Image

from tinyrs_demo.vocabulary import (
    BACKGROUND_PHRASE,
    BACKGROUNDS,
    COLOUR_NAMES,
    COUNTABLE_KINDS,
    OBJECT_COLOURS,
    PLURALS,
)


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


def load_list(path: Path) -> list[dict]:
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    records = json.loads(path.read_text())
    assert isinstance(records, list), f"{path}: must hold a JSON list"
    return records
