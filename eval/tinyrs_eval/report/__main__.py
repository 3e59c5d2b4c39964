import sys

from tinyrs_eval.report.page import main


sys.exit(main())
