"""The demo data generator (tinyrs_demo) follows docs/data-format.md.

Checked with the spec's validators in tests/helpers/data_format.py (written independently of the generator): every
file must validate, every answer must agree with the drawn pixels and the scene manifest, the build is deterministic,
train and test scenes are disjoint, and corpus_texts() covers every word the data can contain.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from helpers.data_format import (
    BENCHMARK_FILES,
    COT_RE,
    REASONING_SYSTEM_PROMPT,
    check_answer,
    colour_mask,
    expected_tag,
    human_question,
    load_list,
    nearest_background,
    rgb,
    split_tag,
    validate_eval_record,
    validate_list_record,
    validate_prompt,
    validate_solution,
)
from tinyrs_demo.corpus import corpus_texts
from tinyrs_demo.questions import COT_BUILDERS, SCALES, cot_count
from tinyrs_demo.scenes import CELL
from tinyrs_demo.vocabulary import OBJECT_COLOURS
from tinyrs_demo.writers import build_demo_data


# ---------------------------------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data(demo_data_dir: Path) -> Path:
    return demo_data_dir


@pytest.fixture(scope="module")
def manifest(data: Path) -> dict[str, dict]:
    return json.loads((data / "scenes.json").read_text())


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
