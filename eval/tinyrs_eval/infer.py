"""``tinyrs-eval infer``: ask a checkpoint one question about one image (or every image of a folder); JSON out.

    tinyrs-eval infer --model_name_or_path demo_out/grpo --reasoning --image scene.png --task vg \\
        --question "the storage tank at the top left"

One JSON object on stdout for an image file; one JSON line per image for a folder. Fields: image, size [h, w],
task, query (the text sent, built as the benchmarks build it), answer, reasoning, boxes ({grid: [x1, y1, x2, y2] on
0-1000, pixels: [...], outside: past the image edge}), raw (the decoded output), malformed, error.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from tinyrs_eval import __version__
from tinyrs_eval.cliargs import BOOL_FLAG, EXIT_FAILURE, StrictArgumentParser, setup_logging
from tinyrs_eval.errors import EvalError
from tinyrs_eval.images import load_image
from tinyrs_eval.interactive import TASKS, ChatModel, make_query, parse_output


logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif"}


def build_parser() -> argparse.ArgumentParser:
    p = StrictArgumentParser(prog="tinyrs-eval infer", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"tinyrs-eval {__version__}")
    p.add_argument("--model_name_or_path", "--model_path", required=True, help="checkpoint folder or hub id")
    p.add_argument("--image", required=True, help="an image file, or a folder: every image in it")
    p.add_argument("--question", required=True, help="the question (without task tag)")
    p.add_argument("--task", default="free", choices=list(TASKS), help="adds {CLS} / {VQA} / {VG}; free: no tag")
    p.add_argument("--reasoning", default=False, **BOOL_FLAG, help="reasoning system prompt (<reasoning>/<answer>)")
    p.add_argument("--reasoning_config", default=None, help="chat template JSON for --reasoning (default: built in)")
    p.add_argument("--prompt_style", default="tinyrs", choices=("tinyrs", "qwen2vl"))
    p.add_argument("--max_new_tokens", type=int, default=512)
    p.add_argument("--device", default="auto", help="auto (cuda if present), cpu, cuda, cuda:1 ...")
    p.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16"))
    p.add_argument("--output", default=None, help="write the JSON here as well as to stdout")
    p.add_argument("--log_level", default="WARNING", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    return p


def list_images(path: Path) -> list[Path]:
    """The image itself, or the images of a folder (sorted, not recursive)."""
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise EvalError(f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder {path}")
        return found
    if not path.exists():
        raise EvalError(f"image not found: {path}")
    return [path]


def answer_one(model: ChatModel, image_path: Path, question: str, task: str, reasoning: bool) -> dict[str, Any]:
    """The JSON record for one image; an unreadable image gives a record with ``error`` set and no answer."""
    query = make_query(task, question, model.prompt_style)
    record: dict[str, Any] = {"image": str(image_path), "size": None, "task": task, "query": query}
    image, error = load_image(image_path)
    if image is None:
        record.update(parse_output("", None, task), error=error)
        return record
    size = (image.height, image.width)
    raw = model.generate(image, model.prompt([], query, reasoning))
    record["size"] = list(size)
    record.update(parse_output(raw, size, task), error=None)
    return record


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    try:
        images = list_images(Path(args.image))
        if not Path(args.image).is_dir():  # one image: a bad file is reported before the model loads
            if load_image(images[0])[0] is None:
                raise EvalError(load_image(images[0])[1])
        model = ChatModel(
            args.model_name_or_path,
            max_new_tokens=args.max_new_tokens,
            device=args.device,
            dtype=args.dtype,
            prompt_style=args.prompt_style,
            reasoning_config=args.reasoning_config,
        )
        records = [answer_one(model, p, args.question, args.task, args.reasoning) for p in images]
    except EvalError as exc:  # no such model or image, an image that does not open: data, not usage
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_FAILURE
    single = len(records) == 1 and not Path(args.image).is_dir()
    if single and records[0]["error"]:
        sys.stderr.write(f"error: {records[0]['error']}\n")
        return EXIT_FAILURE
    text = (
        json.dumps(records[0], ensure_ascii=False)
        if single
        else "\n".join(json.dumps(r, ensure_ascii=False) for r in records)
    )
    sys.stdout.write(text + "\n")
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
