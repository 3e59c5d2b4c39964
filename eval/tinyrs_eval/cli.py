"""``tinyrs-eval`` console script: ``run``, ``report``, ``infer`` and ``chat``.

    tinyrs-eval run --config eval/configs/tinyrs_reasoning.yaml --model_name_or_path CKPT --data_root DATA
    tinyrs-eval report eval_out/ --output report.html
    tinyrs-eval infer --model_name_or_path CKPT --image scene.png --question "How many ships?"

Exit status: 0 done, 1 bad data or a runtime failure, 2 a usage error (the command line or a recipe).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tinyrs_eval import __version__
from tinyrs_eval.cliargs import StrictArgumentParser, command_parser, dispatch


PROG = "tinyrs-eval"
DESCRIPTION = "TinyRS benchmark runner."
# command -> ("module:function" called with the command's arguments, one line of help)
COMMANDS = {
    "run": ("tinyrs_eval.run:cli", "evaluate a checkpoint on the benchmarks (the same as python -m tinyrs_eval.run)"),
    "report": ("tinyrs_eval.report.page:main", "compare runs in one HTML page"),
    "infer": ("tinyrs_eval.infer:main", "ask a checkpoint about one image or a folder of images"),
    "chat": ("tinyrs_eval.chat:main", "chat with a checkpoint about an image in a web page"),
}


def build_parser() -> StrictArgumentParser:
    return command_parser(PROG, DESCRIPTION, COMMANDS, __version__)


def main(argv: Sequence[str] | None = None) -> int:
    return dispatch(build_parser(), COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
