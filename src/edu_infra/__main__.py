"""`python -m edu_infra ...`: the operator command line (see `edu_infra.cli`)."""

import sys

from edu_infra.cli import main

sys.exit(main())
