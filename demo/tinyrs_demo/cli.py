"""Command lines of the demo support package.

    tinyrs-demo-data --output_dir demo_out/data --scale full [--seed 0]     # the synthetic data (writers.py)
    tinyrs-tiny-model --preset tiny --output_dir /tmp/tiny-qwen2vl           # the tiny checkpoint (tiny_model.py)
    python -m tinyrs_demo data ... | python -m tinyrs_demo model ...          # the same two

scripts/make_demo_data.py and scripts/make_tiny_model.py call `data_main` and `model_main` with the same flags.
Exit status: 0 done, 2 usage error, 1 a failure while writing (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from tinyrs_demo.questions import SCALES
from tinyrs_demo.tokenizer import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS
from tinyrs_demo.vocabulary import BENCHMARKS


DATA_HELP = "Write the deterministic synthetic aerial-scene data of the tests and the CPU demo."
MODEL_HELP = "Build a complete, tiny, randomly initialised Qwen2-VL checkpoint folder, offline."


def _version() -> str:
    try:
        return metadata.version("tinyrs-demo")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output_dir", required=True, help="folder to write (created if missing)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random stream (default: 0)")
    parser.add_argument("--scale", choices=sorted(SCALES), default="small", help="record counts (default: small)")


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    from tinyrs_demo.tiny_model import PRESETS

    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny", help="model size (default: tiny)")
    parser.add_argument("--output_dir", required=True, help="checkpoint folder to write (created if missing)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights (default: 0)")
    parser.add_argument("--min_pixels", type=int, default=DEFAULT_MIN_PIXELS, help="image processor lower bound")
    parser.add_argument("--max_pixels", type=int, default=DEFAULT_MAX_PIXELS, help="image processor upper bound")
    parser.add_argument(
        "--size",
        action="append",
        default=[],
        type=_size_item,
        metavar="FIELD=N",
        help="change one size of the preset, e.g. num_hidden_layers=8 (repeatable; for width/depth probes)",
    )
    parser.add_argument(
        "--attention_init_gain",
        type=float,
        default=None,
        help="factor on the initial query/key projections (default: the preset's; 1 gives the plain 0.02 init)",
    )


def _size_item(text: str) -> tuple[str, int]:
    name, sep, value = text.partition("=")
    if not sep or not value.strip().lstrip("-").isdigit():
        raise argparse.ArgumentTypeError(f"expected FIELD=N with an integer N, got {text!r}")
    return name.strip(), int(value)


def run_data(args: argparse.Namespace) -> int:
    from tinyrs_demo.writers import build_demo_data

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    out = build_demo_data(args.output_dir, seed=args.seed, scale=args.scale)
    for name in ("pretrain.json", "sft.json", "cot_sft.json"):
        sys.stdout.write(f"{out / name}: {len(json.loads((out / name).read_text()))} records\n")
    for key, (file_name, _) in BENCHMARKS.items():
        n = len(json.loads((out / "eval" / file_name).read_text()))
        sys.stdout.write(f"{out / 'eval' / file_name}: {n} records ({key})\n")
    sys.stdout.write(f"{out / 'grpo'}: DatasetDict train/test\n")
    return 0


def run_model(args: argparse.Namespace) -> int:
    from tinyrs_demo.tiny_model import build_tiny_model, count_parameters

    sizes = dict(args.size)
    out = build_tiny_model(
        args.output_dir, args.preset, args.seed, args.min_pixels, args.max_pixels, sizes, args.attention_init_gain
    )
    n_params = count_parameters(Path(out))
    label = args.preset + "".join(f" {name}={value}" for name, value in sizes.items())
    if args.attention_init_gain is not None:
        label += f" attention_init_gain={args.attention_init_gain:g}"
    sys.stdout.write(f"wrote {label} Qwen2-VL checkpoint ({n_params / 1e6:.2f} M parameters) to {out}\n")
    return 0


def _run(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        return run(args)
    except (OSError, ValueError) as err:
        sys.stderr.write(f"error: {err}\n")
        return 1


def _parser(description: str, add_arguments: Callable[[argparse.ArgumentParser], None]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    add_arguments(parser)
    return parser


def data_main(argv: list[str] | None = None) -> int:
    """`tinyrs-demo-data` (and scripts/make_demo_data.py)."""
    return _run(run_data, _parser(DATA_HELP, add_data_arguments).parse_args(argv))


def model_main(argv: list[str] | None = None) -> int:
    """`tinyrs-tiny-model` (and scripts/make_tiny_model.py)."""
    return _run(run_model, _parser(MODEL_HELP, add_model_arguments).parse_args(argv))


def main(argv: list[str] | None = None) -> int:
    """`python -m tinyrs_demo {data,model} ...`."""
    parser = argparse.ArgumentParser(prog="python -m tinyrs_demo", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{data,model}")
    for name, help_text, add_arguments, run in (
        ("data", DATA_HELP, add_data_arguments, run_data),
        ("model", MODEL_HELP, add_model_arguments, run_model),
    ):
        sub = commands.add_parser(name, help=help_text, description=help_text, allow_abbrev=False)
        add_arguments(sub)
        sub.set_defaults(run=run)
    args = parser.parse_args(argv)
    return _run(args.run, args)
