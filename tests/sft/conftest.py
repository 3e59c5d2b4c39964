"""Helpers for the tinyrs_sft tests: tiny images and record files, and an in-process training run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image


def make_image(path: Path, size: tuple[int, int] = (56, 56), color: tuple[int, int, int] = (40, 120, 60)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def write_json(path: Path, records: list) -> Path:
    path.write_text(json.dumps(records))
    return path


def simple_record(i: int, image: str | None = "a.png", answer: str = "farmland") -> dict:
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


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The tiny model is latency-bound: two threads on a shared 2-core machine are ~20x slower than one."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(name="simple_record")
def simple_record_fixture() -> Callable[..., dict]:
    return simple_record


@pytest.fixture(name="write_json")
def write_json_fixture() -> Callable[[Path, list], Path]:
    return write_json


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A folder with images/a.png (56x56), images/b.png (112x112) and images/c.png (56x112)."""
    make_image(tmp_path / "images" / "a.png", (56, 56))
    make_image(tmp_path / "images" / "b.png", (112, 112), (200, 30, 30))
    make_image(tmp_path / "images" / "c.png", (56, 112), (30, 30, 200))
    return tmp_path


@pytest.fixture
def tiny_processor(tiny_model_dir: Path):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_model_dir)


@pytest.fixture
def run_training() -> Callable[..., None]:
    """Run ``tinyrs_sft.train.main`` in-process with CPU-friendly defaults; extra flags override them."""
    from tinyrs_sft.config import parse_args
    from tinyrs_sft.train import main

    def run(model_dir: Path, data_path: Path, image_folder: Path, output_dir: Path, *extra: str) -> None:
        argv = [
            "--model_name_or_path", str(model_dir),
            "--dataset_name", str(data_path),
            "--image_folder", str(image_folder),
            "--output_dir", str(output_dir),
            "--use_cpu", "True",
            "--report_to", "none",
            "--per_device_train_batch_size", "2",
            "--logging_steps", "1",
            "--save_strategy", "no",
            "--disable_tqdm", "True",
            "--dataloader_num_workers", "0",
            "--tune_merger", "True",
            "--seed", "0",
            *extra,
        ]  # fmt: skip
        main(*parse_args(argv))

    return run
