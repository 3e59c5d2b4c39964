"""Writers: render the question builders' scenes and write the demo dataset in the formats of docs/data-format.md.

    DIR/images/          image folder of the list files (pretrain/, sft/, cot/)
    DIR/pretrain.json    captions, LLaVA list JSON
    DIR/sft.json         {CLS} / {VQA} / {VG} instructions, multiple choice, a few multi-image and text-only records
    DIR/cot_sft.json     the same kinds of questions with a reasoning system turn and <reasoning>/<answer> answers
    DIR/grpo/            datasets.DatasetDict {train, test} (save_to_disk)
    DIR/eval/            data_root with the 12 benchmark JSON files and their image folders
    DIR/scenes.json      demo-only manifest: image -> background and objects (used by tests; not an exchange format)

Train scenes (pretrain/SFT/CoT/GRPO train) and test scenes (GRPO test, eval) come from different random streams and
never share an image; the same seed and scale give the same files byte for byte.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import time
from pathlib import Path

from PIL import Image

from tinyrs_demo.questions import (
    COT_BUILDERS,
    QA,
    SCALES,
    SFT_BUILDERS,
    Sizes,
    cot_answer,
    cot_count,
    eval_builder,
    human_text,
    qa_caption,
    qa_cls,
    qa_comp,
    qa_count,
    qa_mc,
    qa_presence,
    qa_rural,
    qa_vg,
)
from tinyrs_demo.scenes import PNG_COMPRESS_LEVEL, TEST_SIZES, TRAIN_SIZES, Scene, png_bytes, render
from tinyrs_demo.vocabulary import BENCHMARKS, LR_IMAGE_PATH, REASONING_SYSTEM_PROMPT


logger = logging.getLogger(__name__)


class ImageWriter:
    """Renders scenes to PNG files and records them in the manifest (keys: paths relative to the output dir)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.manifest: dict[str, dict] = {}

    def write(self, scene: Scene, path: Path) -> Image.Image:
        path.parent.mkdir(parents=True, exist_ok=True)
        img = render(scene)
        img.save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        self.manifest[path.relative_to(self.root).as_posix()] = scene.meta()
        return img


def _list_record(rid: str, qa: QA, images: list[str], cot: bool) -> dict:
    record: dict = {"id": rid}
    if len(images) == 1:
        record["image"] = images[0]
    elif images:
        record["image"] = images
    turns = []
    if cot:
        turns.append({"from": "system", "value": REASONING_SYSTEM_PROMPT})
        answer = cot_answer(qa)
    else:
        answer = qa.answer
    turns += [{"from": "human", "value": human_text(qa)}, {"from": "gpt", "value": answer}]
    record["conversations"] = turns
    return record


def _write_list(
    out: Path, images: ImageWriter, name: str, folder: str, qas: list[QA], cot: bool = False
) -> list[dict]:
    records = []
    for i, qa in enumerate(qas):
        rid = f"{name}_{i:05d}"
        rels = []
        for j, scene in enumerate(qa.scenes):
            rel = f"{folder}/{rid}" + (f"_{j}" if len(qa.scenes) > 1 else "") + ".png"
            images.write(scene, out / "images" / rel)
            rels.append(rel)
        records.append(_list_record(rid, qa, rels, cot))
    _dump_json(out / f"{name}.json", records)
    return records


def _dump_json(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def _grpo_rows(qas: list[QA]) -> dict[str, list]:
    rows: dict[str, list] = {"image": [], "problem": [], "prompt": [], "solution": []}
    for qa in qas:
        img = render(qa.scenes[0])
        data = png_bytes(img)
        answer_type = {"vg": "2", "caption": "0"}.get(qa.task, "1")
        rows["image"].append({"bytes": data, "path": None})
        rows["problem"].append(qa.prompt_text)
        rows["prompt"].append(
            [
                {"role": "system", "content": [{"type": "text", "text": REASONING_SYSTEM_PROMPT}]},
                {
                    "role": "user",
                    "content": [{"type": "image", "text": None}, {"type": "text", "text": qa.prompt_text}],
                },
            ]
        )
        rows["solution"].append([answer_type, qa.answer, qa.prompt_text, base64.b64encode(data).decode("ascii")])
    return rows


def _grpo_qas(rng: random.Random, n: int, sizes: Sizes) -> list[QA]:
    """Mix: ~5% open-ended captions (type 0, at least one), ~25% grounding (type 2), the rest exact (type 1)."""
    exact = (qa_cls, qa_presence, qa_count, qa_comp, qa_rural, qa_mc)
    n_open = max(1, n // 20)
    n_vg = max(1, n // 4)
    qas = [qa_caption(rng, sizes, i) for i in range(n_open)] + [qa_vg(rng, sizes, i) for i in range(n_vg)]
    qas += [exact[i % len(exact)](rng, sizes, i // len(exact)) for i in range(n - n_open - n_vg)]
    rng.shuffle(qas)
    return qas


def _write_grpo(out: Path, train: list[QA], test: list[QA]) -> None:
    import datasets  # heavy import, only needed here

    features = datasets.Features(
        {
            "image": datasets.Image(),
            "problem": datasets.Value("string"),
            "prompt": datasets.List(
                {
                    "role": datasets.Value("string"),
                    "content": datasets.List({"type": datasets.Value("string"), "text": datasets.Value("string")}),
                }
            ),
            "solution": datasets.List(datasets.Value("string")),
        }
    )
    dd = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict(_grpo_rows(train), features=features),
            "test": datasets.Dataset.from_dict(_grpo_rows(test), features=features),
        }
    )
    bars_were_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        dd.save_to_disk(str(out / "grpo"))
    finally:
        if bars_were_enabled:
            datasets.enable_progress_bars()


def _write_eval(out: Path, images: ImageWriter, rng: random.Random, n: int) -> None:
    data_root = out / "eval"
    for key, (file_name, _task_type) in BENCHMARKS.items():
        stem = Path(file_name).stem
        uses_lr_folder = key.startswith("vqa_LR")
        builder = eval_builder(key)
        records = []
        for i in range(n):
            qa = builder(rng, TEST_SIZES, i)
            scene = qa.scenes[0]
            name = f"{stem}_{i:04d}.png"
            folder = data_root / (LR_IMAGE_PATH if uses_lr_folder else stem)
            images.write(scene, folder / name)
            answer = qa.pixel_answer if qa.task == "vg" else qa.answer
            record: dict = {"image": name}
            if uses_lr_folder:
                record["image_path"] = LR_IMAGE_PATH
            record["conversations"] = [
                {"from": "human", "value": "<image>\n" + qa.question},
                {"from": "gpt", "value": answer},
            ]
            if i % 5 != 4:  # most records carry size [height, width]; every fifth leaves it out
                record["size"] = [scene.height, scene.width]
            if qa.types is not None:
                record["type"] = qa.types
            records.append(record)
        _dump_json(data_root / file_name, records)


def build_demo_data(output_dir: str | Path, seed: int = 0, scale: str = "small") -> Path:
    """Write the whole demo dataset under `output_dir` (see the module docstring) and return that path.

    Raises ValueError for an unknown `scale` (the keys of SCALES).
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {sorted(SCALES)}")
    counts = SCALES[scale]
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    images = ImageWriter(out)
    start = time.perf_counter()

    # Independent random streams: train scenes and test scenes never come from the same stream.
    def stream(name: str) -> random.Random:
        return random.Random(f"tinyrs-demo:{seed}:{name}")

    rng = stream("pretrain")
    pretrain = [qa_caption(rng, TRAIN_SIZES, i) for i in range(counts["pretrain"])]
    _write_list(out, images, "pretrain", "pretrain", pretrain)

    rng = stream("sft")
    sft = [builder(rng, TRAIN_SIZES, i) for key, builder in SFT_BUILDERS.items() for i in range(counts[key])]
    rng.shuffle(sft)
    _write_list(out, images, "sft", "sft", sft)

    rng = stream("cot")
    cot = [builder(rng, TRAIN_SIZES, i) for builder in COT_BUILDERS for i in range(cot_count(counts, builder))]
    rng.shuffle(cot)
    _write_list(out, images, "cot_sft", "cot", cot, cot=True)

    _write_grpo(
        out,
        _grpo_qas(stream("grpo-train"), counts["grpo_train"], TRAIN_SIZES),
        _grpo_qas(stream("grpo-test"), counts["grpo_test"], TEST_SIZES),
    )
    _write_eval(out, images, stream("eval"), counts["eval_per_benchmark"])
    _dump_json(out / "scenes.json", images.manifest)
    logger.info("demo data (%s, seed %d) written to %s in %.1f s", scale, seed, out, time.perf_counter() - start)
    return out
