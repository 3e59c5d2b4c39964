"""JSONL writing/resume and sharding (no model)."""

from __future__ import annotations

import json

import pytest

from tinyrs_eval import storage
from tinyrs_eval.distributed import shard
from tinyrs_eval.errors import ConfigError


def _line(i):
    return json.dumps({"index": i, "pred": f"p{i}"}) + "\n"


def test_truncated_last_line_is_ignored_and_cut(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(_line(0) + _line(1) + '{"index": 2, "pr')
    records, good = storage.read_jsonl(path)
    assert [r["index"] for r in records] == [0, 1]
    assert good == len(_line(0) + _line(1))
    with storage.JsonlAppender(path) as out:
        out.write([{"index": 2, "pred": "p2"}])
    assert [json.loads(line)["index"] for line in path.read_text().splitlines()] == [0, 1, 2]


def test_last_line_without_newline_is_redone(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(_line(0) + _line(1).rstrip("\n"))  # complete JSON but the newline never made it
    assert [r["index"] for r in storage.read_jsonl(path)[0]] == [0]


def test_corrupt_middle_line_is_an_error(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(_line(0) + "garbage\n" + _line(2))
    with pytest.raises(ConfigError, match=r"a.jsonl:2: corrupt record"):
        storage.read_jsonl(path)


def test_merge_reads_parts_of_any_world_size(tmp_path):
    storage.merged_path(tmp_path, "b").write_text(_line(0))
    storage.part_path(tmp_path, "b", 0, 2).write_text(_line(2) + _line(1))
    storage.part_path(tmp_path, "b", 1, 3).write_text(_line(3) + _line(0) + '{"ind')
    merged = storage.merge(tmp_path, "b")
    assert sorted(merged) == [0, 1, 2, 3]
    lines = storage.merged_path(tmp_path, "b").read_text().splitlines()
    assert [json.loads(x)["index"] for x in lines] == [0, 1, 2, 3]
    assert storage.part_files(tmp_path, "b") == []
    storage.remove_predictions(tmp_path, "b")
    assert not storage.merged_path(tmp_path, "b").exists()


@pytest.mark.parametrize(("n", "world"), [(0, 2), (1, 2), (3, 4), (10, 3), (7, 1), (2, 8)])
def test_shard_covers_every_item_once(n, world):
    items = list(range(n))
    parts = [shard(items, r, world) for r in range(world)]
    assert sum(parts, []) == items
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_shard_rejects_bad_rank():
    with pytest.raises(ValueError):
        shard([1, 2], 2, 2)
