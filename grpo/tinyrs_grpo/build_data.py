"""``tinyrs-grpo build-data``: LLaVA-style SFT list JSON/JSONL -> GRPO dataset (save_to_disk DatasetDict).

The original shipped no such tool (its GRPO data had to come from the hub). Each record's first human -> gpt pair
becomes one row: ``problem`` = the human text without ``<image>`` placeholders, ``prompt`` = reasoning system
prompt + image + problem, ``image`` = the file's bytes (embedded), ``solution`` = [answer_type, answer, problem,
base64 of the image file]. The answer is the gpt text's ``<answer>`` content when it has one (CoT records).

answer_type comes from the record's ``answer_type`` field when present, else it is inferred: an answer made only of
box coordinates -> "2"; an answer of at most ``max_exact_words`` words -> "1"; longer free text -> "0".

    tinyrs-grpo build-data --data_path sft.json --image_folder images/ --output_dir grpo_data --test_size 0.1
"""

from __future__ import annotations

import base64
import json
import logging
import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tinyrs_grpo import __version__
from tinyrs_grpo.cliargs import EXIT_FAILURE, StrictArgumentParser, setup_logging
from tinyrs_grpo.data import DatasetError, build_prompt, grpo_features, inside_folder, read_json_records
from tinyrs_grpo.text import BOX, EXACT, OPEN_ENDED, answer_type_code, extract_answer, parse_box


logger = logging.getLogger(__name__)

_IMAGE_TOKEN_RE = re.compile(r"\n?<image>\n?")
_BOX_ONLY_RE = re.compile(r"^[\[\]\(\)\s,;0-9.+-]+$")
ROLE_ALIASES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


def infer_answer_type(answer: str, max_exact_words: int = 5) -> str:
    """ "2" for an answer made only of box coordinates, "1" for a short answer, "0" for longer free text."""
    text = answer.strip()
    if _BOX_ONLY_RE.match(text) and parse_box(text) is not None:
        return BOX
    return EXACT if len(text.split()) <= max_exact_words else OPEN_ENDED


def record_to_row(
    record: dict, image_folder: Path, max_exact_words: int = 5, allow_external_image_paths: bool = False
) -> dict:
    """One LLaVA record -> one GRPO row (image bytes embedded). Image paths must stay inside ``image_folder``
    (no absolute path, no ``..`` escape) unless ``allow_external_image_paths``.

    Raises:
        ValueError: naming the problem (the caller adds the record index and id).
    """
    image = record.get("image")
    if isinstance(image, list):
        if len(image) != 1:
            raise ValueError(f"{len(image)} images; GRPO rows take exactly one")
        image = image[0]
    if not isinstance(image, str) or not image:
        raise ValueError("no image")
    image_path = inside_folder(image, image_folder)
    if image_path is None:
        if not allow_external_image_paths:
            raise ValueError(
                f"image path {image[:200]!r} points outside --image_folder {str(image_folder)!r} "
                "(pass --allow_external_image_paths to allow absolute or '..' paths)"
            )
        image_path = Path(image) if Path(image).is_absolute() else image_folder / image
    if not image_path.is_file():
        raise ValueError(f"image file not found: {image_path}")
    conversations = record.get("conversations")
    if not isinstance(conversations, list):
        raise ValueError("'conversations' must be a list")
    turns = [
        (ROLE_ALIASES.get(t.get("from"), t.get("from")), t.get("value")) for t in conversations if isinstance(t, dict)
    ]
    turns = [(role, value) for role, value in turns if role != "system"]
    if len(turns) < 2 or turns[0][0] != "user" or turns[1][0] != "assistant":
        raise ValueError("needs a human turn followed by a gpt turn")
    problem = _IMAGE_TOKEN_RE.sub(" ", str(turns[0][1] or "")).strip()
    if not problem:
        raise ValueError("empty question")
    answer = extract_answer(str(turns[1][1] or ""))
    if not answer:
        raise ValueError("empty answer")
    if "answer_type" in record:
        code = answer_type_code(record["answer_type"])
    else:
        code = infer_answer_type(answer, max_exact_words)
    data = image_path.read_bytes()
    return {
        "image": {"bytes": data, "path": None},
        "problem": problem,
        "prompt": build_prompt(problem),
        "solution": [code, answer, problem, base64.b64encode(data).decode("ascii")],
    }


def build_grpo_dataset(
    data_path: str | Path,
    image_folder: str | Path,
    output_dir: str | Path,
    test_size: float = 0.0,
    seed: int = 0,
    max_exact_words: int = 5,
    skip_bad_rows: bool = False,
    allow_external_image_paths: bool = False,
) -> dict[str, Any]:
    """Convert and ``save_to_disk``; returns a summary dict (rows per split and answer type, skipped records)."""
    import datasets

    data_path, image_folder = Path(data_path), Path(image_folder)
    records = read_json_records(data_path)
    rows, errors = [], []
    for index, record in enumerate(records):
        try:
            if not isinstance(record, dict):
                raise ValueError(f"expected an object, got {type(record).__name__}")
            rows.append(record_to_row(record, image_folder, max_exact_words, allow_external_image_paths))
        except (ValueError, OSError) as exc:
            rid = record.get("id") if isinstance(record, dict) else None
            errors.append(f"record {index}" + (f" (id {rid})" if rid is not None else "") + f": {exc}")
    if errors:
        message = f"{data_path}: {len(errors)} unusable record(s): " + "; ".join(errors[:10])
        if not skip_bad_rows:
            raise DatasetError(message + " (pass --skip_bad_rows to skip them)")
        logger.warning("skipping %s", message)
    if not rows:
        raise DatasetError(f"{data_path}: no usable records")
    base = datasets.Features({"image": datasets.Image()})
    dataset = datasets.Dataset.from_list(rows, features=grpo_features(base))
    if test_size > 0:
        split = dataset.train_test_split(test_size=test_size, seed=seed)
        dataset_dict = datasets.DatasetDict({"train": split["train"], "test": split["test"]})
    else:
        dataset_dict = datasets.DatasetDict({"train": dataset})
    dataset_dict.save_to_disk(str(output_dir))
    summary = {
        "output_dir": str(output_dir),
        "splits": {name: len(ds) for name, ds in dataset_dict.items()},
        "answer_types": dict(sorted(Counter(r["solution"][0] for r in rows).items())),
        "skipped_records": len(errors),
    }
    logger.info("wrote %s", json.dumps(summary))
    return summary


def make_parser() -> StrictArgumentParser:
    parser = StrictArgumentParser(prog="tinyrs-grpo build-data", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"tinyrs-grpo {__version__}")
    parser.add_argument("--data_path", required=True, help="LLaVA-style list JSON or JSONL (SFT / CoT-SFT).")
    parser.add_argument("--image_folder", required=True, help="Folder the records' image paths are relative to.")
    parser.add_argument("--output_dir", required=True, help="Where to save_to_disk the DatasetDict.")
    parser.add_argument("--test_size", type=float, default=0.0, help="Fraction (<1) or count (>=1) for a test split.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the train/test split.")
    parser.add_argument("--max_exact_words", type=int, default=5, help="Longest answer (words) inferred as exact.")
    parser.add_bool("--skip_bad_rows", help="Skip unusable records instead of failing.")
    parser.add_bool("--allow_external_image_paths", help="Allow absolute or '..' paths outside the folder.")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``tinyrs-grpo build-data``: 0 written, 1 bad records (one line), 2 a usage error."""
    args = make_parser().parse_args(argv)
    setup_logging()
    test_size = int(args.test_size) if args.test_size >= 1 else args.test_size
    try:
        summary = build_grpo_dataset(
            args.data_path,
            args.image_folder,
            args.output_dir,
            test_size=test_size,
            seed=args.seed,
            max_exact_words=args.max_exact_words,
            skip_bad_rows=args.skip_bad_rows,
            allow_external_image_paths=args.allow_external_image_paths,
        )
    except DatasetError as exc:
        sys.stderr.write(f"tinyrs-grpo build-data: error: {exc}\n")
        return EXIT_FAILURE
    sys.stdout.write(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
