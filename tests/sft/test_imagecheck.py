"""Images cut short are caught from their head and tail (imagecheck.truncation_problem), by check-data and by the
start-up scan, without a full decode; complete images of every format pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from helpers import write_json
from tinyrs_sft.check_data import main as check_main
from tinyrs_sft.imagecheck import TAIL_BYTES, truncation_problem
from tinyrs_sft.records import check_image_file


FORMATS = {  # extension: (PIL format, save options)
    "png": ("PNG", {}),
    "jpg": ("JPEG", {"quality": 90}),
    "gif": ("GIF", {}),
    "webp": ("WEBP", {"quality": 80}),
    "bmp": ("BMP", {}),
    "tif": ("TIFF", {}),
    "lzw.tif": ("TIFF", {"compression": "tiff_lzw"}),
}


def noisy_image(path: Path, ext: str) -> bytes:
    fmt, options = FORMATS[ext]
    Image.effect_noise((96, 64), 60).convert("RGB").save(path, fmt, **options)
    return path.read_bytes()


@pytest.mark.parametrize("ext", sorted(FORMATS))
def test_complete_images_pass_and_cut_ones_are_named(tmp_path, ext):
    path = tmp_path / f"full.{ext}"
    data = noisy_image(path, ext)
    assert truncation_problem(path) is None
    cuts = {60, len(data) // 2}
    if ext != "lzw.tif":  # this TIFF keeps its directory at the end, after the pixels: its last byte is a tag value
        cuts.add(len(data) - 1)
    for cut in sorted(cuts):
        (tmp_path / f"cut.{ext}").write_bytes(data[:cut])
        problem = truncation_problem(tmp_path / f"cut.{ext}")
        assert problem and "cut short" in problem, (ext, cut, problem)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "empty"),  # zero bytes
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 30, "IEND"),  # a PNG signature and nothing else
        (b"\xff\xd8\xff\xe0" + b"\x10" * 500, "FFD9"),  # a JPEG header, then data, no end marker
        (b"just some text, not an image", None),  # unknown format: left to the decoder ("unreadable image")
    ],
)
def test_edge_cases(tmp_path, data, expected):
    path = tmp_path / "x.img"
    path.write_bytes(data)
    problem = truncation_problem(path)
    assert (problem is None) if expected is None else (expected in problem)


def test_trailing_bytes_after_the_end_marker_are_allowed(tmp_path):
    path = tmp_path / "pad.png"
    data = noisy_image(path, "png")
    path.write_bytes(data + b"\0" * (TAIL_BYTES // 2))  # some writers pad; within the tail we still see IEND
    assert truncation_problem(path) is None
    path.write_bytes(data[: -TAIL_BYTES - 5])
    assert "IEND" in truncation_problem(path)


def test_reads_only_head_and_tail(tmp_path, monkeypatch):
    """A large PNG cut short is caught after reading a few bytes, not the file."""
    path = tmp_path / "big.png"
    data = noisy_image(path, "png")
    path.write_bytes(data[:-20] + b"\0" * 4_000_000)
    reads = []
    real_open = open

    def counting_open(*args, **kwargs):
        f = real_open(*args, **kwargs)
        real_read = f.read

        def read(n=-1):
            chunk = real_read(n)
            reads.append(len(chunk))
            return chunk

        f.read = read
        return f

    import tinyrs_sft.imagecheck as imagecheck

    monkeypatch.setattr(imagecheck, "open", counting_open, raising=False)
    assert "IEND" in truncation_problem(path)
    assert reads and sum(reads) <= 32 + TAIL_BYTES


def test_check_image_file_and_check_data_refuse_a_cut_png_without_decoding(tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    data = noisy_image(images / "ok.png", "png")
    (images / "cut.png").write_bytes(data[:60])  # the issue's case: header intact, cut after 60 bytes
    problem = check_image_file(images / "cut.png", max_pixels=10**8, verify=False)
    assert problem and "unreadable image" in problem and "IEND" in problem and "cut.png" in problem
    assert check_image_file(images / "ok.png", max_pixels=10**8, verify=False) is None
    turns = [{"from": "human", "value": "<image>\nQ"}, {"from": "gpt", "value": "A"}]
    records = [{"id": f"r{i}", "image": name, "conversations": turns} for i, name in enumerate(["ok.png", "cut.png"])]
    path = write_json(tmp_path / "d.json", records)
    assert check_main(["--data_path", str(path), "--image_folder", str(images)]) == 1
    out = capsys.readouterr().out
    assert "record 1 (id='r1')" in out and "PNG ends without its IEND chunk (file cut short?)" in out
    assert "2 records, 1 bad" in out
