"""Argument lists for the entry points and an in-process SFT run with CPU-friendly defaults."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .processes import REPO_ROOT


# The reliability suite's corpus of bad inputs (tests/reliability/bad_inputs/README.md).
BAD_INPUTS = REPO_ROOT / "tests" / "reliability" / "bad_inputs"


def entry_argv(entry: str, data: Path, out: Path, model: Path, flags: list[str]) -> tuple[Callable, list[str]]:
    """(main function, argv) of one entry point for a data file (or eval data_root)."""
    if entry.startswith("sft"):
        from tinyrs_sft.cli import main

        media = BAD_INPUTS / "media"
        if entry == "sft-check":
            return main, ["check-data", "--data_path", str(data), "--image_folder", str(media), *flags]
        flags = [f if f != "--verify_images" else "--verify_images=True" for f in flags]
        return main, ["train", "--model_id", str(model), "--data_path", str(data), "--image_folder", str(media),
                      "--output_dir", str(out), "--use_cpu", "True", "--report_to", "none", "--max_steps", "1",
                      "--per_device_train_batch_size", "1", "--dataloader_num_workers", "0", *flags]  # fmt: skip
    if entry.startswith("grpo"):
        from tinyrs_grpo.cli import main

        if entry == "grpo-check":
            return main, ["check-data", "--dataset_name", str(data), *flags]
        if entry == "grpo-build":
            return main, ["build-data", "--data_path", str(data), "--image_folder", str(BAD_INPUTS / "media"),
                          "--output_dir", str(out / "grpo_data"), *flags]  # fmt: skip
        return main, ["train", "--model_name_or_path", str(model), "--dataset_name", str(data), "--output_dir",
                      str(out), "--use_cpu", "true", "--report_to", "none", "--judge", "none", "--max_steps", "1",
                      "--per_device_train_batch_size", "2", "--num_generations", "2", "--max_completion_length", "4",
                      "--bf16", "false", *flags]  # fmt: skip
    from tinyrs_eval.cli import main

    return main, ["run", "--model_path", str(model), "--data_root", str(data.parent), "--output_dir", str(out),
                  "--max_new_tokens", "4", *flags]  # fmt: skip


def run_sft(model_dir: Path, data_path: Path, image_folder: Path, output_dir: Path, *extra: str) -> None:
    """Run ``tinyrs_sft.train.main`` in-process with CPU-friendly defaults; ``extra`` flags override them."""
    from tinyrs_sft.config import parse_args
    from tinyrs_sft.train import main

    argv = [
        "--model_name_or_path", str(model_dir),
        "--dataset_name", str(data_path),
        "--image_folder", str(image_folder),
        "--output_dir", str(output_dir),
        "--use_cpu", "True",
        "--report_to", "none",
        "--per_device_train_batch_size", "2",
        "--logging_steps", "1",
        "--save_strategy", "no",
        "--disable_tqdm", "True",
        "--dataloader_num_workers", "0",
        "--tune_merger", "True",
        "--seed", "0",
        *extra,
    ]  # fmt: skip
    main(*parse_args(argv))
