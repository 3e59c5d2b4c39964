#!/usr/bin/env python
"""Write the deterministic synthetic aerial-scene data of the tests and the CPU demo (docs/data-format.md section 5).

The generator is the installable package tinyrs_demo (demo/); this script is its command line `tinyrs-demo-data`,
kept under this name for the README, the Makefile and scripts/run_demo.py.

Usage:
    python scripts/make_demo_data.py --output_dir demo_out/data --scale full [--seed 0]
"""

import sys

from tinyrs_demo.cli import data_main


if __name__ == "__main__":
    sys.exit(data_main())
