"""``tinyrs-eval run|report|infer|chat ...``: evaluate, compare runs in HTML, ask one image, chat in a web page.

Exit status: 0 done, 1 bad data or a runtime failure, 2 a usage error (the command line or a recipe).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from tinyrs_eval import __version__
from tinyrs_eval.cliargs import EXIT_USAGE, StrictArgumentParser


COMMANDS = {
    "run": "tinyrs_eval.run",
    "report": "tinyrs_eval.report",
    "infer": "tinyrs_eval.infer",
    "chat": "tinyrs_eval.chat",
}


def build_parser() -> argparse.ArgumentParser:
    parser = StrictArgumentParser(
        prog="tinyrs-eval",
        description="TinyRS benchmark runner. '<command> --help' lists each command's options.",
    )
    parser.add_argument("--version", action="version", version=f"tinyrs-eval {__version__}")
    parser.add_argument("command", choices=tuple(COMMANDS))
    parser.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else EXIT_USAGE
    ns = parser.parse_args(argv[:1])
    return importlib.import_module(COMMANDS[ns.command]).main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
