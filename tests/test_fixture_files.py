"""The hand-written fixtures in tests/fixtures/ (tests/fixtures/README.md) follow docs/data-format.md: checked with
the spec's validators in tests/helpers/data_format.py, answers against the pixels."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from helpers.data_format import (
    COT_RE,
    REASONING_SYSTEM_PROMPT,
    check_answer,
    expected_tag,
    human_question,
    load_list,
    rgb,
    split_tag,
    validate_eval_record,
    validate_list_record,
    validate_prompt,
    validate_solution,
)


FIXTURES = Path(__file__).parent / "fixtures"
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
