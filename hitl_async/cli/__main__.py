"""`python -m hitl_async.cli`: the `hitl` command."""

import sys

from hitl_async.cli import main

sys.exit(main())
