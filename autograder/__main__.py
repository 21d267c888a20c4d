"""`python -m autograder` runs the `mlp-autograde` command line."""

import sys

from autograder.cli import main

sys.exit(main())
