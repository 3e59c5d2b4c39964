"""``tinyrs-grpo`` console script: ``train``, ``build-data`` and ``check-data``.

    tinyrs-grpo train --config grpo/configs/tinyrs_r1.yaml [flags]     # the same as python -m tinyrs_grpo.train
    tinyrs-grpo build-data --data_path sft.json --image_folder images --output_dir grpo_data
    tinyrs-grpo check-data --dataset_name grpo_data [--split train test]

Exit status: 0 done, 1 bad data or a runtime failure, 2 a usage error (the command line or a recipe).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tinyrs_grpo import __version__
from tinyrs_grpo.cliargs import StrictArgumentParser, command_parser, dispatch


PROG = "tinyrs-grpo"
DESCRIPTION = "TinyRS GRPO training."
# command -> ("module:function" called with the command's arguments, one line of help)
COMMANDS = {
    "train": ("tinyrs_grpo.train:cli", "GRPO training with TRL (tinyrs-grpo train --help)"),
    "build-data": ("tinyrs_grpo.build_data:main", "turn an SFT / CoT-SFT data file into a GRPO dataset"),
    "check-data": ("tinyrs_grpo.check_data:main", "check a GRPO dataset the way train does and report every bad row"),
}


def build_parser() -> StrictArgumentParser:
    return command_parser(PROG, DESCRIPTION, COMMANDS, __version__)


def main(argv: Sequence[str] | None = None) -> int:
    return dispatch(build_parser(), COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
