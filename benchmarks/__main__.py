"""`python -m benchmarks`: the benchmark suite (see `benchmarks.cli`)."""

import sys

from benchmarks.cli import main

sys.exit(main())
