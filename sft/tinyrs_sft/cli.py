"""``tinyrs-sft`` console script: ``train``, ``check-data`` and ``merge-lora``.

    tinyrs-sft train --config sft/configs/sft.yaml [flags]     # the same as python -m tinyrs_sft.train
    tinyrs-sft check-data --dataset_name data.json --image_folder images
    tinyrs-sft merge-lora --adapter_path out/lora --output_dir out/merged

Exit status: 0 done, 1 bad data or a runtime failure, 2 a usage error (the command line or a recipe).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from tinyrs_sft import __version__
from tinyrs_sft.cliargs import StrictArgumentParser, command_parser, dispatch


PROG = "tinyrs-sft"
DESCRIPTION = "TinyRS supervised fine-tuning."
# command -> ("module:function" called with the command's arguments, one line of help)
COMMANDS = {
    "train": ("tinyrs_sft.train:cli", "fine-tune a Qwen2-VL checkpoint (tinyrs-sft train --help)"),
    "check-data": ("tinyrs_sft.check_data:main", "scan a LLaVA-style data file and report every bad record"),
    "merge-lora": ("tinyrs_sft.merge_lora:main", "fold a LoRA adapter into its base model"),
}


def build_parser() -> StrictArgumentParser:
    return command_parser(PROG, DESCRIPTION, COMMANDS, __version__)


def main(argv: Sequence[str] | None = None) -> int:
    return dispatch(build_parser(), COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
