#!/usr/bin/env python
"""Build a complete, tiny, randomly initialised Qwen2-VL checkpoint folder, offline.

The builder is the installable package tinyrs_demo (demo/, module tinyrs_demo.tiny_model); this script is its command
line `tinyrs-tiny-model`, kept under this name for the README, the Makefile and scripts/run_demo.py.

    python scripts/make_tiny_model.py --preset tiny --output_dir /tmp/tiny-qwen2vl
"""

import sys

from tinyrs_demo.cli import model_main


if __name__ == "__main__":
    sys.exit(model_main())
