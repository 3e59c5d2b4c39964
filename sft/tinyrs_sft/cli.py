"""``tinyrs-sft`` console script: ``train``, ``check-data`` and ``merge-lora`` subcommands."""

from __future__ import annotations

import sys


USAGE = """usage: tinyrs-sft {train,check-data,merge-lora} [options]

  train       fine-tune a Qwen2-VL checkpoint (tinyrs-sft train --help)
  check-data  scan a LLaVA-style data file and report every bad record
  merge-lora  fold a LoRA adapter into its base model
"""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "train":
        from tinyrs_sft.train import cli

        cli(rest)
        return 0
    if command == "check-data":
        from tinyrs_sft.check_data import main as check_main

        return check_main(rest)
    if command == "merge-lora":
        from tinyrs_sft.merge_lora import main as merge_main

        return merge_main(rest)
    sys.stderr.write(f"tinyrs-sft: unknown command {command!r}\n{USAGE}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
