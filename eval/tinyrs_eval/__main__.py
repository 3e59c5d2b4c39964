import sys

from tinyrs_eval.cli import main


sys.exit(main())
