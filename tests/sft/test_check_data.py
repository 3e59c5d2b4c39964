"""Bad input gives one clear line naming file, record index and id; check-data scans a whole file without a model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from helpers import simple_record, write_json
from tinyrs_sft.check_data import main as check_data_main
from tinyrs_sft.check_data import scan_records
from tinyrs_sft.cli import main as cli_main
from tinyrs_sft.records import DataError, MediaPolicy, RecordSource, resolve_media_path


def human(value):
    return {"from": "human", "value": value}


def gpt(value):
    return {"from": "gpt", "value": value}


# (record, expected fragment of the one-line error)  # why
BAD_RECORDS = [
    ({"id": "m1", "image": "missing.png", "conversations": [human("<image>\nq"), gpt("a")]}, "image not found"),
    ({"id": "u1", "image": "broken.png", "conversations": [human("<image>\nq"), gpt("a")]}, "unreadable image"),
    ({"id": "o1", "image": "a.png", "conversations": [human("<image>\nq")]}, "human/gpt pairs"),  # odd turns
    ({"id": "e1", "image": "a.png", "conversations": []}, "non-empty list"),  # empty conversation
    ({"id": "n1", "conversations": None}, "non-empty list"),  # missing conversations
    ({"id": "p1", "image": "a.png", "conversations": [human("q"), gpt("a")]}, "0 <image> placeholder(s) but 1"),
    ({"id": "p2", "image": ["a.png", "b.png"], "conversations": [human("<image>q"), gpt("a")]}, "1 <image> place"),
    ({"id": "p3", "conversations": [human("<image>\nq"), gpt("a")]}, "1 <image> placeholder(s) but 0 image"),
    ({"id": "s1", "image": "a.png", "conversations": [human("<image>\nq"), gpt(3)]}, "'value' must be a string"),
    ({"id": "s2", "image": 7, "conversations": [human("<image>\nq"), gpt("a")]}, "'image' must be a string"),
    ({"id": "r1", "conversations": [{"from": "bot", "value": "q"}, gpt("a")]}, "'from' must be one of"),
    ({"id": "r2", "conversations": [gpt("a"), human("q")]}, "must alternate"),
    ({"id": "r3", "conversations": [human("q"), gpt("a"), {"from": "system", "value": "s"}, gpt("b")]}, "system"),
    ({"id": "g1", "conversations": [human("q"), gpt("<image> a")]}, "only allowed in human turns"),
    ({"id": "g2", "conversations": [human("q"), gpt("  ")]}, "empty assistant answer"),
    (
        {"id": "x1", "image": "../outside.png", "conversations": [human("<image>q"), gpt("a")]},
        "outside --image_folder",
    ),
    ({"id": "x2", "image": "/etc/hostname", "conversations": [human("<image>q"), gpt("a")]}, "outside --image_folder"),
    ({"id": "h1", "image": "http://x.org/a.png", "conversations": [human("<image>q"), gpt("a")]}, "remote media"),
    ("just a string", "expected an object"),
]


@pytest.fixture
def policy(data_dir: Path) -> MediaPolicy:
    (data_dir / "images" / "broken.png").write_bytes(b"this is not a png")
    (data_dir / "outside.png").write_bytes((data_dir / "images" / "a.png").read_bytes())
    return MediaPolicy(image_folder=data_dir / "images")


@pytest.mark.parametrize("record, fragment", BAD_RECORDS, ids=[str(r[0])[:40] for r in BAD_RECORDS])
def test_each_bad_record_gets_one_clear_line(data_dir: Path, policy: MediaPolicy, record, fragment: str):
    path = write_json(data_dir / "data.json", [simple_record(0), record])
    report = scan_records(RecordSource(path), policy)
    assert list(report.good) == [0]
    assert len(report.errors) == 1
    line = report.errors[0]
    rid = record.get("id") if isinstance(record, dict) else None
    assert line.startswith(f"{path}: record 1 (id={rid!r}): ")
    assert fragment in line and "\n" not in line


def test_good_records_pass(data_dir: Path, policy: MediaPolicy):
    records = [
        simple_record(0),
        simple_record(1, image=None),  # text-only
        {  # system turn, multi-image, multi-turn with the second image in the second turn
            "id": "mm",
            "image": ["a.png", "b.png"],
            "conversations": [
                {"from": "system", "value": "Be brief."},
                human("<image>\nFirst?"),
                gpt("one"),
                human("<image>\nSecond?"),
                gpt("two"),
            ],
        },
    ]
    report = scan_records(RecordSource(write_json(data_dir / "ok.json", records)), policy)
    assert report.errors == [] and list(report.good) == [0, 1, 2]


def test_external_paths_allowed_only_with_the_flag(data_dir: Path):
    strict = MediaPolicy(image_folder=data_dir / "images")
    loose = MediaPolicy(image_folder=data_dir / "images", allow_external_paths=True)
    with pytest.raises(DataError, match="allow_external_image_paths"):
        resolve_media_path("../outside.png", strict)
    assert resolve_media_path("../outside.png", loose) == (data_dir / "outside.png").resolve()
    assert resolve_media_path("sub/../a.png", strict) == (data_dir / "images" / "a.png").resolve()


def test_oversized_image_is_refused_not_decoded(data_dir: Path):
    policy = MediaPolicy(image_folder=data_dir / "images", max_image_pixels=56 * 56)
    path = write_json(data_dir / "d.json", [simple_record(0, image="a.png"), simple_record(1, image="b.png")])
    report = scan_records(RecordSource(path), policy)
    assert list(report.good) == [0]
    assert "image too large (112x112 > 3136 pixels, refused)" in report.errors[0]


def test_pil_bomb_guard_stays_enabled():
    import tinyrs_sft.data  # noqa: F401
    import tinyrs_sft.train  # noqa: F401

    assert Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS > 0


def test_jsonl_reading_and_bad_line(data_dir: Path, policy: MediaPolicy):
    path = data_dir / "d.jsonl"
    path.write_text(json.dumps(simple_record(0)) + "\n\n{not json\n" + json.dumps(simple_record(2)) + "\n")
    source = RecordSource(path)
    assert len(source) == 3 and source[2]["id"] == "r2"
    report = scan_records(source, policy)
    assert list(report.good) == [0, 2]
    assert report.errors[0].startswith(f"{path}: record 1 (id=None): line is not valid JSON")


def test_whole_file_errors(tmp_path: Path):
    with pytest.raises(DataError, match="data file not found"):
        RecordSource(tmp_path / "nope.json")
    (tmp_path / "trunc.json").write_text('[{"a": 1}')
    with pytest.raises(DataError, match="trunc.json: not valid JSON"):
        RecordSource(tmp_path / "trunc.json")
    (tmp_path / "dict.json").write_text('{\n  "a": 1\n}')
    with pytest.raises(DataError, match="dict.json: expected a JSON list of records, got dict"):
        RecordSource(tmp_path / "dict.json")


def test_check_data_command_reports_every_bad_record(data_dir: Path, policy: MediaPolicy, capsys):
    records = [simple_record(0), BAD_RECORDS[0][0], simple_record(2), BAD_RECORDS[2][0], BAD_RECORDS[5][0]]
    path = write_json(data_dir / "mixed.json", records)
    status = cli_main(["check-data", "--data_path", str(path), "--image_folder", str(data_dir / "images")])
    out = capsys.readouterr().out.strip().splitlines()
    assert status == 1
    assert [line.split(": ")[1] for line in out[:-1]] == [
        "record 1 (id='m1')",
        "record 3 (id='o1')",
        "record 4 (id='p1')",
    ]
    assert out[-1] == f"{path}: 5 records, 3 bad"


def test_check_data_command_clean_file_exits_zero(demo_data_dir: Path, capsys):
    for name in ("pretrain.json", "sft.json", "cot_sft.json"):
        status = check_data_main(
            ["--data_path", str(demo_data_dir / name), "--image_folder", str(demo_data_dir / "images")]
        )
        assert status == 0, capsys.readouterr().out
        assert capsys.readouterr().out.strip().endswith(", 0 bad")
