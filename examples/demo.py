"""The demo: an approval workflow that pauses for a human, stored in an embedded SQLite file.

    python examples/demo.py                 # asks at the terminal (or answers "yes" without one)
    python examples/demo.py --answer no
    python examples/demo.py --store memory://

The thread lives in the store, so a paused run can be resumed by another process that opens the
same file: run with `--stop-at-pause`, then `--resume-only --answer yes` in a second process.
The workflow itself is `hitl_async.demo` (also `hitl demo` with the `cli` extra installed).
"""

from __future__ import annotations

import sys

from hitl_async.demo import main

if __name__ == "__main__":
    sys.exit(main(prog="python examples/demo.py", script=__file__))
