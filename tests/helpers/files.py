"""Small test inputs: images, SFT record files, GRPO datasets (saved with ``datasets`` or as JSON), JSON lines."""

from __future__ import annotations

import base64
import io
import json
import random
from pathlib import Path
from typing import Any


# ---------------------------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------------------------
def png_bytes(color: tuple[int, int, int] = (40, 120, 60), size: tuple[int, int] = (56, 56)) -> bytes:
    """A PNG of one colour."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def make_image(path: Path, size: tuple[int, int] = (56, 56), color: tuple[int, int, int] = (40, 120, 60)) -> Path:
    """Write a one-colour image (format from the suffix), creating the folder."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def noisy_png(seed: int = 0, size: int = 56) -> bytes:
    """A PNG of random pixels: its compressed data is long enough to damage in the middle."""
    from PIL import Image

    rnd = random.Random(seed)
    image = Image.frombytes("RGB", (size, size), bytes(rnd.randrange(256) for _ in range(size * size * 3)))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def damaged_png(seed: int = 0) -> bytes:
    """A complete PNG (header and IEND intact) with broken compressed data: only a full decode notices."""
    data = bytearray(noisy_png(seed))
    start = data.index(b"IDAT") + 40
    for k in range(start, start + 40):
        data[k] ^= 0xFF
    return bytes(data)


# ---------------------------------------------------------------------------------------------------------------
# SFT records (LLaVA conversation format)
# ---------------------------------------------------------------------------------------------------------------
def write_json(path: Path, records: list) -> Path:
    path.write_text(json.dumps(records))
    return path


def simple_record(i: int, image: str | None = "a.png", answer: str = "farmland") -> dict:
    """Record ``r{i}``: one question about one image (or none) and its answer."""
    rec = {
        "id": f"r{i}",
        "conversations": [
            {"from": "human", "value": ("<image>\n" if image else "") + "{CLS} What is this?"},
            {"from": "gpt", "value": answer},
        ],
    }
    if image:
        rec["image"] = image
    return rec


def sft_record(rid: str, image: str, question: str, answer: str, system: str | None = None) -> dict:
    """One image, one question, one answer, an optional system turn."""
    turns = [{"from": "system", "value": system}] if system else []
    turns += [{"from": "human", "value": f"<image>\n{question}"}, {"from": "gpt", "value": answer}]
    return {"id": rid, "image": image, "conversations": turns}


# ---------------------------------------------------------------------------------------------------------------
# GRPO rows
# ---------------------------------------------------------------------------------------------------------------
def grpo_row(answer_type: Any, answer: str, problem: str = "{VQA} Is there a ship?", color=(40, 120, 60)) -> dict:
    """A row with image bytes, problem and the solution list [type, answer, problem, base64 image]."""
    data = png_bytes(color)
    return {
        "image": {"bytes": data, "path": None},
        "problem": problem,
        "solution": [str(answer_type), answer, problem, base64.b64encode(data).decode("ascii")],
    }


def save_grpo_dataset(path: Path, rows: list[dict], test_rows: list[dict] | None = None) -> Path:
    """save_to_disk a DatasetDict (train, optional test) of rows with image bytes, problem and solution."""
    import datasets

    features = datasets.Features(
        {
            "image": datasets.Image(),
            "problem": datasets.Value("string"),
            "solution": datasets.List(datasets.Value("string")),
        }
    )
    splits = {"train": datasets.Dataset.from_list(rows, features=features)}
    if test_rows:
        splits["test"] = datasets.Dataset.from_list(test_rows, features=features)
    datasets.DatasetDict(splits).save_to_disk(str(path))
    return path


def write_json_dataset(folder: Path, images: dict[str, bytes], names: list[str]) -> Path:
    """``folder/grpo.json`` whose record i points at ``names[i]`` and asks "{VQA} question i?" (answer "yes");
    the files in ``images`` are written first."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in images.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    records = [
        {"image": name, "problem": f"{{VQA}} question {i}?", "solution": ["1", "yes", f"question {i}", ""]}
        for i, name in enumerate(names)
    ]
    path = folder / "grpo.json"
    path.write_text(json.dumps(records))
    return path
