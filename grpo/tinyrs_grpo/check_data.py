"""Validate a GRPO dataset the way ``train`` does before training, and report every bad row.

    tinyrs-grpo check-data --dataset_name grpo_data [--split train test] [--model_name_or_path M --max_prompt_length N]

One line per bad row on stderr (file, split, row, problem), a JSON summary per split on stdout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from tinyrs_grpo import __version__
from tinyrs_grpo.cliargs import EXIT_FAILURE, EXIT_USAGE, StrictArgumentParser, setup_logging
from tinyrs_grpo.data import DatasetError, check_split, load_grpo_dataset, select_split
from tinyrs_grpo.images import EXTERNAL_HINT
from tinyrs_grpo.model import load_processor


def check_data_parser() -> StrictArgumentParser:
    parser = StrictArgumentParser(prog="tinyrs-grpo check-data", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"tinyrs-grpo {__version__}")
    parser.add_argument("--dataset_name", required=True, help="save_to_disk folder, .json/.jsonl file or hub id.")
    parser.add_argument("--dataset_config", default=None)
    parser.add_argument("--split", nargs="+", default=None, help="Splits to check (default: all).")
    parser.add_argument("--model_name_or_path", default=None, help="Processor for the max_prompt_length check.")
    parser.add_argument("--max_prompt_length", type=int, default=None)
    parser.add_argument("--min_pixels", type=int, default=None, help="Default: the checkpoint's own bound.")
    parser.add_argument("--max_pixels", type=int, default=None, help="Default: the checkpoint's own bound.")
    parser.add_bool(
        "--allow_external_image_paths",
        help="JSON files: allow image paths outside their folder (refused rows are bad rows otherwise).",
    )
    parser.add_bool(
        "--verify_images",
        help="Decode every image fully (default: header read plus a check of the file's ends for cut-short files).",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """``tinyrs-grpo check-data``: 0 all rows usable, 1 bad rows or an unreadable dataset, 2 a usage error."""
    args = check_data_parser().parse_args(argv)
    setup_logging()

    processor = None
    if args.model_name_or_path is not None:
        try:
            processor = load_processor(args.model_name_or_path, args.min_pixels, args.max_pixels)
        except (OSError, ValueError) as exc:
            sys.stderr.write(f"tinyrs-grpo check-data: error: {args.model_name_or_path}: {str(exc).splitlines()[0]}\n")
            return EXIT_USAGE
    try:
        dataset_dict = load_grpo_dataset(args.dataset_name, args.dataset_config, args.allow_external_image_paths)
    except DatasetError as exc:
        sys.stderr.write(f"tinyrs-grpo check-data: error: {exc}\n")
        return EXIT_FAILURE
    summaries, failed = {}, False
    for split in args.split or list(dataset_dict):
        try:
            report = check_split(
                select_split(dataset_dict, split),
                split,
                judge_enabled=True,
                skip_bad_rows=True,
                processor=processor,
                max_prompt_length=args.max_prompt_length,
                verify_images=args.verify_images,
            )
            failed |= bool(report.bad_rows)
            for index, reason in report.bad_rows:  # one line per bad row, naming file, split, row and problem
                sys.stderr.write(f"{args.dataset_name}: split {split!r} row {index}: {reason}\n")
            summaries[split] = {
                "rows": report.rows_in,
                "usable": report.rows_out,
                "answer_types": dict(sorted(report.answer_types.items())),
                "bad_rows": [{"row": i, "reason": r} for i, r in report.bad_rows],
                "over_max_prompt_length": report.dropped_too_long,
                "image_paths_outside_data_root": sum(EXTERNAL_HINT in r for _, r in report.bad_rows),
            }
        except DatasetError as exc:
            failed = True
            summaries[split] = {"error": str(exc)}
            sys.stderr.write(f"{args.dataset_name}: {exc}\n")
    sys.stdout.write(json.dumps(summaries, indent=1) + "\n")
    return EXIT_FAILURE if failed else 0


if __name__ == "__main__":
    sys.exit(main())
