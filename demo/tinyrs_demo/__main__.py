"""`python -m tinyrs_demo data ...` (the demo data) or `python -m tinyrs_demo model ...` (the tiny checkpoint)."""

import sys

from tinyrs_demo.cli import main


sys.exit(main())
