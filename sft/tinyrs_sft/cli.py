"""``tinyrs-sft`` console script: ``train``, ``check-data`` and ``merge-lora`` subcommands.

Exit status: 0 done, 1 bad data or a runtime failure, 2 a usage error (the command line or a recipe).
"""

from __future__ import annotations

import argparse
import sys

from tinyrs_sft import __version__
from tinyrs_sft.cliargs import EXIT_USAGE, StrictArgumentParser


COMMANDS = {
    "train": "fine-tune a Qwen2-VL checkpoint (tinyrs-sft train --help)",
    "check-data": "scan a LLaVA-style data file and report every bad record",
    "merge-lora": "fold a LoRA adapter into its base model",
}


def build_parser() -> argparse.ArgumentParser:
    parser = StrictArgumentParser(
        prog="tinyrs-sft",
        description="TinyRS supervised fine-tuning. '<command> --help' lists each command's options.",
        epilog="\n".join(f"  {name:<11} {text}" for name, text in COMMANDS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tinyrs-sft {__version__}")
    parser.add_argument("command", choices=tuple(COMMANDS), help="subcommand")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="options of the subcommand")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if argv[0] in ("-h", "--help", "--version"):
        parser.parse_args(argv[:1])  # prints and exits 0
    command, rest = parser.parse_args(argv[:1]).command, argv[1:]
    if command == "train":
        from tinyrs_sft.train import cli

        cli(rest)
        return 0
    if command == "check-data":
        from tinyrs_sft.check_data import main as check_main

        return check_main(rest)
    from tinyrs_sft.merge_lora import main as merge_main

    return merge_main(rest)


if __name__ == "__main__":
    sys.exit(main())
