"""``tinyrs-sft check-data``: scan a whole data file (no model needed) and report every bad record.

    tinyrs-sft check-data --dataset_name data/sft.json --image_folder data/images

One line per problem (``FILE: record INDEX (id=ID): PROBLEM``), a summary line, exit status 1 if any record is bad.
Training runs the same scan first (``--check_data``; ``--skip_bad_samples`` skips and counts instead of failing).
"""

from __future__ import annotations

import argparse
import logging
import sys
from array import array
from dataclasses import dataclass, field
from pathlib import Path

from tinyrs_sft import __version__
from tinyrs_sft.cliargs import (
    BOOL_FLAG,
    EXIT_FAILURE,
    StrictArgumentParser,
    UsageError,
    rewrite_aliases,
    setup_logging,
)
from tinyrs_sft.constants import DEFAULT_MAX_IMAGE_PIXELS
from tinyrs_sft.records import DataError, MediaPolicy, RecordSource, check_record, record_label


logger = logging.getLogger("tinyrs_sft")


@dataclass
class ScanReport:
    """Indices of the good records (ascending, compact) and one message per bad record."""

    path: Path
    total: int = 0
    good: array = field(default_factory=lambda: array("q"))
    errors: list[str] = field(default_factory=list)

    @property
    def n_bad(self) -> int:
        return self.total - len(self.good)


def scan_records(
    source: RecordSource,
    policy: MediaPolicy,
    verify_images: bool = False,
    start: int = 0,
    stop: int | None = None,
) -> ScanReport:
    """Check the records ``start..stop`` (default: all); collect the good indices and one message per bad record."""
    stop = len(source) if stop is None else stop
    report = ScanReport(path=source.path, total=stop - start)
    for index in range(start, stop):
        try:
            record = source[index]
        except DataError as err:
            report.errors.append(str(err))
            continue
        problems = check_record(record, policy, verify_images=verify_images)
        if problems:
            report.errors.append(f"{record_label(source.path, index, record)}: {'; '.join(problems)}")
        else:
            report.good.append(index)
    return report


def default_image_folder(data_path: str | Path, image_folder: str | None) -> Path:
    """Media paths are relative to ``--image_folder``, or to the data file's folder when it is not given."""
    return Path(image_folder) if image_folder else Path(data_path).resolve().parent


def build_parser() -> argparse.ArgumentParser:
    parser = StrictArgumentParser(prog="tinyrs-sft check-data", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--dataset_name", "--data_path", required=True, help="LLaVA-style JSON list or JSONL file (alias --data_path)"
    )
    parser.add_argument("--image_folder", default=None, help="folder the media paths are relative to")
    parser.add_argument(
        "--allow_external_image_paths",
        default=False,
        help="allow absolute or '..' paths outside the folder",
        **BOOL_FLAG,
    )
    parser.add_argument("--max_image_pixels", type=int, default=DEFAULT_MAX_IMAGE_PIXELS)
    parser.add_argument(
        "--verify_images",
        default=False,
        help="decode every image fully (slow); without it the header and the file's end are read (a file cut "
        "short is caught)",
        **BOOL_FLAG,
    )
    parser.add_argument("--version", action="version", version=f"tinyrs-sft {__version__}")
    return parser


ALIASES = {"--data_path": "--dataset_name"}


def main(argv: list[str] | None = None) -> int:
    """``tinyrs-sft check-data``: 0 every record usable, 1 bad records or an unreadable file, 2 a usage error."""
    setup_logging()
    parser = build_parser()
    try:
        argv = rewrite_aliases(list(sys.argv[1:] if argv is None else argv), ALIASES, logger)
    except UsageError as err:
        parser.error(str(err))
    args = parser.parse_args(argv)
    try:
        source = RecordSource(args.dataset_name)
    except DataError as err:
        sys.stdout.write(f"{err}\n")
        return EXIT_FAILURE
    policy = MediaPolicy(
        image_folder=default_image_folder(args.dataset_name, args.image_folder),
        allow_external_paths=args.allow_external_image_paths,
        max_image_pixels=args.max_image_pixels,
    )
    report = scan_records(source, policy, verify_images=args.verify_images)
    for line in report.errors:
        sys.stdout.write(line + "\n")
    if not report.total:
        sys.stdout.write(f"{report.path}: no records\n")
        return EXIT_FAILURE
    sys.stdout.write(f"{report.path}: {report.total} records, {report.n_bad} bad\n")
    return EXIT_FAILURE if report.n_bad else 0


if __name__ == "__main__":
    sys.exit(main())
