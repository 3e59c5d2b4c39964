"""``tinyrs-eval run ...`` (evaluate) and ``tinyrs-eval report RUN_DIR ...`` (HTML comparison)."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(
        prog="tinyrs-eval",
        description="TinyRS benchmark runner. 'run --help' and 'report --help' list each command's options.",
    )
    parser.add_argument("command", choices=("run", "report"))
    parser.add_argument("args", nargs=argparse.REMAINDER)
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    ns = parser.parse_args(argv[:1])
    if ns.command == "run":
        from tinyrs_eval.run import main as run_main

        return run_main(argv[1:])
    from tinyrs_eval.report import main as report_main

    return report_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
