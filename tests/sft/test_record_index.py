"""RecordSource keeps byte ranges, not parsed records: every record reads back exactly as ``json.load`` gives it, for
any window size the JSON list is indexed through, and broken files fail in one line."""

from __future__ import annotations

import json
import tracemalloc

import pytest

import tinyrs_sft.record_source as records_module
from tinyrs_sft.records import DataError, RecordSource


RECORDS = [
    {"id": "a", "conversations": [{"from": "human", "value": "<image>\nWhat is it?"}, {"from": "gpt", "value": "x"}]},
    {"id": "é中😀", "conversations": [{"from": "gpt", "value": 'brackets ] [ } { and "quotes", commas'}]},
    {"id": "c", "image": ["a.png", "b.png"], "nested": {"k": [1, 2, {"z": None}]}},
    7,  # not an object: indexed like any value, refused later by the structure check
    "text",
    {"id": "z" * 300},
]


def layouts(records: list) -> dict[str, bytes]:
    compact = json.dumps(records, ensure_ascii=False).encode()
    return {
        "compact": compact,
        "escaped": json.dumps(records).encode(),  # ASCII only (\\u escapes)
        "pretty": json.dumps(records, indent=2, ensure_ascii=False).encode() + b"\n\n",
        "bom": b"\xef\xbb\xbf" + compact,
        "spaces": b" \n\t[ " + compact[1:-1].replace(b"}, {", b"} ,\n {") + b" ]\r\n",
    }


@pytest.mark.parametrize("chunk", [1, 7, 64, 16 * 2**20])
@pytest.mark.parametrize("layout", ["compact", "escaped", "pretty", "bom", "spaces"])
def test_every_record_reads_back_exactly(tmp_path, monkeypatch, chunk, layout):
    monkeypatch.setattr(records_module, "INDEX_CHUNK_BYTES", chunk)
    path = tmp_path / "d.json"
    path.write_bytes(layouts(RECORDS)[layout])
    source = RecordSource(path)
    assert len(source) == len(RECORDS)
    assert [source[i] for i in range(len(source))] == RECORDS
    assert source[1] == RECORDS[1] and source[0] == RECORDS[0]  # random access after sequential


@pytest.mark.parametrize("chunk", [3, 16 * 2**20])
def test_empty_list(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(records_module, "INDEX_CHUNK_BYTES", chunk)
    (tmp_path / "e.json").write_text(" [ \n ] \n")
    assert len(RecordSource(tmp_path / "e.json")) == 0


@pytest.mark.parametrize("chunk", [5, 16 * 2**20])
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'[{"id": "a"}, {"id": "b"', "not valid JSON"),  # cut short
        (b'[{"id": "a"},]', "not valid JSON"),  # trailing comma
        (b'[{"id": "a"} {"id": "b"}]', "expected ',' or ']' at byte 13"),
        (b'[{"id": "a"}] x', "extra data after the list at byte 14"),
        (b'[{"id": "a"}, {"id": "caf\xe9"}]', "not UTF-8 text"),  # Latin-1 byte
        (b"[", "not valid JSON"),
    ],
)
def test_broken_lists_fail_in_one_line(tmp_path, monkeypatch, chunk, content, expected):
    monkeypatch.setattr(records_module, "INDEX_CHUNK_BYTES", chunk)
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        RecordSource(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and expected in message and "\n" not in message


def test_index_holds_offsets_not_records(tmp_path):
    """Indexing 20,000 records allocates far less than the parsed list would (which is what the original kept)."""
    records = [
        {"id": f"r{i}", "conversations": [{"from": "gpt", "value": "some answer text " * 4}]} for i in range(20_000)
    ]
    path = tmp_path / "big.json"
    path.write_text(json.dumps(records))
    tracemalloc.start()
    parsed = json.loads(path.read_text())
    parsed_peak = tracemalloc.get_traced_memory()[1]
    del parsed
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    source = RecordSource(path)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(source) == 20_000 and source[12_345] == records[12_345]
    assert held < 20_000 * 24  # two 8-byte offsets per record, plus array slack
    assert held < parsed_peak / 20
