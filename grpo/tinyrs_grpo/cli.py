"""``tinyrs-grpo`` console script: ``train``, ``build-data`` and ``check-data`` subcommands.

tinyrs-grpo train --config grpo/configs/tinyrs_r1.yaml [flags]     # same flags as python -m tinyrs_grpo.train
tinyrs-grpo build-data --data_path sft.json --image_folder images --output_dir grpo_data
tinyrs-grpo check-data --dataset_name grpo_data [--split train test] [--model_name_or_path M --max_prompt_length N]
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence

from tinyrs_grpo import __version__
from tinyrs_grpo.flags import FlagParser, suggestion


USAGE = "usage: tinyrs-grpo {train,build-data,check-data} [options]   (tinyrs-grpo COMMAND --help for options)\n"


COMMANDS = ("train", "build-data", "check-data")


def check_data_parser() -> FlagParser:
    parser = FlagParser(prog="tinyrs-grpo check-data", description=check_data.__doc__)
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


def check_data(argv: Sequence[str] | None = None) -> int:
    """Validate a GRPO dataset the way ``train`` does before training; exit 1 when it has bad rows."""
    from tinyrs_grpo.data import DatasetError, check_split, load_grpo_dataset, select_split
    from tinyrs_grpo.images import EXTERNAL_HINT

    args = check_data_parser().parse_args(argv)
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.INFO)

    processor = None
    if args.model_name_or_path is not None:
        from tinyrs_grpo.model import load_processor

        try:
            processor = load_processor(args.model_name_or_path, args.min_pixels, args.max_pixels)
        except (OSError, ValueError) as exc:
            sys.stderr.write(f"tinyrs-grpo check-data: error: {args.model_name_or_path}: {str(exc).splitlines()[0]}\n")
            return 2
    try:
        dataset_dict = load_grpo_dataset(args.dataset_name, args.dataset_config, args.allow_external_image_paths)
    except DatasetError as exc:
        sys.stderr.write(f"tinyrs-grpo check-data: error: {exc}\n")
        return 1
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
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0 if args else 2
    if args[0] == "--version":
        sys.stdout.write(f"tinyrs-grpo {__version__}\n")
        return 0
    command, rest = args[0], args[1:]
    if command == "train":
        from tinyrs_grpo.train import cli as train_cli

        train_cli(rest)
        return 0
    if command == "build-data":
        from tinyrs_grpo.build_data import cli as build_cli

        return build_cli(rest)
    if command == "check-data":
        return check_data(rest)
    hint = suggestion(command, [*COMMANDS, "--version", "--help"])
    sys.stderr.write(f"tinyrs-grpo: error: unknown command {command!r}{hint}; commands: {', '.join(COMMANDS)}\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
